"""``acs serve`` as a process, spoken to in CWMP over real HTTP by a test CPE."""

from __future__ import annotations

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from cwmp import (
    CwmpVersion,
    Envelope,
    GetParameterValuesResponse,
    InformResponse,
    ParameterValue,
    SetParameterValues,
    UnknownMessage,
    httpauth,
    parse,
    serialize,
)
from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, leases_freed, unique_db_name
from tests.support.processes import wait_until

Client = AsyncMongoClient[MongoDocument]


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    return unique_db_name(request.node.name)


async def test_tr098_device_on_cwmp_1_0_bootstraps_and_is_registered(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name)
    cpe = ScriptedCpe(acs.cwmp_url, serial="TR098-0001")

    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])

    assert exchange.ended_with == 204
    # The ACS provisions periodic inform and connection-request credentials at BOOTSTRAP.
    provisioning = exchange.received[0]
    assert isinstance(provisioning, SetParameterValues)
    sent = {p.name: p.value for p in provisioning.parameters}
    assert sent["InternetGatewayDevice.ManagementServer.PeriodicInformInterval"] == "300"
    password = sent["InternetGatewayDevice.ManagementServer.ConnectionRequestPassword"]
    db = mongo_client[db_name]
    device = await db.devices.find_one({"_id": cpe.device_id})
    assert device is not None
    assert device["serial_number"] == "TR098-0001"
    assert device["cwmp_version"] == "1.0"
    assert device["software_version"] == "V1.0"
    assert device["last_events"] == ["0 BOOTSTRAP", "1 BOOT"]
    assert device["connection_request_username"].startswith("acs-")
    assert password not in str(device), "the connection-request password must be stored encrypted"
    parameters = await db.parameters.find_one({"_id": cpe.device_id})
    assert parameters is not None
    assert parameters["p"]["InternetGatewayDevice"]["DeviceInfo"]["SoftwareVersion"]["~v"] == "V1.0"
    session = await db.sessions.find_one({"device_id": cpe.device_id})
    assert session is not None
    assert session["outcome"] == "ok"
    assert [rpc["name"] for rpc in session["rpcs"]] == [
        "Inform",
        "InformResponse",
        "empty",
        "SetParameterValues",
        "SetParameterValuesResponse",
    ]


async def test_tr181_device_on_cwmp_1_4_gets_replies_in_its_version(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name)
    cpe = ScriptedCpe(
        acs.cwmp_url, oui="E48D8C", product_class="hAP", serial="TR181-1", root="Device.", version=CwmpVersion.V1_4
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(acs.cwmp_url, data=serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))) as reply:
            assert reply.status == 200
            envelope = parse(await reply.read())
    assert isinstance(envelope.body, InformResponse)
    assert envelope.body.max_envelopes == 1
    assert envelope.use_cwmp_version == "1.4"
    device = await mongo_client[db_name].devices.find_one({"_id": cpe.device_id})
    assert device is not None and device["cwmp_version"] == "1.4"


async def test_session_survives_a_new_tcp_connection_per_message(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve()
    cpe = ScriptedCpe(acs.cwmp_url, serial="FRESH-CONN")
    exchange = await cpe.run_session(["0 BOOTSTRAP"], new_connection_each_message=True)
    assert exchange.ended_with == 204
    assert len(exchange.received) == 1  # the provisioning request reached us on a later connection


async def test_a_new_inform_ends_the_session_the_device_gave_up(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    """Issue 12 item 8: a device that dropped mid-session is not locked out until the lease expires."""
    acs = await acs_serve(database=db_name)
    cpe = ScriptedCpe(acs.cwmp_url, serial="TWICE")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as first:
        async with first.post(acs.cwmp_url, data=serialize(cpe.inform(["1 BOOT"]))) as reply:
            assert reply.status == 200
        # The device drops that connection and informs again on a new one.
        again = await cpe.run_session(["1 BOOT"])
        assert again.statuses[0] == 200 and again.ended_with == 204
        # The old session is over: its cookie starts nothing.
        async with first.post(acs.cwmp_url, data=b"") as reply:
            assert reply.status == 400
    sessions = [s async for s in mongo_client[db_name].sessions.find({"device_id": cpe.device_id}).sort("started_at")]
    assert [(s["outcome"], s["live"]) for s in sessions] == [("superseded", False), ("ok", False)]
    db = mongo_client[db_name]  # the lease is freed just after the 204 (GroupWriter.write_later)
    await wait_until(lambda: leases_freed(db, {"_id": cpe.device_id}), message="the lease freed")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol2;</soap:Body></soap:Envelope>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&xxe;</soap:Body></soap:Envelope>"""


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<not-closed", "malformed CWMP message"),
        (BILLION_LAUGHS, "malformed CWMP message"),
        (XXE, "malformed CWMP message"),
        (b"<a>" * 100 + b"</a>" * 100, "malformed CWMP message"),
        (b"", "must begin with Inform"),
    ],
    ids=["not-well-formed", "billion-laughs", "xxe", "too-deep", "empty-post-without-session"],
)
async def test_bad_input_gets_400_with_a_reason_and_stores_nothing(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str, body: bytes, reason: str
) -> None:
    acs = await acs_serve(database=db_name)
    async with aiohttp.ClientSession() as http, http.post(acs.cwmp_url, data=body) as reply:
        assert reply.status == 400
        text = await reply.text()
    assert reason in text
    assert "root:" not in text
    assert await mongo_client[db_name].devices.count_documents({}) == 0
    assert await mongo_client[db_name].sessions.count_documents({}) == 0


async def test_oversized_body_is_refused_with_413(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name, env={"ACS_MAX_BODY_BYTES": "8192"})
    cpe = ScriptedCpe(acs.cwmp_url, serial="HUGE")
    inform = cpe.inform(["1 BOOT"])
    padded = inform.model_copy(
        update={
            "body": inform.body.model_copy(
                update={
                    "parameters": tuple(
                        ParameterValue(name=f"InternetGatewayDevice.X_Pad.{i}", value="x" * 100) for i in range(100)
                    )
                }
            )
        }
    )
    async with aiohttp.ClientSession() as http, http.post(acs.cwmp_url, data=serialize(padded)) as reply:
        assert reply.status == 413
    assert await mongo_client[db_name].devices.count_documents({}) == 0


async def test_out_of_order_message_ends_the_session_cleanly(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name)
    cpe = ScriptedCpe(acs.cwmp_url, serial="CONFUSED")
    stray = Envelope(id="nobody-asked", body=GetParameterValuesResponse(parameters=()))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(acs.cwmp_url, data=serialize(cpe.inform(["1 BOOT"]))) as reply:
            assert reply.status == 200
        async with http.post(acs.cwmp_url, data=serialize(stray)) as reply:
            assert reply.status == 400
            assert "protocol error" in await reply.text()
    session = await mongo_client[db_name].sessions.find_one({"device_id": cpe.device_id})
    assert session is not None
    assert session["outcome"] == "protocol_error"
    assert session["live"] is False
    # The device's lease was released: it can start again at once.
    again = await cpe.run_session(["1 BOOT"])
    assert again.ended_with == 204


async def test_unknown_cpe_method_gets_fault_8000_and_the_session_goes_on(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve()
    cpe = ScriptedCpe(acs.cwmp_url, serial="KICKED")
    kicked = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header><cwmp:ID soap:mustUnderstand="1">k1</cwmp:ID>'
        b"</soap:Header><soap:Body><cwmp:Kicked><Command>x</Command><Referer>r</Referer><Arg>a</Arg>"
        b"<Next>n</Next></cwmp:Kicked></soap:Body></soap:Envelope>"
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(acs.cwmp_url, data=serialize(cpe.inform(["1 BOOT"]))) as reply:
            assert reply.status == 200
        async with http.post(acs.cwmp_url, data=kicked) as reply:
            assert reply.status == 200
            fault = parse(await reply.read())
        assert fault.body.kind == "Fault"
        assert getattr(fault.body, "fault_code") == 8000  # noqa: B009
        assert fault.id == "k1"
        async with http.post(acs.cwmp_url, data=b"") as reply:
            assert reply.status in (200, 204)
    assert not isinstance(fault.body, UnknownMessage)


@pytest.mark.parametrize("mode", ["basic", "digest"])
async def test_cpe_authentication(acs_serve: AcsServeFactory, mode: str) -> None:
    acs = await acs_serve(env={"ACS_CPE_AUTH": mode, "ACS_CPE_USERNAME": "cpe", "ACS_CPE_PASSWORD": "s3cret"})
    cpe = ScriptedCpe(acs.cwmp_url, serial=f"AUTH-{mode}")
    async with aiohttp.ClientSession() as http, http.post(acs.cwmp_url, data=serialize(cpe.inform(["1 BOOT"]))) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].lower().startswith(mode)
    wrong = await _authenticated_session(cpe, mode, "cpe", "wrong")
    assert wrong == 401
    right = await _authenticated_session(cpe, mode, "cpe", "s3cret")
    assert right == 204
    log = acs.log_path.read_text()
    assert "s3cret" not in log


async def _authenticated_session(cpe: ScriptedCpe, mode: str, username: str, password: str) -> int | None:
    middleware: aiohttp.ClientMiddlewareType
    if mode == "digest":
        middleware = aiohttp.DigestAuthMiddleware(username, password)
    else:
        header = httpauth.basic_authorization(username, password)

        async def middleware(
            request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            request.headers["Authorization"] = header
            return await handler(request)

    cpe.client_middlewares = (middleware,)
    exchange = await cpe.run_session(["1 BOOT"])
    return exchange.ended_with


async def test_per_device_cpe_credentials_set_through_the_api(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve(env={"ACS_CPE_AUTH": "digest", "ACS_CPE_USERNAME": "fleet", "ACS_CPE_PASSWORD": "shared"})
    cpe = ScriptedCpe(acs.cwmp_url, serial="OWN-CREDS")
    assert await _authenticated_session(cpe, "digest", "fleet", "shared") == 204  # known by the global ones
    token = await create_token(acs, "admin", "admin")
    url = f"{acs.api_url}/api/v1/devices/{cpe.device_id}/cpe-credentials"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.put(url, json={"username": "own-user", "password": "own-secret"}) as reply:
            assert reply.status == 200
            shown = await reply.json()
    assert shown == {"device_id": cpe.device_id, "username": "own-user", "password_set": True}
    assert await _authenticated_session(cpe, "digest", "own-user", "own-secret") == 204
    assert await _authenticated_session(cpe, "digest", "own-user", "wrong") == 401
    assert "own-secret" not in acs.log_path.read_text()
