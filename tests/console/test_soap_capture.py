"""SOAP capture over real HTTP (issue 16 item 8): line 3 switches it on for a device, that device's
CWMP exchanges are kept with their secrets masked and shown from its history; other devices and
the time after the switch is off are not captured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from acs.app import CAPTURE, create_cwmp_app
from schemas.tasks import SetParameterValuesTask
from tests.console.conftest import ConsoleHarness
from tests.support.cpe import ScriptedCpe
from tests.support.processes import wait_until

KEY = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase"
CLEAR_KEY = "the-new-wifi-key-42"


@pytest.fixture
async def cwmp(console: ConsoleHarness) -> AsyncIterator[TestServer]:
    services = console.services
    services.settings = services.settings.model_copy(update={"soap_capture_refresh": 0.1})
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def test_a_captured_session_is_kept_masked_and_shown_from_the_history(
    console: ConsoleHarness, cwmp: TestServer
) -> None:
    services = console.services
    captures = services.repositories.soap_captures
    switches = cwmp.app[CAPTURE]
    cpe = ScriptedCpe(str(cwmp.make_url("/")), serial="CAPT0001")
    cpe.params[KEY] = ("", "xsd:string", True)
    other = ScriptedCpe(str(cwmp.make_url("/")), serial="CAPT0002")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert (await other.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert await captures.sessions_of(cpe.device_id) == [], "nothing is captured before the switch"

    operator = await console.login("operator")
    async with operator.http.post(console.url(f"/devices/{cpe.device_id}/capture"),
                                  data={"hours": "1", "csrf": operator.csrf}, allow_redirects=False) as response:
        assert response.status == 303
    await wait_until(lambda: cpe.device_id in switches.active, timeout=10, message="the switch never reached CWMP")

    task = SetParameterValuesTask(kind="set_parameter_values",
                                  values=[{"name": KEY, "value": CLEAR_KEY, "type": "xsd:string"}])
    await services.queue.create(cpe.device_id, task, "test")
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204 and cpe.params[KEY][0] == CLEAR_KEY, "the device got the real key"
    await other.run_session(["2 PERIODIC"])

    [session] = await captures.sessions_of(cpe.device_id)
    kept = await captures.for_session(session["session_id"])
    assert len(kept) == 3  # Inform / InformResponse, empty POST / SetParameterValues, its answer / 204
    text = "".join(doc["request"] + doc["reply"] for doc in kept)
    assert "Inform" in text and "SetParameterValues" in text and KEY in text
    assert CLEAR_KEY not in text and "***" in text, "the Wi-Fi key is masked before it is stored"
    assert await captures.sessions_of(other.device_id) == [], "only the chosen device is captured"

    viewer = await console.login("viewer")
    async with viewer.http.get(console.url(f"/devices/{cpe.device_id}/history")) as response:
        history = await response.text()
    assert f"/sessions/{session['session_id']}/soap" in history
    async with viewer.http.get(console.url(f"/devices/{cpe.device_id}/sessions/{session['session_id']}/soap")) as r:
        page = await r.text()
    assert r.status == 200 and "SetParameterValues" in page and CLEAR_KEY not in page
    async with viewer.http.get(console.url(f"/devices/{cpe.device_id}/tools")) as response:
        assert "On until" in await response.text()

    async with operator.http.post(console.url(f"/devices/{cpe.device_id}/capture"),
                                  data={"hours": "0", "csrf": operator.csrf}, allow_redirects=False) as response:
        assert response.status == 303
    await wait_until(lambda: cpe.device_id not in switches.active, timeout=10)
    await cpe.run_session(["2 PERIODIC"])
    assert len(await captures.sessions_of(cpe.device_id)) == 1, "switched off: nothing more kept"
    async with operator.http.post(console.url(f"/devices/{cpe.device_id}/capture"),
                                  data={"hours": "7", "csrf": operator.csrf}, allow_redirects=False) as response:
        assert response.status == 422
