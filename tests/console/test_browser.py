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

from tasks.store.parameters import VALUE, field_path
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
    started = time.monotonic()
    await page.goto(acs.api_url + "/")
    assert "/login" in page.url
    await page.screenshot(path=str(shots / "login.png"))
    await page.fill("input[name=username]", USER)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.fill("#q", "HG8245")  # both devices (one match would open its page directly)
    await page.press("#q", "Enter")
    await page.wait_for_selector("a.result")
    await page.screenshot(path=str(shots / "search.png"))
    first = (await page.locator("a.result").first.inner_text()).strip()
    await page.keyboard.press("Escape")
    await page.focus("#q")
    await page.keyboard.press("ArrowDown")  # keyboard: to the first result, Enter opens it
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#act-reboot")
    assert first in await page.inner_text("h1")

    await page.click("#act-reboot")
    done = page.locator("#activity li.ok", has_text="Reboot")
    await done.wait_for(timeout=60_000)
    reboot_seconds = time.monotonic() - started
    print(f"\nconsole opened -> reboot confirmed: {reboot_seconds:.1f} s")
    history = page.locator("#history-rows", has_text="Queued «Reboot» — done")
    await history.wait_for(timeout=10_000)
    assert "The device rebooted and was back after" in await done.inner_text()

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


# Issue 12 in the browser: 12 devices on OLT-0001 (4 per PON), two PONs go dark 25 s in (an OLT incident);
# the page follows actions without a reload, "/" and one exact match, 400 px, and the screenshots of
# docs/screenshots/ (device online, offline, warn; the OLT incident; English and Russian).
async def test_line2_truth_in_the_browser(
    acs_serve: AcsServeFactory, mongo_client: Client, browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name, env=OUTAGE_SETTINGS)
    sim = start_sim(args=["--url", acs.cwmp_url, "--devices", "12", "--profile", "huawei-hg8245", "--seed", "3",
                          "--interval", "10", "--ramp", "50", "--onts-per-pon", "4",
                          "--cr-listen", f"127.0.0.1:{free_port()}", "--summary-every", "0",
                          "--scenario", "olt-outage", "--outage-olt", "OLT-0001", "--outage-pons", "2",
                          "--outage-start", str(OUTAGE_START), "--outage-duration", "600"],
                    log_path=tmp_path / "sim.log")
    shots = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(_create_user, acs)
        db = mongo_client[name]

        async def judged(pon: str) -> MongoDocument | None:
            return await db.devices.find_one({"health.status": "ok", "pon_port": pon,
                                              "connection_request_username": {"$exists": True}})

        healthy = await wait_until(lambda: judged("0/1/2"), timeout=OUTAGE_START + 30,
                                   message=acs.describe("no device of the lit PON health-checked"))
        warn = await wait_until(lambda: judged("0/1/1"), timeout=30, message=acs.describe("no second device"))
        await _make_warn(db, warn)
        await _truth(browser, acs, db, healthy, warn, shots)
    finally:
        await sim.stop(grace=20, expect_returncode=None)


async def _make_warn(db: Any, device: MongoDocument) -> None:
    """One ONT at the edge of its family's RX limit (-25.4 dBm against -25), as a health read stores it."""
    reason = {"check": "optical", "level": "warn", "message": "optical RX power -25.4 dBm below -25 dBm",
              "code": "rx_low", "params": {"value": -25.4, "limit": -25.0}}
    health = {**device["health"], "status": "warn", "reasons": [reason],
              "values": {**device["health"]["values"], "rx_power": -25.4}}
    await db.devices.update_one({"_id": device["_id"]}, {"$set": {"health": health}})
    rx = "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig.RXPower"
    await db.parameters.update_one({"_id": device["_id"]}, {"$set": {f"{field_path(rx)}.{VALUE}": "-25.40"}})


async def _login(page: Any, acs: AcsProcess, target: str = "/") -> None:
    await page.goto(acs.api_url + target)
    await page.fill("input[name=username]", USER)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def _truth(browser: Any, acs: AcsProcess, db: Any, healthy: MongoDocument, warn: MongoDocument,
                 shots: Path) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Moscow")
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await _login(page, acs)
    # "/" is the key to the search box, not a character in it; one exact match opens the device.
    await page.wait_for_selector("#q")
    await page.keyboard.press("/")
    assert await page.input_value("#q") == ""
    await page.keyboard.type(healthy["serial_number"])
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#act-reboot")
    assert "/devices/" in page.url and healthy["serial_number"] in await page.inner_text("h1")
    await page.screenshot(path=str(shots / "device-online-en.png"), full_page=True)

    # Actions update the page without a reload: tags, recent tasks, the reboot count.
    marker = await page.evaluate("() => (window.__noReload = 1)")
    assert marker == 1
    await page.fill("#tag-name", "acct-777")
    await page.click("#tag-add")
    await page.locator("#tags", has_text="acct-777").wait_for(timeout=10_000)
    before = int(await page.inner_text("#reboots"))
    await page.click("#act-reboot")
    await page.locator("#activity li.ok", has_text="The device rebooted and was back after").wait_for(timeout=60_000)
    await page.locator("#recent-tasks", has_text="Reboot").wait_for(timeout=10_000)
    await page.locator("#reboots", has_text=str(before + 1)).wait_for(timeout=10_000)
    await page.locator("#history-rows", has_text="Queued «Reboot» — done").wait_for(timeout=10_000)
    assert await page.evaluate("() => window.__noReload") == 1, "no reload happened"
    # The parameter tree's count follows a refresh.
    await page.goto(page.url + "/parameters")
    count = await page.inner_text("#param-count")
    await page.evaluate("() => (window.__noReload = 1)")
    await page.locator("summary").first.locator("button").click()  # refresh the whole tree
    await page.locator("#activity li.ok").wait_for(timeout=30_000)
    await page.wait_for_function("(before) => document.getElementById('param-count').textContent !== before",
                                 arg=count, timeout=10_000)
    assert await page.evaluate("() => window.__noReload") == 1

    await page.goto(acs.api_url + f"/devices/{warn['_id']}")
    assert "-25.4 dBm · warning" in await page.inner_text("#summary")
    await page.screenshot(path=str(shots / "device-warn-en.png"), full_page=True)

    async def olt_incident() -> MongoDocument | None:
        return await db.incidents.find_one({"status": "open"})

    incident = await wait_until(olt_incident, timeout=OUTAGE_START + 90, interval=0.5,
                                message=acs.describe("no incident opened by the outage"))
    dark = await wait_until(lambda: db.devices.find_one({"_id": {"$in": incident["members"]},
                                                         "offline_since": {"$ne": None}}), timeout=30)
    device_url = acs.api_url + f"/devices/{dark['_id']}"
    await page.goto(device_url)
    banner = await page.inner_text("#offline-banner")
    assert banner.startswith("Offline since") and "UTC" in banner
    assert await page.locator("#summary dl.stale").count() == 1
    confirm = await page.get_attribute("form[action$='/actions/reboot']", "data-confirm")
    assert confirm is not None and "OFFLINE" in confirm
    await page.screenshot(path=str(shots / "device-offline-en.png"), full_page=True)
    await page.goto(acs.api_url + f"/incidents/{incident['_id']}")
    await page.screenshot(path=str(shots / "incident-olt-en.png"), full_page=True)
    # The session ends while a comment is being typed: the console says so and the text stays.
    await page.fill("#incident-comment", "fibre cut at the cabinet, crew sent")
    await context.clear_cookies()
    await page.click("#incident-add-comment")
    await page.locator("#activity li.bad", has_text="Your session has expired").wait_for(timeout=10_000)
    assert await page.input_value("#incident-comment") == "fibre cut at the cabinet, crew sent"
    await _login(page, acs, f"/incidents/{incident['_id']}")
    await page.wait_for_selector("#incident-comment")

    await page.click("#lang-ru")
    await page.wait_for_selector("text=Поиск")
    await page.goto(acs.api_url + "/settings")
    await page.fill("input[name=time_zone]", "Europe/Moscow")
    await page.click("form.stack button")
    await page.goto(device_url)
    banner = await page.inner_text("#offline-banner")
    assert banner.startswith("Не в сети с") and "MSK" in banner
    await page.screenshot(path=str(shots / "device-offline-ru.png"), full_page=True)
    await page.goto(acs.api_url + f"/incidents/{incident['_id']}")
    assert "Авария на OLT" in await page.inner_text("h1")
    await page.screenshot(path=str(shots / "incident-olt-ru.png"), full_page=True)
    await page.goto(acs.api_url + f"/devices/{warn['_id']}")
    await page.screenshot(path=str(shots / "device-warn-ru.png"), full_page=True)
    await page.goto(acs.api_url + f"/devices/{healthy['_id']}")
    await page.wait_for_selector("#next-step")
    await page.screenshot(path=str(shots / "device-online-ru.png"), full_page=True)
    await context.close()

    # 400 px: nothing scrolls sideways, the user name and "Log out" stay in the header, readable.
    narrow = await browser.new_context(viewport={"width": 400, "height": 800})
    page = await narrow.new_page()
    await _login(page, acs)
    for path in ("/?q=OLT", f"/devices/{dark['_id']}", f"/devices/{healthy['_id']}/history",
                 f"/incidents/{incident['_id']}", "/incidents"):
        await page.goto(acs.api_url + path)
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 400, f"{path} scrolls sideways ({width} px)"
        for selector in ("header .who", "#logout"):
            box = await page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 400, (path, selector, box)
        if path.startswith("/devices/") and not path.endswith("/history"):
            await page.screenshot(path=str(shots / "device-400px.png"), full_page=True)
    await narrow.close()
