"""The console's side of issue 14: the device page shows in sync or the differing values (with the
refused ones and their fault), re-provision is one button (audited, operators only), and line 2
finds a device by its subscriber's account number or PPPoE login."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.console.conftest import ConsoleHarness, LoggedIn

SSID = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str, str]:
    async with session.http.get(console.url(path), allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location", "")


async def _profile(console: ConsoleHarness) -> None:
    from schemas.profiles import ProfileSpec
    from tasks.profiles.service import ProfileService

    services = console.services
    service = ProfileService(
        services.repositories.profiles, services.profiles, services.repositories.devices, services.box, services.clock
    )
    await service.save(ProfileSpec.model_validate({"name": "base", "parameters": {"wifi.ssid": "isp-wifi"}}), "test")


async def test_device_page_shows_differences_then_in_sync_and_reprovisions(console: ConsoleHarness) -> None:
    await _profile(console)
    device_id = await console.device("CFG00001")
    parameters = console.services.repositories.parameters
    await parameters.set_values(device_id, [(SSID, "HUAWEI-1234", "xsd:string")], console.services.clock())
    viewer = await console.login("viewer")
    status, page, _ = await _get(viewer, console, f"/devices/{quote(device_id, safe='')}")
    assert status == 200 and 'id="config-differences"' in page
    assert "wifi.ssid" in page and "HUAWEI-1234" in page and "isp-wifi" in page and "base@1" in page
    assert 'id="act-reprovision"' not in page  # a viewer cannot act
    await console.services.repositories.devices.set_fields(
        device_id,
        {
            "configuration": {
                "status": "partial",
                "refused": [
                    {
                        "name": SSID,
                        "digest": console.services.profiles.digest(SSID, "isp-wifi"),
                        "code": 9007,
                        "string": "Invalid value",
                    }
                ],
            }
        },
    )
    operator = await console.login("operator")
    status, page, _ = await _get(operator, console, f"/devices/{quote(device_id, safe='')}")
    assert 'id="act-reprovision"' in page and "Refused by the device" in page and "9007" in page
    async with operator.http.post(
        console.url(f"/devices/{quote(device_id, safe='')}/actions/reprovision"),
        data={"csrf": operator.csrf},
        headers={"Accept": "application/json"},
    ) as response:
        assert response.status == 200
        reply: dict[str, Any] = await response.json()
    assert "next session" in reply["text"]
    tasks = console.services.database.collection("tasks")
    requested = [task async for task in tasks.find({"device_id": device_id, "kind": "reprovision"})]
    assert [(task["status"], task["created_by"]) for task in requested] == [("queued", "user:u-operator")], requested
    audit = await console.services.database.collection("audit").find_one({"device_id": device_id})
    assert audit is not None and "Re-provision" in audit["summary"]
    await parameters.set_values(device_id, [(SSID, "isp-wifi", "xsd:string")], console.services.clock())
    status, page, _ = await _get(viewer, console, f"/devices/{quote(device_id, safe='')}")
    assert 'id="config-differences"' not in page  # refused list aside, the value now matches
    status, page, _ = await _get(await console.login("admin"), console, "/settings")
    assert status == 200


async def test_a_device_without_profiles_has_no_configuration_section(console: ConsoleHarness) -> None:
    device_id = await console.device("CFG00002")
    viewer = await console.login("viewer")
    status, page, _ = await _get(viewer, console, f"/devices/{quote(device_id, safe='')}")
    assert status == 200 and 'id="configuration"' not in page


async def test_search_by_account_number_or_pppoe_login_opens_the_bound_device(console: ConsoleHarness) -> None:
    device_id = await console.device("CFG00003")
    subscribers = console.services.repositories.subscribers
    await subscribers.put(
        "ACC-9", {"pppoe_login": "nine@isp", "serial_number": "CFG00003"}, "test", console.services.clock()
    )
    await subscribers.bind("ACC-9", device_id)
    viewer = await console.login("viewer")
    for text in ("ACC-9", "nine@isp"):
        status, _, location = await _get(viewer, console, f"/?q={quote(text)}")
        assert status == 303 and location == f"/devices/{quote(device_id, safe='')}", text
    status, _, location = await _get(viewer, console, "/?q=nobody@isp")
    assert location != f"/devices/{quote(device_id, safe='')}"
