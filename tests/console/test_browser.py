"""The console in headless Chromium (Debian's package, driven by Playwright) against `acs serve`
and `acs sim` devices, as line 2 uses it: log in, find, reboot, set, ping, history, Russian.

Skipped, with the reason, only when Chromium or Playwright is missing outside CI; in CI
(``CI=true``, where ``.ci/run`` installs both) a missing browser fails. Screenshots go to
``docs/screenshots/`` when ``ACS_SCREENSHOTS=1`` (how the README's were made), else to tmp_path.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import AcsServeFactory
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import AcsProcess, acs_command, free_port, start_sim, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "line2-olga", "a-long-secret-1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
Client = AsyncMongoClient[MongoDocument]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def _create_user(acs: AcsProcess) -> None:
    subprocess.run([*acs_command(), "user", "create", "--name", USER, "--role", "operator", "--password-stdin"],
                   env=acs.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=True)


async def test_line2_call(
    acs_serve: AcsServeFactory, mongo_client: Client, browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name)
    sim = start_sim(args=["--url", acs.cwmp_url, "--devices", "2", "--profile", "huawei-hg8245", "--seed", "5",
                          "--cr-listen", f"127.0.0.1:{free_port()}", "--summary-every", "0"],
                    log_path=tmp_path / "sim.log")
    shots = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(_create_user, acs)
        devices = mongo_client[name].devices

        async def provisioned() -> MongoDocument | None:
            return await devices.find_one({"connection_request_username": {"$exists": True}},
                                          sort=[("_id", 1)])

        device = await wait_until(provisioned, timeout=60, message=sim.describe("no device provisioned"))
        await wait_until(lambda: devices.count_documents({}), timeout=30)
        await _call(browser, acs, device, shots)
    finally:
        await sim.stop(grace=20, expect_returncode=0)


async def _call(browser: Any, acs: AcsProcess, device: MongoDocument, shots: Path) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 860}, timezone_id="Europe/Moscow")
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    serial = device["serial_number"]
    started = time.monotonic()
    await page.goto(acs.api_url + "/")
    assert "/login" in page.url
    await page.screenshot(path=str(shots / "login.png"))
    await page.fill("input[name=username]", USER)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.fill("#q", serial[-6:])
    await page.press("#q", "Enter")
    await page.wait_for_selector("a.result")
    await page.screenshot(path=str(shots / "search.png"))
    await page.keyboard.press("Escape")
    await page.focus("#q")
    await page.keyboard.press("ArrowDown")  # keyboard: to the first result, Enter opens it
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#act-reboot")
    assert serial in await page.inner_text("h1")

    await page.click("#act-reboot")
    done = page.locator("#activity li.ok", has_text="Reboot")
    await done.wait_for(timeout=60_000)
    reboot_seconds = time.monotonic() - started
    print(f"\nconsole opened -> reboot confirmed: {reboot_seconds:.1f} s")
    history = page.locator("#history-rows", has_text=f"user:{USER}: Queue a task for a device: reboot")
    await history.wait_for(timeout=10_000)
    assert "rebooted_after_seconds" in await done.inner_text()

    # Set a writable parameter to a value the device refuses: the device's own fault is shown.
    await page.fill("input[name=path]", "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.")
    await page.click("form[action$='/actions/refresh'] button")
    await page.locator("#activity li.ok", has_text="Refresh").wait_for(timeout=30_000)
    await page.fill("#set-name", "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.DuplexMode")
    await page.fill("#set-value", "Sideways")
    await page.click("#set-send")
    # TR-069 A.3.2.1: fault 9003 with the per-parameter 9007 (invalid value) in its detail.
    fault = page.locator("#activity li.bad", has_text="DuplexMode: 9007")
    await fault.wait_for(timeout=30_000)
    assert "9003" in await fault.inner_text()

    # The device's own ping test.
    await page.fill("#diag-target", "192.0.2.1")
    await page.click("#diag-run")
    ping = page.locator("#activity li.ok", has_text="SuccessCount")
    await ping.wait_for(timeout=60_000)
    await page.screenshot(path=str(shots / "device.png"))

    device_url = page.url
    await page.goto(device_url + "/parameters?q=DuplexMode")
    await page.wait_for_selector(".pvalue")
    await page.goto(device_url + "/parameters")
    await page.click("summary >> text=LANDevice")
    await page.screenshot(path=str(shots / "parameters.png"))
    await page.goto(device_url + "/history")
    await page.wait_for_selector("#history-rows tr")
    await page.screenshot(path=str(shots / "history.png"))

    await page.click("#lang-ru")
    await page.wait_for_selector("text=Поиск")
    await page.goto(acs.api_url + "/settings")
    await page.fill("input[name=time_zone]", "Europe/Moscow")
    await page.click("form.stack button")
    await page.goto(device_url)
    await page.wait_for_selector("text=Перезагрузить")
    assert "MSK" in await page.inner_text("#last-inform") or "+03" in await page.inner_text("#last-inform")
    await page.screenshot(path=str(shots / "device-ru.png"))
    await context.close()


# An OLT outage that opens an incident within seconds: 8 devices informing every 10 s, 4 per PON port of
# OLT-0001; one port goes dark 25 s after the fleet starts; offline after 1 x 10 s + 2 s; jobs every second.
OUTAGE_SETTINGS = {
    "ACS_PERIODIC_INFORM_INTERVAL": "10",
    "ACS_OFFLINE_INTERVAL_FACTOR": "1.0",
    "ACS_OFFLINE_GRACE": "2",
    "ACS_OFFLINE_CHECK_INTERVAL": "1",
    "ACS_HEALTH_INTERVAL": "600",
    "ACS_HEALTH_CHECK_INTERVAL": "1",
    "ACS_HEALTH_RIDE_WINDOW": "15",
    "ACS_INCIDENT_CHECK_INTERVAL": "1",
    "ACS_INCIDENT_WINDOW": "120",
    "ACS_INCIDENT_MIN_DEVICES": "3",
}
OUTAGE_START = 25.0


async def test_open_an_incident_from_the_outage_scenario_and_acknowledge_it(
    acs_serve: AcsServeFactory, mongo_client: Client, browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name, env=OUTAGE_SETTINGS)
    sim = start_sim(args=["--url", acs.cwmp_url, "--devices", "8", "--profile", "huawei-hg8245", "--seed", "3",
                          "--interval", "10", "--ramp", "50", "--onts-per-pon", "4",
                          "--cr-listen", f"127.0.0.1:{free_port()}", "--summary-every", "0",
                          "--scenario", "olt-outage", "--outage-olt", "OLT-0001", "--outage-pons", "1",
                          "--outage-start", str(OUTAGE_START), "--outage-duration", "600"],
                    log_path=tmp_path / "sim.log")
    shots = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(_create_user, acs)
        db = mongo_client[name]

        async def opened() -> MongoDocument | None:
            return await db.incidents.find_one({"status": "open"})

        incident = await wait_until(opened, timeout=OUTAGE_START + 60, interval=0.5,
                                    message=acs.describe("no incident opened by the outage"))
        started = time.monotonic()
        await _acknowledge(browser, acs, incident, shots)
        print(f"\nincident #{incident['_id']} ({incident['title']}) acknowledged in the browser "
              f"{time.monotonic() - started:.1f} s after it opened")
        stored = await db.incidents.find_one({"_id": incident["_id"]})
        assert stored is not None and stored["acknowledged"]["by"] == f"user:{USER}"
        assert await db.audit.count_documents({"incident_id": incident["_id"], "token_name": f"user:{USER}"}) == 1
    finally:
        await sim.stop(grace=20, expect_returncode=None)


async def _acknowledge(browser: Any, acs: AcsProcess, incident: MongoDocument, shots: Path) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    await page.goto(acs.api_url + "/incidents")
    await page.fill("input[name=username]", USER)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    link = page.locator(f"a.incident-link[href='/incidents/{incident['_id']}']")
    await link.wait_for(timeout=10_000)
    assert "not acknowledged" in await page.inner_text("#incident-rows")
    await page.screenshot(path=str(shots / "incidents.png"))
    await link.click()
    await page.wait_for_selector("#incident-ack")
    assert "not acknowledged" in await page.inner_text("#ack-state")
    await page.fill("#incident-comment", "OLT team informed, fibre crew on the way")
    await page.click("#incident-ack")
    await page.locator("#ack-state", has_text=f"acknowledged by user:{USER}").wait_for(timeout=10_000)
    await page.locator("#comments", has_text="fibre crew on the way").wait_for(timeout=5_000)
    assert await page.locator("#incident-ack").count() == 0
    await page.screenshot(path=str(shots / "incident.png"), full_page=True)
    # From the incident to a device and back.
    await page.locator("a.member").first.click()
    await page.wait_for_selector("#diagnosis")
    assert f"part of incident #{incident['_id']}" in await page.inner_text("#next-step")
    await page.click(f"#device-incidents a[href='/incidents/{incident['_id']}']")
    await page.wait_for_selector("#ack-state")
    await page.goto(acs.api_url + "/incidents")
    await page.locator("#incident-rows", has_text=f"acknowledged by user:{USER}").wait_for(timeout=5_000)
    await context.close()
