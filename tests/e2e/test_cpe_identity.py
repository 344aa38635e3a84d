"""A device speaks only as itself (issue 11 item 1), over real HTTP against ``acs serve``.

Per-device credentials name their device: device A authenticated as A cannot Inform as B. Global
credentials can be bound by a rule (username = serial). A device with credentials of its own
cannot be spoken for with none or with the global ones. In the default deployment (no CPE
authentication), an unauthenticated BOOTSTRAP for a known device gets no fresh connection-request
credentials.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
from pymongo import AsyncMongoClient

from cwmp import SetParameterValues
from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, leases_freed, unique_db_name
from tests.support.processes import AcsProcess, wait_until

Client = AsyncMongoClient[MongoDocument]
GLOBAL = {"ACS_CPE_AUTH": "digest", "ACS_CPE_USERNAME": "fleet", "ACS_CPE_PASSWORD": "shared-secret"}


def _as(cpe: ScriptedCpe, username: str, password: str) -> ScriptedCpe:
    cpe.client_middlewares = (aiohttp.DigestAuthMiddleware(username, password),)
    return cpe


async def _own_credentials(acs: AcsProcess, token: str, device_id: str, username: str, password: str) -> None:
    url = f"{acs.api_url}/api/v1/devices/{quote(device_id, safe='')}/cpe-credentials"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.put(url, json={"username": username, "password": password}) as reply:
            assert reply.status == 200, await reply.text()


async def test_device_a_authenticated_as_a_cannot_inform_as_b(acs_serve: AcsServeFactory, mongo_client: Client) -> None:
    db_name = unique_db_name("identity_a_b")
    acs = await acs_serve(env=GLOBAL, database=db_name)
    a = _as(ScriptedCpe(acs.cwmp_url, serial="DEV-A"), "fleet", "shared-secret")
    b = _as(ScriptedCpe(acs.cwmp_url, serial="DEV-B"), "fleet", "shared-secret")
    assert (await a.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert (await b.run_session(["0 BOOTSTRAP"])).ended_with == 204
    token = await create_token(acs, "admin", "admin")
    await _own_credentials(acs, token, a.device_id, "user-a", "secret-a")
    await _own_credentials(acs, token, b.device_id, "user-b", "secret-b")
    db = mongo_client[db_name]
    b_before = await db.devices.find_one({"_id": b.device_id})
    sessions_before = await db.sessions.count_documents({})

    impostor = _as(ScriptedCpe(acs.cwmp_url, serial="DEV-B"), "user-a", "secret-a")  # A's credentials, B's DeviceId
    exchange = await impostor.run_session(["0 BOOTSTRAP", "1 BOOT"])

    assert exchange.ended_with == 403
    assert await db.devices.find_one({"_id": b.device_id}) == b_before  # nothing of B overwritten
    assert await db.sessions.count_documents({}) == sessions_before
    # Leases of the sessions that ended cleanly are freed just after their 204 (GroupWriter.write_later).
    await wait_until(lambda: leases_freed(db), message="every lease freed")
    assert f"credentials of device {a.device_id} used for device {b.device_id}" in acs.log_path.read_text()
    # Each device with its own credentials goes on; the global ones no longer speak for them.
    assert (
        await _as(ScriptedCpe(acs.cwmp_url, serial="DEV-B"), "user-b", "secret-b").run_session(["2 PERIODIC"])
    ).ended_with == 204
    fleet = await _as(ScriptedCpe(acs.cwmp_url, serial="DEV-B"), "fleet", "shared-secret").run_session(["2 PERIODIC"])
    assert fleet.ended_with == 401
    assert "has credentials of its own" in acs.log_path.read_text()


async def test_global_credentials_bound_by_username_equals_serial(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve(env={**GLOBAL, "ACS_CPE_USERNAME_RULE": "serial"})
    own = await _as(ScriptedCpe(acs.cwmp_url, serial="SER-1"), "SER-1", "shared-secret").run_session(["0 BOOTSTRAP"])
    assert own.ended_with == 204
    other = await _as(ScriptedCpe(acs.cwmp_url, serial="SER-2"), "SER-1", "shared-secret").run_session(["0 BOOTSTRAP"])
    assert other.ended_with == 403
    assert "username SER-1 does not name device" in acs.log_path.read_text()


async def test_a_session_cannot_change_credentials_midway(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve(env={**GLOBAL, "ACS_CPE_USERNAME_RULE": "serial"})
    cpe = ScriptedCpe(acs.cwmp_url, serial="MID-1")
    jar = aiohttp.CookieJar(unsafe=True)
    from cwmp import serialize

    async with aiohttp.ClientSession(
        cookie_jar=jar, middlewares=(aiohttp.DigestAuthMiddleware("MID-1", "shared-secret"),)
    ) as own:
        async with own.post(acs.cwmp_url, data=serialize(cpe.inform(["1 BOOT"]))) as reply:
            assert reply.status == 200
    async with aiohttp.ClientSession(
        cookie_jar=jar, middlewares=(aiohttp.DigestAuthMiddleware("OTHER", "shared-secret"),)
    ) as other:
        async with other.post(acs.cwmp_url, data=b"") as reply:
            assert reply.status == 403


async def test_unauthenticated_bootstrap_of_a_known_device_gets_no_fresh_credentials(
    acs_serve: AcsServeFactory, mongo_client: Client
) -> None:
    db_name = unique_db_name("identity_bootstrap")
    acs = await acs_serve(database=db_name)  # the default deployment: no CPE authentication
    device = ScriptedCpe(acs.cwmp_url, serial="KNOWN-1")
    first = await device.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert first.ended_with == 204
    sent = {
        p.name.rpartition(".")[2] for m in first.received if isinstance(m, SetParameterValues) for p in m.parameters
    }
    assert "ConnectionRequestPassword" in sent  # first contact: credentials issued
    db = mongo_client[db_name]
    known = await db.devices.find_one({"_id": device.device_id})
    assert known is not None and known["connection_request_username"]

    attacker = ScriptedCpe(acs.cwmp_url, serial="KNOWN-1")
    exchange = await attacker.run_session(["0 BOOTSTRAP", "1 BOOT"])

    assert exchange.ended_with == 204
    names = {
        p.name.rpartition(".")[2] for m in exchange.received if isinstance(m, SetParameterValues) for p in m.parameters
    }
    assert "ConnectionRequestPassword" not in names and "ConnectionRequestUsername" not in names
    after = await db.devices.find_one({"_id": device.device_id})
    assert after is not None
    assert after["connection_request_username"] == known["connection_request_username"]
    assert after["connection_request_password"] == known["connection_request_password"]
    assert "no new connection-request credentials for an unauthenticated BOOTSTRAP" in acs.log_path.read_text()


async def test_a_factory_reset_we_asked_for_gets_fresh_credentials(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve()
    device = ScriptedCpe(acs.cwmp_url, serial="RESET-1")
    assert (await device.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    token = await create_token(acs, "ops", "operator")
    url = f"{acs.api_url}/api/v1/devices/{quote(device.device_id, safe='')}/tasks"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(url, json={"kind": "factory_reset"}) as reply:
            assert reply.status == 202
    assert (await device.run_session(["6 CONNECTION REQUEST"])).ended_with == 204  # FactoryReset sent

    exchange = await device.run_session(["0 BOOTSTRAP", "1 BOOT"])  # the proof: TR-069 3.7.1.5

    names = {
        p.name.rpartition(".")[2] for m in exchange.received if isinstance(m, SetParameterValues) for p in m.parameters
    }
    assert "ConnectionRequestPassword" in names
