"""Tasks through the API: create, idempotency, cancel, retry, list, and waiting on a real CPE."""

from __future__ import annotations

import time
from urllib.parse import quote

import aiohttp

from tests.acs.api.conftest import ApiHarness
from tests.acs.api.cpe_listener import CrListener
from tests.support.cpe import ScriptedCpe


def tasks_path(device_id: str) -> str:
    return f"/api/v1/devices/{quote(device_id, safe='')}/tasks"


async def test_create_get_cancel_retry(api: ApiHarness) -> None:
    device_id = await api.device("K1")
    status, task = await api.call("POST", tasks_path(device_id), "operator", json={"kind": "reboot"})
    assert status == 202, task
    assert task["status"] == "queued" and task["created_by"] == "test-operator" and task["device_id"] == device_id
    status, same = await api.call("GET", f"/api/v1/tasks/{task['id']}", "viewer")
    assert status == 200 and same["id"] == task["id"] and same["kind"] == "reboot"
    status, retried = await api.call("POST", f"/api/v1/tasks/{task['id']}/retry", "operator")
    assert status == 409 and retried["error"]["code"] == "conflict"
    status, cancelled = await api.call("DELETE", f"/api/v1/tasks/{task['id']}", "operator")
    assert status == 200 and cancelled["status"] == "cancelled"
    status, again = await api.call("DELETE", f"/api/v1/tasks/{task['id']}", "operator")
    assert status == 409 and "cancelled" in again["error"]["message"]
    status, retried = await api.call("POST", f"/api/v1/tasks/{task['id']}/retry", "operator")
    assert status == 201 and retried["status"] == "queued" and retried["id"] != task["id"]
    status, missing = await api.call("DELETE", "/api/v1/tasks/000000000000000000000000", "operator")
    assert status == 404 and missing["error"]["code"] == "not_found"


async def test_unknown_device_is_404_and_nothing_is_queued(api: ApiHarness) -> None:
    status, body = await api.call("POST", tasks_path("00E0FC-NOPE"), "operator", json={"kind": "reboot"})
    assert status == 404, body
    assert await api.services.database.collection("tasks").count_documents({}) == 0


async def test_idempotency_key_returns_the_same_task(api: ApiHarness) -> None:
    device_id = await api.device("K2")
    request = {"kind": "get_parameter_values", "names": ["Device.DeviceInfo."], "idempotency_key": "run-42"}
    first = await api.call("POST", tasks_path(device_id), "operator", json=request)
    second = await api.call("POST", tasks_path(device_id), "operator", json=request)
    assert first[0] == second[0] == 202
    assert first[1]["id"] == second[1]["id"]
    assert await api.services.database.collection("tasks").count_documents({"device_id": device_id}) == 1


async def test_device_tasks_paginated_and_filtered(api: ApiHarness) -> None:
    device_id = await api.device("K3")
    created = []
    for _ in range(7):
        created.append((await api.call("POST", tasks_path(device_id), "operator", json={"kind": "reboot"}))[1]["id"])
    await api.call("DELETE", f"/api/v1/tasks/{created[0]}", "operator")
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await api.call("GET", tasks_path(device_id) + f"?limit=3&cursor={cursor}", "viewer")
        assert status == 200, page
        seen += [task["id"] for task in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(created))
    status, page = await api.call("GET", tasks_path(device_id) + "?status=cancelled", "viewer")
    assert [task["id"] for task in page["items"]] == [created[0]]
    status, page = await api.call("GET", tasks_path(device_id) + "?status=bogus", "viewer")
    assert status == 422


async def test_wait_with_connection_request_against_a_real_cpe(api: ApiHarness) -> None:
    """The CPE answers the digest-authenticated connection request and runs the session at once."""
    cpe = ScriptedCpe(url=api.cwmp_url, serial="WAIT1")
    root = "InternetGatewayDevice.ManagementServer."

    def credentials() -> tuple[str, str]:
        return cpe.params[root + "ConnectionRequestUsername"][0], cpe.params[root + "ConnectionRequestPassword"][0]

    async def wake() -> None:
        await cpe.run_session(["6 CONNECTION REQUEST"])

    listener = CrListener(credentials, on_wake=wake)
    await listener.start()
    try:
        cpe.params[root + "ConnectionRequestURL"] = (listener.url, "xsd:string", False)
        await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])  # provisioning sets the credentials in this session
        device = await api.services.repositories.devices.get(cpe.device_id)
        assert device is not None and device.get("connection_request_username") == credentials()[0]
        assert device["connection_request_password"] != credentials()[1]  # stored encrypted
        started = time.perf_counter()
        status, task = await api.call(
            "POST", tasks_path(cpe.device_id) + "?connection_request=true&wait=10", "operator",
            json={"kind": "get_parameter_values", "names": ["InternetGatewayDevice.DeviceInfo."]},
        )
        elapsed = time.perf_counter() - started
        assert status == 201, task
        assert task["status"] == "done" and task["connection_request"]["answered"] is True
        assert task["connection_request"]["http_status"] == 204
        print(f"POST tasks?connection_request=true&wait=10 -> done in {elapsed * 1000:.0f} ms")
        assert elapsed < 5
        status, history = await api.call("GET", f"/api/v1/devices/{quote(cpe.device_id, safe='')}/history",
                                         "viewer")
        assert any("6 CONNECTION REQUEST" in entry["summary"] for entry in history["items"])
    finally:
        await listener.close()


async def test_wait_times_out_with_202(api: ApiHarness) -> None:
    device_id = await api.device("K4")
    started = time.perf_counter()
    status, task = await api.call("POST", tasks_path(device_id) + "?wait=0.5", "operator", json={"kind": "reboot"})
    assert status == 202 and task["status"] == "queued"
    assert 0.4 < time.perf_counter() - started < 3


async def test_a_device_in_a_lazy_session_counts_as_in_a_session_for_the_wake_up(api: ApiHarness) -> None:
    """TR-069 3.2.2: a CPE in a session ignores a connection request, so a task's wake-up waits for
    the device's session to end. A lazy session holds no lease (``acs/cwmp_server/service.py``): the
    device's Inform of the last moment says it may still run."""
    from acs.api.tasks import _in_session
    from cwmp import InformResponse, parse, serialize

    cpe = ScriptedCpe(url=api.cwmp_url, serial="LAZYWAKE1")
    await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    await api.services.database.flush_later()  # the BOOTSTRAP's lease freed
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(api.cwmp_url, data=serialize(cpe.inform(["2 PERIODIC"]))) as reply:
            assert reply.status == 200 and isinstance(parse(await reply.read()).body, InformResponse)
            cookie = reply.cookies["acs_session"].value
        assert cookie.endswith(".lazy")
        assert await api.services.repositories.locks.holder(cpe.device_id, api.services.clock()) is None
        assert await _in_session(api.services, cpe.device_id)
        async with http.post(api.cwmp_url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 204
    assert not await _in_session(api.services, "000000-NEVER-INFORMED")
