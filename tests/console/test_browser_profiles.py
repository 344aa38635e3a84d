"""Issue 14 in headless Chromium: the device page's Configuration section against `acs serve` and an
`acs sim` ONT, as line 2 meets it. The ONT gets its service from its subscriber record and the page
says in sync; someone changes the SSID by hand and the page shows the differing value (the device's,
the wanted one, the profile it comes from); Re-provision puts it back; a value the device refuses is
shown with its fault.

Skipped outside CI when Chromium or Playwright is missing (the ``browser`` fixture of
test_browser.py). Screenshots go to ``docs/screenshots/`` with ``ACS_SCREENSHOTS=1``, else to tmp_path.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from acs.sim.device import DeviceSettings
from acs.sim.population import PopulationPlan, make_device
from cwmp.device_id import make_device_id
from tests.conftest import AcsServeFactory
from tests.console.test_browser import PASSWORD, SCREENSHOTS, USER, _create_user, browser  # noqa: F401  (the fixture)
from tests.support.api import create_token
from tests.support.mongo import unique_db_name
from tests.support.processes import AcsProcess, huawei_sim_args, start_sim, wait_until

SEED = 41
SSID = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
PROFILE = {
    "name": "internet",
    "events": ["BOOTSTRAP", "BOOT", "ON DEMAND"],
    "selector": {"product_class": ["HG8245H"], "has_subscriber": True},
    "parameters": {
        "wan.pppoe.username": "{{ subscriber.pppoe_login }}",
        "wan.pppoe.password": "{{ subscriber.pppoe_password }}",
        "wifi.ssid": "net-{{ subscriber.account }}",
    },
}


def the_ont() -> tuple[str, str]:
    """(device id, serial) of the simulator's one device for this seed, known before it boots."""
    device = make_device(PopulationPlan(profile="huawei-hg8245", seed=SEED), 0, DeviceSettings())
    return make_device_id(device.oui, device.profile.identity.product_class, device.serial), device.serial


class Api:
    def __init__(self, acs: AcsProcess, http: aiohttp.ClientSession) -> None:
        self.acs, self.http = acs, http

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.acs.api_url.rstrip("/") + "/api/v1" + path, **kwargs) as reply:
            assert reply.status < 300, await reply.text()
            return await reply.json()


async def _shown(page: Any, selector: str, timeout: float = 60) -> None:
    """Reload the device page until ``selector`` is on it (the page shows the state when it is drawn)."""

    async def there() -> bool:
        await _drawn(page)
        return await page.locator(selector).count() > 0

    await wait_until(there, timeout=timeout, interval=1, message=f"{selector} never shown on the device page")


async def _drawn(page: Any) -> None:
    """Reload the page; it must answer 200 (an error page would only show as a missing element)."""
    response = await page.reload()
    assert response is not None and response.status == 200, (response and response.status, await page.content())


async def _reprovision(page: Any) -> None:
    await page.click("#act-reprovision")
    # The reply says whether the device answered the connection request that wakes it.
    await page.locator("#activity li.ok", has_text="Re-provision").wait_for(timeout=30_000)


@pytest.mark.timeout(300)
async def test_configuration_section_in_sync_differing_refused_and_reprovision(
    acs_serve: AcsServeFactory,
    browser: Any,  # noqa: F811  (the fixture)
    tmp_path: Path,
) -> None:
    acs = await acs_serve(database=unique_db_name("browser_profiles"), env={"ACS_PROFILE_CACHE_SECONDS": "1"})
    device_id, serial = the_ont()
    token = await create_token(acs, "line2-profiles", "admin")
    shots = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    device_path = f"/devices/{quote(device_id, safe='')}"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        api = Api(acs, http)
        await api.call(
            "POST",
            "/subscribers/import",
            data=f"account,pppoe_login,pppoe_password,serial_number\nACC-7,seven@isp,pw-7,{serial}\n",
            headers={"Content-Type": "text/csv"},
        )
        await api.call("POST", "/profiles", json=PROFILE)
        await asyncio.to_thread(_create_user, acs)
        sim = start_sim(
            args=huawei_sim_args(acs.cwmp_url, 1, SEED),
            log_path=tmp_path / "sim.log",
        )
        try:

            async def applied() -> bool:
                async with http.get(f"{acs.api_url}/api/v1{device_path}/configuration") as reply:
                    return reply.status == 200 and (await reply.json())["state"]["status"] == "applied"

            await wait_until(applied, timeout=60, interval=1, message=sim.describe("service not applied"))
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(acs.api_url + "/")
            await page.fill("input[name=username]", USER)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("header nav")

            # 1. In sync: the service the subscriber record gave it.
            await page.goto(acs.api_url + device_path)
            await page.wait_for_selector("#config-in-sync")
            assert await page.inner_text("#config-status") == "Applied"
            facts = await page.inner_text("#configuration .facts")
            assert "internet@1" in facts and "ACC-7" in facts
            await page.screenshot(path=str(shots / "configuration-in-sync.png"), full_page=True)

            # 2. Someone sets the SSID by hand: the page shows the device's value beside the wanted one.
            await api.call(
                "POST",
                f"{device_path}/tasks",
                params={"connection_request": "true", "wait": "30"},
                json={"kind": "set_parameter_values", "values": [{"name": SSID, "value": "by-hand"}]},
            )
            await _shown(page, "#config-differences")
            row = page.locator("#config-differences tbody tr", has_text="wifi.ssid")
            assert [cell.strip() for cell in await row.locator("td").all_inner_texts()] == [
                "wifi.ssid",
                "by-hand",
                "net-ACC-7",
                "internet@1",
            ]
            assert await page.locator("#config-differences tbody tr").count() == 1  # the PPPoE account still matches
            await page.screenshot(path=str(shots / "configuration-differs.png"), full_page=True)

            # 3. Re-provision (the line-2 button): the device is woken and set back.
            await _reprovision(page)
            await _shown(page, "#config-in-sync")
            held = await api.call(
                "POST",
                f"{device_path}/tasks",
                params={"connection_request": "true", "wait": "30"},
                json={"kind": "get_parameter_values", "names": [SSID]},
            )
            assert held["result"]["values"][0]["value"] == "net-ACC-7"

            # 4. A value the device refuses (a 40-character SSID; it takes 32): shown with its fault.
            view = await api.call(
                "PUT",
                f"{device_path}/configuration/overrides",
                json={"overrides": [{"name": "wifi.ssid", "value": "x" * 40}]},
            )
            # The reply is the configuration with the override: the SSID differs, from the override.
            ssid = next(p for p in view["parameters"] if p["alias"] == "wifi.ssid")
            assert not view["in_sync"] and not ssid["in_sync"] and ssid["desired"] == "x" * 40, view
            # The override is stored when the PUT answers: the next drawing of the page shows it.
            await _drawn(page)
            assert await page.locator("#config-differences").count() == 1, await page.inner_text("main")
            assert "override" in await page.inner_text("#config-differences")
            await _reprovision(page)
            await _shown(page, "#config-differences tr.refused")
            refused = await page.inner_text("#config-differences tr.refused")
            assert "Refused by the device" in refused and "fault 9007" in refused and "x" * 40 in refused
            # Its only change was refused, so this application failed; the refusal is kept, not retried.
            assert await page.inner_text("#config-status") == "Failed"
            await page.screenshot(path=str(shots / "configuration-refused.png"), full_page=True)
            await context.close()
        finally:
            await sim.stop(grace=20, expect_returncode=0)
