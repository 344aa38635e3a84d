"""Issue 16 items 5-8 in headless Chromium: trends, the slow-internet panel, alerts and the line-3 tools.

The console is served by aiohttp's test server over the test's FerretDB database (the ``console``
fixture); Chromium (Debian's, through Playwright) drives it like an engineer would. Skipped
outside CI when Chromium or Playwright is missing (the ``browser`` fixture of test_browser.py).
Screenshots go to ``docs/screenshots/`` with ``ACS_SCREENSHOTS=1``, else to tmp_path.
"""

from __future__ import annotations

import asyncio
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pymongo import AsyncMongoClient

from tasks.trends import TrendRecorder
from tests.conftest import AcsServeFactory
from tests.console.conftest import PASSWORD, ConsoleHarness
from tests.console.test_browser import PASSWORD as USER_PASSWORD
from tests.console.test_browser import SCREENSHOTS, USER, _create_user, browser  # noqa: F401  (the fixture)
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import free_port, start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    place = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    place.mkdir(parents=True, exist_ok=True)
    return place


async def _login(browser: Any, console: ConsoleHarness, role: str = "operator") -> tuple[Any, Any]:  # noqa: F811
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Moscow")
    page = await context.new_page()
    await page.goto(console.url("/login"))
    await page.fill("input[name=username]", f"u-{role}")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("header nav")
    return context, page


# A function, not a bare expression: Playwright polls a bare expression through eval(), which the
# console's Content-Security-Policy (no 'unsafe-eval') refuses once the first check is false.
ALERT_COUNT_IS = "n => (document.getElementById('alert-count') || {}).textContent === n"


async def _loaded(page: Any, image_id: str) -> None:
    """Wait until the image has loaded and decoded (a broken image has no natural width)."""
    await page.wait_for_function(
        "id => { const img = document.getElementById(id); return img && img.complete && img.naturalWidth > 0; }",
        arg=image_id, timeout=30_000)


async def _russian(page: Any) -> None:
    await page.click("#lang-ru")
    await page.wait_for_selector("#lang-en")


async def _seed_week(console: ConsoleHarness, serials: list[str]) -> list[str]:
    """A week of health reads, every 3 hours, for devices on OLT-3, PON 0/2/1 (the first one's RX sagging)."""
    recorder = TrendRecorder(console.services.repositories.trends)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ids = []
    for n, serial in enumerate(serials):
        device_id = await console.device(serial, olt_id="OLT-3", pon_port="0/2/1")
        ids.append(device_id)
        for step in range(7 * 8):
            at = now - timedelta(hours=3 * step)
            rx = -19.5 - n - (3.0 * (1 - step / 56) if n == 0 else 0) + 0.4 * math.sin(step)
            status = "critical" if rx < -27 else "warn" if rx < -25 else "ok"
            await recorder.on_health({"_id": device_id}, {"at": at, "status": status, "values": {
                "rx_power": round(rx, 2), "tx_power": 2.2 + 0.1 * math.cos(step), "temperature": 41 + (step % 8),
                "olt_id": "OLT-3", "pon_port": "0/2/1"}})
        await console.services.repositories.trends.fold(
            device_id, (now - timedelta(days=2)).date().isoformat(), {"$set": {"hours.04.boots": n + 1}}, {})
    return ids


async def test_trends_of_a_device_and_its_pon(
    console: ConsoleHarness, browser: Any, shots: Path  # noqa: F811
) -> None:
    ids = await _seed_week(console, ["TRND0001", "TRND0002", "TRND0003"])
    context, page = await _login(browser, console, "viewer")
    await page.goto(console.url(f"/devices/{ids[0]}"))
    await page.click("#trends-link")
    for chart in ("optical", "temperature", "health", "reboots"):
        await _loaded(page, f"chart-{chart}")  # the SVG loaded as an image
    await page.screenshot(path=str(shots / "trends-device-en.png"), full_page=True)
    await page.click("#range-30")
    await page.wait_for_selector("#range-30 >> xpath=self::strong")
    await page.click("#pon-trends")
    await page.wait_for_selector("h1 >> text=PON 0/2/1")
    for chart in ("optical", "temperature", "health", "reboots"):
        await _loaded(page, f"chart-{chart}")
    await page.screenshot(path=str(shots / "trends-pon-en.png"), full_page=True)
    await _russian(page)
    await page.wait_for_selector("text=Тренды")
    for chart in ("optical", "temperature", "health", "reboots"):
        await _loaded(page, f"chart-{chart}")
    await page.screenshot(path=str(shots / "trends-pon-ru.png"), full_page=True)
    await page.goto(console.url(f"/devices/{ids[0]}/trends"))
    assert "Период" in await page.inner_text("p.ranges")
    for chart in ("optical", "temperature", "health", "reboots"):
        await _loaded(page, f"chart-{chart}")
    await page.screenshot(path=str(shots / "trends-device-ru.png"), full_page=True)
    await context.close()


async def test_a_new_incident_pops_up_on_an_open_console(
    console: ConsoleHarness, browser: Any, shots: Path  # noqa: F811
) -> None:
    from tests.console.test_alerts import _open_incident

    await _open_incident(console, "OLT-0001")
    context, page = await _login(browser, console, "admin")
    await page.goto(console.url("/alerts"))
    badge = page.locator("#alert-count")
    await page.wait_for_function(ALERT_COUNT_IS, arg="1")
    await page.check("#alert-sound")  # stored per browser; the next incident beeps
    assert await page.evaluate("localStorage.getItem('acs-alert-sound')") == "1"
    number = await _open_incident(console, "OLT-0031")
    toast = page.locator("#alert-toasts .toast", has_text=f"#{number}")
    await toast.wait_for(timeout=30_000)
    assert "OLT-0031" in await toast.inner_text()
    await page.wait_for_function(ALERT_COUNT_IS, arg="2")
    assert await badge.is_visible()
    await page.screenshot(path=str(shots / "alerts-en.png"), full_page=True)
    await toast.locator("a").click()
    await page.wait_for_url(f"**/incidents/{number}")
    await _russian(page)
    await page.goto(console.url("/alerts"))
    await page.wait_for_function(ALERT_COUNT_IS, arg="2")
    third = await _open_incident(console, "OLT-0032")
    await page.locator("#alert-toasts .toast", has_text=f"Новый инцидент #{third}").wait_for(timeout=30_000)
    await page.screenshot(path=str(shots / "alerts-ru.png"), full_page=True)
    await context.close()


async def test_line3_tools_against_acs_serve_and_simulated_devices(
    acs_serve: AcsServeFactory, mongo_client: Client, browser: Any, tmp_path: Path,  # noqa: F811
    request: pytest.FixtureRequest, shots: Path,
) -> None:
    """Notes, SOAP capture, a configuration backup the simulated ONT really uploads, its restore, the diff."""
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name, env={"ACS_SOAP_CAPTURE_REFRESH": "0.5"})
    sim = start_sim(args=["--url", acs.cwmp_url, "--devices", "2", "--profile", "huawei-hg8245", "--seed", "11",
                          "--cr-listen", f"127.0.0.1:{free_port()}", "--summary-every", "0"],
                    log_path=tmp_path / "sim.log")
    try:
        await asyncio.to_thread(_create_user, acs)
        devices = mongo_client[name].devices

        async def two() -> list[MongoDocument] | None:
            found = [doc async for doc in devices.find({"connection_request_username": {"$exists": True}})]
            return sorted(found, key=lambda doc: doc["_id"]) if len(found) == 2 else None

        first, second = await wait_until(two, timeout=60, message=sim.describe("devices not provisioned"))
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Moscow")
        page = await context.new_page()
        await page.goto(acs.api_url + f"/devices/{quote(first['_id'], safe='')}")
        await page.fill("input[name=username]", USER)
        await page.fill("input[name=password]", USER_PASSWORD)
        await page.click("button[type=submit]")
        await page.click("#tools-link")
        await page.fill("#note-text", "Subscriber complains of evening drops; PON checked 12-04, fine.")
        await page.click("#note-add")
        await page.locator("ul.notes", has_text="evening drops").wait_for()
        await page.click("#capture-1")
        await page.locator("#capture-state", has_text="On until").wait_for()
        # A plain form: the POST and its redirect are a navigation, which must end before the page is
        # reloaded (a reload while it commits fails with "Not attached to an active page").
        async with page.expect_navigation():
            await page.click("#backup-now")

        async def backed_up() -> bool:  # the simulated ONT uploads its file; the page lists it
            await page.reload()
            return await page.locator("#backups tbody tr").count() == 1

        await wait_until(backed_up, timeout=60, interval=1.0, message=sim.describe("no backup stored"))
        await page.check(".restore-confirm")
        async with page.expect_navigation():
            await page.click("button.restore")

        async def restored() -> bool:
            await page.reload()
            return await page.locator("#config-transfers li", has_text="done").count() == 2

        await wait_until(restored, timeout=60, interval=1.0, message=sim.describe("restore not done"))
        await page.screenshot(path=str(shots / "tools-en.png"), full_page=True)

        async def captured() -> bool:  # the sessions of the backup and the restore were captured
            await page.reload()
            return await page.locator("#captured-sessions li").count() >= 1

        await wait_until(captured, timeout=60, interval=1.0, message="no session captured")
        tools_page = page.url
        await page.goto(tools_page.removesuffix("/tools") + "/history")
        await page.locator("a.soap-link").first.wait_for()  # the history links each session's SOAP
        await page.goto(tools_page)
        await page.locator("#captured-sessions a").first.click()
        await page.wait_for_selector("pre.soap")
        assert "Inform" in await page.inner_text("main")
        await page.screenshot(path=str(shots / "soap-en.png"), full_page=True)
        soap_page = page.url
        await page.goto(tools_page)
        await page.fill("#diff-other", second["serial_number"])
        await page.fill("#diff-prefix", "InternetGatewayDevice.DeviceInfo.")
        await page.click("#diff-run")
        await page.wait_for_selector("#diff-count")
        assert "SoftwareVersion" in await page.inner_text("#diff-rows")
        await page.screenshot(path=str(shots / "diff-en.png"), full_page=True)
        await _russian(page)
        await page.wait_for_selector("text=Сравнение параметров")
        await page.screenshot(path=str(shots / "diff-ru.png"), full_page=True)
        await page.goto(acs.api_url + f"/devices/{quote(first['_id'], safe='')}/tools")
        await page.wait_for_selector("text=Заметки")
        await page.screenshot(path=str(shots / "tools-ru.png"), full_page=True)
        await page.goto(soap_page)
        await page.wait_for_selector("text=От устройства")
        await page.screenshot(path=str(shots / "soap-ru.png"), full_page=True)
        await context.close()
    finally:
        await sim.stop(grace=20, expect_returncode=0)


async def test_slow_internet_panel_reads_wifi_lan_and_wan_of_tr098_and_tr181_devices(
    acs_serve: AcsServeFactory, mongo_client: Client, browser: Any, tmp_path: Path,  # noqa: F811
    request: pytest.FixtureRequest, shots: Path,
) -> None:
    """"Read now" on a TR-098 and a TR-181 simulated device: SSIDs, stations with signal, hosts, ports, PPP."""
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name)
    sim = start_sim(args=["--url", acs.cwmp_url, "--devices", "3", "--profile", "mix", "--seed", "17",
                          "--cr-listen", f"127.0.0.1:{free_port()}", "--summary-every", "0"],
                    log_path=tmp_path / "sim.log")
    try:
        await asyncio.to_thread(_create_user, acs)
        devices = mongo_client[name].devices

        async def by_root() -> dict[str, MongoDocument] | None:
            found = [doc async for doc in devices.find({"connection_request_username": {"$exists": True}})]
            roots = {doc.get("root"): doc for doc in found}
            return roots if {"InternetGatewayDevice.", "Device."} <= set(roots) else None

        roots = await wait_until(by_root, timeout=60, message=sim.describe("devices not provisioned"))
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Moscow")
        page = await context.new_page()
        await page.goto(acs.api_url + "/login")
        await page.fill("input[name=username]", USER)
        await page.fill("input[name=password]", USER_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("header nav")
        for root, shot in (("InternetGatewayDevice.", "lan-tr098"), ("Device.", "lan-tr181")):
            device = roots[root]
            await page.goto(acs.api_url + f"/devices/{quote(device['_id'], safe='')}")
            await page.click("#lan-link")
            assert "not read yet" in await page.inner_text("#age-wifi")
            await page.click("#lan-read")
            await page.wait_for_function(  # the page reloads itself once the reads are final
                "() => { const age = document.getElementById('age-wifi');"
                " return age && !age.textContent.includes('not read'); }", timeout=60_000)
            wifi = await page.inner_text("#lan-wifi")
            assert "2.4GHz" in wifi and "dBm" in wifi, wifi  # a band, and a station with its signal
            assert await page.locator("#lan-wifi table.stations tbody tr").count() >= 2
            assert await page.locator("#lan-hosts tbody tr").count() == 2
            assert await page.locator("#lan-ports tbody tr").count() >= 3
            assert "Connected" in await page.inner_text("#wan-links")
            await page.screenshot(path=str(shots / f"{shot}-en.png"), full_page=True)
        # Targeted: the panel's reads named objects, never the whole tree.
        tasks = [task async for task in mongo_client[name].tasks.find({"kind": "get_parameter_values",
                                                                      "created_by": f"user:{USER}"})]
        assert len(tasks) == 8 and all(root not in task["params"]["names"] for task in tasks for root in roots)
        await _russian(page)
        await page.wait_for_selector("text=Медленный интернет")
        await page.screenshot(path=str(shots / "lan-tr181-ru.png"), full_page=True)
        await context.close()
    finally:
        await sim.stop(grace=20, expect_returncode=0)
