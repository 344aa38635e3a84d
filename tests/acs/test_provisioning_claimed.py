"""A BOOTSTRAP's provisioning task is stored already claimed by the session that creates it and
sent next, with no claim (issue 10: BOOTSTRAP cost). Whatever happens to that session, the task
is sent at most once and reaches its device: a session that breaks before sending it puts it back
in the queue, and one that ends without sending it leaves it to the device's next Inform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from cwmp import InformResponse, SetParameterValues, parse, serialize
from tasks.store import live_blob
from tests.acs.test_session_open_tasks import Acs, acs  # noqa: F401 - the fixture
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument


async def _provisioned(acs: Acs, cpe: ScriptedCpe) -> MongoDocument:  # noqa: F811 - the fixture
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    task = await acs.db.tasks.find_one({"_id": device["provisioning_task"]})
    assert task is not None and task["status"] == "done", task
    username = cpe.params[cpe.root + "ManagementServer.ConnectionRequestUsername"][0]
    assert device.get("connection_request_username") == username, device
    return task


async def test_the_provisioning_goes_out_in_its_bootstrap_stored_claimed(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """(No claim command: ``tests/acs/test_session_command_budget.py`` counts them.)"""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED01")
    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    task = await _provisioned(acs, cpe)
    assert task["attempts"] == 1 and await acs.db.task_sends.count_documents({"task_id": task["_id"]}) == 1


async def test_the_provisioning_goes_out_when_the_next_message_reaches_another_connection(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """The worker's copy of the session is not used on a new connection: the task is read back."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED02")
    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"], new_connection_each_message=True)
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    await _provisioned(acs, cpe)


async def test_a_bootstrap_dropped_after_its_inform_response_is_provisioned_by_the_next_session(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """The CPE got its InformResponse (so it will not send BOOTSTRAP again: TR-069 3.7.1.5), then
    vanished: the task it never received goes back to the queue when the next Inform supersedes
    that session, and that next session sends it."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED03")
    async with aiohttp.ClientSession() as http:
        async with http.post(acs.url, data=serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))) as reply:
            assert reply.status == 200 and isinstance(parse(await reply.read()).body, InformResponse)
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    held = await acs.db.tasks.find_one({"_id": device["provisioning_task"]})
    assert held is not None and held["status"] == "dispatched" and held["session_id"] is not None

    exchange = await cpe.run_session(["1 BOOT"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    task = await _provisioned(acs, cpe)
    assert task["_id"] == held["_id"] and await acs.db.task_sends.count_documents({"task_id": task["_id"]}) == 1


async def test_a_claimed_task_its_session_never_sent_goes_out_in_the_devices_next_session(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """A session that ends without sending the task its Inform stored for it (its stored state lost
    the task): the next Inform finds the task
    held by a session that is gone, puts it back in the queue and sends it."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED04")
    inform = serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(acs.url, data=inform, headers={"Connection": "close"}) as reply:
            assert reply.status == 200
            cookie = reply.cookies["acs_session"].value
        # The running session's state is in the device's lease, one packed value (tasks/store/locks.py).
        lease = await acs.db.session_locks.find_one({"_id": cpe.device_id, "session_id": cookie})
        assert lease is not None
        state = live_blob.unpack(lease["session"])
        assert state["claimed_task"] is not None
        lost = await acs.db.session_locks.update_one(
            {"_id": cpe.device_id, "session_id": cookie},
            {"$set": {"session": live_blob.pack({**state, "claimed_task": None})}},
        )
        assert lost.modified_count == 1
        async with http.post(acs.url, data=b"", headers={"Connection": "close"}) as reply:
            assert reply.status == 204, await reply.read()
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    held = await acs.db.tasks.find_one({"_id": device["provisioning_task"]})
    assert held is not None and held["status"] == "dispatched" and held["session_id"] == cookie

    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    assert isinstance(exchange.received[0], SetParameterValues)
    await _provisioned(acs, cpe)


async def test_a_provisioning_the_device_refuses_puts_the_device_fields_it_stored_back(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """The BOOTSTRAP's device write stores what the task sets (credentials, interval,
    provisioned_at) so that an accepted provisioning writes nothing more; a refused one (a fault)
    removes them again: the device has no credentials it does not know."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED05")
    password = cpe.root + "ManagementServer.ConnectionRequestPassword"
    cpe.params[password] = ("", "xsd:string", False)  # not writable: the SetParameterValues faults
    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    task = await acs.db.tasks.find_one({"_id": device["provisioning_task"]})
    assert task is not None and task["status"] == "failed", task
    for field in ("connection_request_username", "connection_request_password", "provisioned_at"):
        assert field not in device, device
    assert not device.get("pending_connection_request")
    # The cache too: the Inform's tree carried what the task sets; refused, the Inform reported none of it.
    cached = await acs.db.parameters.find_one({"_id": cpe.device_id})
    assert cached is not None
    management = cached["p"]["InternetGatewayDevice"]["ManagementServer"]
    assert set(management) == {"ConnectionRequestURL", "ParameterKey"}, management


async def test_a_bootstrap_caches_what_its_provisioning_sets_with_the_informs_tree(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """Issue 10: the provisioning's values are cached by the Inform's own tree write, so the
    accepted answer writes no cache (``tests/acs/test_session_command_budget.py`` counts none)."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED08")
    async with aiohttp.ClientSession() as http:
        async with http.post(acs.url, data=serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))) as reply:
            assert reply.status == 200
    cached = await acs.db.parameters.find_one({"_id": cpe.device_id})
    assert cached is not None
    management = cached["p"]["InternetGatewayDevice"]["ManagementServer"]
    assert management["PeriodicInformInterval"]["~v"] == "300" and management["PeriodicInformEnable"]["~v"] == "true"
    username = management["ConnectionRequestUsername"]["~v"]
    assert username.startswith("acs-") and "sealed" in management["ConnectionRequestPassword"]["~v"]

    exchange = await cpe.run_session(["1 BOOT"])  # the next session sends it; accepted
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    await _provisioned(acs, cpe)
    cached = await acs.db.parameters.find_one({"_id": cpe.device_id})
    assert cached is not None
    assert cached["p"]["InternetGatewayDevice"]["ManagementServer"]["ConnectionRequestUsername"]["~v"] == username


async def test_an_unauthenticated_bootstrap_of_a_device_with_credentials_keeps_them(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """Issue 11: the Inform's device write stores new credentials at once only for a device without
    any; a device that has them (and an Inform that proves nothing) keeps them, and its
    provisioning carries no new ones."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED06")
    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204
    first = await _provisioned(acs, cpe)
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    kept = (device["connection_request_username"], device["connection_request_password"])

    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    sent = exchange.received[0]
    assert isinstance(sent, SetParameterValues)
    assert not [p for p in sent.parameters if p.name.endswith("ConnectionRequestUsername")]
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None and device["provisioning_task"] != first["_id"]
    assert (device["connection_request_username"], device["connection_request_password"]) == kept
    assert not device.get("pending_connection_request")


async def test_credentials_stored_at_once_but_never_sent_are_replaced_by_the_next_bootstrap(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """The ACS stopped between the BOOTSTRAP's device write (which stored the credentials the task
    sets) and the task's insert: the device never got them, so its next BOOTSTRAP, even
    unauthenticated, gets fresh ones (issue 11 withholds only credentials the device accepted)."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED07")
    async with aiohttp.ClientSession() as http:
        async with http.post(acs.url, data=serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))) as reply:
            assert reply.status == 200
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None and device.get("connection_request_username")
    await acs.db.tasks.delete_one({"_id": device["provisioning_task"]})  # as if never inserted
    await acs.db.session_locks.delete_many({"_id": cpe.device_id})  # and its session gone with the ACS

    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    sent = exchange.received[0]
    assert isinstance(sent, SetParameterValues)
    assert [p for p in sent.parameters if p.name.endswith("ConnectionRequestUsername")]
    await _provisioned(acs, cpe)


async def test_a_provisioning_that_expires_unsent_puts_the_device_fields_it_stored_back(acs: Acs) -> None:  # noqa: F811 - the fixture imported above
    """The expiry job runs the final hooks a session would: a BOOTSTRAP whose CPE vanished after its
    InformResponse, and never came back before its provisioning expired, keeps no connection-request
    credentials it never received (the ACS would send connection requests it cannot pass)."""
    cpe = ScriptedCpe(acs.url, serial="CLAIMED09")
    async with aiohttp.ClientSession() as http:
        async with http.post(acs.url, data=serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))) as reply:
            assert reply.status == 200 and isinstance(parse(await reply.read()).body, InformResponse)
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None and device.get("connection_request_username"), device  # stored at once
    late = datetime.now(UTC) - timedelta(seconds=1)
    await acs.db.tasks.update_one({"_id": device["provisioning_task"]}, {"$set": {"expires_at": late}})
    assert await acs.services.queue.expire_due() == 1
    task = await acs.db.tasks.find_one({"_id": device["provisioning_task"]})
    assert task is not None and task["status"] == "expired", task
    device = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    for field in ("connection_request_username", "connection_request_password", "provisioned_at"):
        assert field not in device, device
