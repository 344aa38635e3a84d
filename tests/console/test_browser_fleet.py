"""Issue 16 items 1-4 and 9 in headless Chromium, against the console over real HTTP and the test's
database: the fleet overview and OLT -> PON -> ONT, the device list (columns, sort, saved filter, CSV),
every bulk action from the list (preview, confirmation, progress, cancel), the task queue and the
faults page, accounts and the audit page; each page in English and Russian.

Screenshots go to ``docs/screenshots/`` with ``ACS_SCREENSHOTS=1`` (how the README's were made), else
to tmp_path. Skipped, with the reason, only when Chromium or Playwright is missing outside CI.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from schemas.tasks import RebootTask, TaskStatus
from tasks.fleet import FleetCensus
from tasks.store.files import NewFile
from tasks.store.fleet import FleetSummaryRepository
from tests.console.conftest import PASSWORD, ConsoleHarness
from tests.console.test_browser import SCREENSHOTS, browser  # noqa: F401 (the fixture)
from tests.console.test_incidents import _incident


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _fleet(console: ConsoleHarness) -> list[str]:
    """Two OLTs, PON 0/1/2 of OLT-0001 dark, a critical and a warn ONT, regions; the census taken."""
    devices = console.services.repositories.devices
    ids = []
    for n in range(24):
        olt = "OLT-0001" if n < 16 else "OLT-0002"
        pon = f"0/1/{n % 4 + 1}" if olt == "OLT-0001" else "0/2/1"
        dark = olt == "OLT-0001" and pon == "0/1/2"
        health = "critical" if n == 3 else "warn" if n == 7 else "ok"
        device_id = await console.device(f"48575443{n:08X}", online=not dark, olt_id=olt, pon_port=pon,
                                         software_version="V5R019C10S125" if n % 3 else "V5R020C00S080",
                                         health_definite=health, health={"status": health},
                                         remote_ip=f"10.64.{n // 8}.{n + 10}")
        await devices.add_tags(device_id, ["region:north" if olt == "OLT-0001" else "region:south"])
        ids.append(device_id)
    services = console.services
    await FleetCensus(devices, FleetSummaryRepository(services.database), services.clock).run()
    return ids


async def _page(chromium: Any, console: ConsoleHarness, username: str = "u-admin") -> tuple[Any, Any]:
    context = await chromium.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Europe/Moscow",
                                        accept_downloads=True)
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(console.url("/login"))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#nav-fleet")
    return context, page


async def _russian(page: Any) -> None:
    await page.click("#lang-ru")
    await page.wait_for_selector("#lang-en")


async def test_overview_olt_view_and_device_list_in_the_browser(
    console: ConsoleHarness, browser: Any, shots: Path  # noqa: F811
) -> None:
    await _fleet(console)
    context, page = await _page(browser, console)
    await page.goto(console.url("/"))
    assert await page.inner_text("#tile-offline b") == "4"
    await page.screenshot(path=str(shots / "fleet-en.png"))
    await page.click("#tile-offline")
    await page.locator("#search-count", has_text="4 devices match").wait_for()
    # OLT -> PON -> ONT.
    await page.goto(console.url("/fleet/olts"))
    await page.click("a.olt-link >> text=OLT-0001")
    await page.locator("#olt-status", has_text="degraded").wait_for()
    assert "down" in await page.inner_text("#pons")
    await page.screenshot(path=str(shots / "olt-en.png"))
    await page.click("a.pon-link >> text=0/1/2")
    await page.locator("#search-count", has_text="4 devices match").wait_for()
    assert await page.locator("#results .badge.off").count() == 4
    # Columns, sort, a saved filter, the CSV.
    await page.goto(console.url("/?olt=OLT-0001"))
    await page.click("#list-options summary")
    await page.uncheck("input.col-choice[value=tags]")
    await page.uncheck("input.col-choice[value=ip]")
    await page.click("#columns-apply")
    await page.wait_for_selector("#results")
    headers = await page.eval_on_selector_all("#results thead a.sort", "links => links.map(a => a.dataset.sort)")
    assert "tags" not in headers and "ip" not in headers and "health" in headers
    await page.click("#results thead a.sort[data-sort=serial]")
    await page.click("#results thead a.sort[data-sort=serial]")  # again: descending
    await page.wait_for_url("**sort=-serial**")
    first = (await page.locator("a.result").first.inner_text()).strip()
    assert first == "485754430000000F"
    await page.click("#list-options summary")
    await page.fill("#filter-name", "OLT-0001 by serial")
    await page.click("#filter-save")
    await page.locator("#saved-filters a", has_text="OLT-0001 by serial").wait_for()
    async with page.expect_download() as download_info:
        await page.click("#export-csv")
    download = await download_info.value
    text = Path(await download.path()).read_text("utf-8")
    assert len(text.strip().splitlines()) == 17, "a header and the OLT's 16 devices"
    await page.screenshot(path=str(shots / "device-list-en.png"))
    await _russian(page)
    await page.goto(console.url("/"))
    await page.locator("h1", has_text="Обзор парка").wait_for()
    await page.screenshot(path=str(shots / "fleet-ru.png"))
    await page.goto(console.url("/fleet/olts?olt=OLT-0001"))
    await page.locator("#olt-status", has_text="частично недоступен").wait_for()
    await page.screenshot(path=str(shots / "olt-ru.png"))
    await page.goto(console.url("/?olt=OLT-0001&sort=-serial"))
    await page.locator("#search-count", has_text="16").wait_for()
    await page.screenshot(path=str(shots / "device-list-ru.png"))
    await context.close()


async def _bulk_from_selection(page: Any, console: ConsoleHarness, count: int, form: str,
                               fill: dict[str, str] | None = None) -> str:
    """Select ``count`` devices of OLT-0002 in the list, open the bulk page, run one action form."""
    await page.goto(console.url("/?olt=OLT-0002&sort=serial"))
    boxes = page.locator("input.pick")
    for n in range(count):
        await boxes.nth(n).check()
    await page.click("#bulk-selected")
    await page.locator("#bulk-count", has_text=f"{count} devices will get this action.").wait_for()
    for selector, value in (fill or {}).items():
        if selector.startswith("select"):
            await page.select_option(f"#{form} {selector}", value)
        else:
            await page.fill(f"#{form} {selector}", value)
    await page.check(f"#{form} input.bulk-confirm")
    await page.click(f"#{form} button")
    await page.wait_for_url("**/bulk/*")
    return str(page.url).rsplit("/", 1)[-1]


async def test_every_bulk_action_in_the_browser(
    console: ConsoleHarness, browser: Any, shots: Path  # noqa: F811
) -> None:
    ids = await _fleet(console)
    services = console.services

    async def content() -> AsyncIterator[bytes]:
        yield b"firmware"

    stored = await services.repositories.files.put(
        content(), NewFile(name="HG8245H-V5R020.bin", file_type="1 Firmware Upgrade Image",
                           content_type="application/octet-stream", uploaded_by="test"), services.clock(), 1 << 20)
    await services.repositories.firmware.add(stored, "V5R020C00S080", ["HG8245H"], "Huawei", "test", services.clock())
    context, page = await _page(browser, console, "u-operator")
    tasks = services.database.collection("tasks")

    batch = await _bulk_from_selection(page, console, 3, "bulk-reboot")
    await page.locator("#bulk-tasks", has_text="3").wait_for()
    assert await tasks.count_documents({"batch_id": batch, "kind": "reboot"}) == 3
    await page.screenshot(path=str(shots / "bulk-progress-en.png"))
    await page.click("#bulk-cancel button")
    await page.locator("#bulk-state", has_text="cancelled").wait_for()
    assert await tasks.count_documents({"batch_id": batch, "status": "cancelled"}) == 3

    batch = await _bulk_from_selection(page, console, 2, "bulk-refresh", {"input[name=path]": "InternetGatewayDevice."})
    await page.locator("#bulk-tasks", has_text="2").wait_for()
    assert await tasks.count_documents({"batch_id": batch, "kind": "refresh"}) == 2

    batch = await _bulk_from_selection(page, console, 2, "bulk-set", {
        "input[name=name]": "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
        "input[name=value]": "600", "select[name=type]": "xsd:unsignedInt"})
    await page.locator("#bulk-tasks", has_text="2").wait_for()
    assert await tasks.count_documents({"batch_id": batch, "kind": "set_parameter_values"}) == 2

    batch = await _bulk_from_selection(page, console, 2, "bulk-firmware")
    await page.locator("#bulk-tasks", has_text="2").wait_for()
    assert await tasks.count_documents({"batch_id": batch, "kind": "download"}) == 2

    batch = await _bulk_from_selection(page, console, 4, "bulk-reprovision")
    await page.locator("#bulk-numbers", has_text="4 of 4 devices done.").wait_for()

    batch = await _bulk_from_selection(page, console, 5, "bulk-tag", {"input[name=new_tag]": "ticket-77"})
    await page.locator("#bulk-numbers", has_text="5 of 5 devices done.").wait_for()
    assert await services.database.collection("devices").count_documents({"tags": "ticket-77"}) == 5

    # From a whole search result, and from an incident's members.
    await page.goto(console.url("/?olt=OLT-0001&online=no"))
    await page.click("#bulk-all")
    await page.locator("#bulk-count", has_text="4 devices will get this action.").wait_for()
    await page.screenshot(path=str(shots / "bulk-en.png"))
    number = await _incident(console, ids[:5])
    await page.goto(console.url(f"/incidents/{number}"))
    await page.click("#bulk-members")
    await page.locator("#bulk-count", has_text="5 devices will get this action.").wait_for()
    await _russian(page)
    await page.locator("#bulk-count", has_text="Действие получат устройств: 5.").wait_for()
    await page.screenshot(path=str(shots / "bulk-ru.png"))
    await page.goto(console.url(f"/bulk/{batch}"))
    await page.locator("#bulk-numbers", has_text="Обработано 5 из 5").wait_for()
    await page.screenshot(path=str(shots / "bulk-progress-ru.png"))
    await context.close()


async def test_tasks_and_faults_in_the_browser(
    console: ConsoleHarness, browser: Any, shots: Path  # noqa: F811
) -> None:
    ids = await _fleet(console)
    queue, repository = console.services.queue, console.services.repositories.tasks
    queued = []
    for device_id in ids[:4]:
        task, _ = await queue.create(device_id, RebootTask.model_validate({"kind": "reboot"}), "user:olga")
        queued.append(task["_id"])
    for n, device_id in enumerate(ids[4:10]):
        task, _ = await queue.create(device_id, RebootTask.model_validate({"kind": "reboot"}), "api-nightly")
        fault = {"code": 9002, "string": "Internal error", "detail": []} if n < 4 else None
        fields = {"finished_at": console.services.clock(), **({"fault": fault} if fault else
                                                               {"reason": "the device did not confirm the reboot"})}
        await repository.finish(task["_id"], ["queued"], TaskStatus.FAILED, fields)
    context, page = await _page(browser, console, "u-operator")
    await page.goto(console.url("/tasks"))
    assert await page.locator("#task-rows tbody tr").count() == 4
    await page.fill("#task-filters input[name=device]", ids[0])
    await page.click("#task-filters button")
    await page.wait_for_url("**device=**")
    assert await page.locator("#task-rows tbody tr").count() == 1
    await page.click("button.task-cancel")
    await page.locator("#no-tasks").wait_for()
    await page.goto(console.url("/tasks"))
    await page.screenshot(path=str(shots / "tasks-en.png"))
    await page.goto(console.url("/faults"))
    rows = page.locator("#fault-groups tbody tr")
    assert await rows.count() == 2
    await page.screenshot(path=str(shots / "faults-en.png"))
    await page.locator("tr", has_text="Internal error").locator("button.fault-retry").click()
    await page.locator("#fault-groups tbody tr").first.wait_for()
    assert await page.locator("#fault-groups", has_text="Internal error").count() == 0
    assert await console.services.database.collection("tasks").count_documents({"retry_of": {"$exists": True}}) == 4
    await page.locator("button.fault-clear").click()
    await page.locator("#no-faults").wait_for()
    await _russian(page)
    await page.goto(console.url("/tasks?status=failed"))
    await page.locator("h1", has_text="Очередь задач").wait_for()
    await page.screenshot(path=str(shots / "tasks-ru.png"))
    await console.services.queue.create(ids[11], RebootTask.model_validate({"kind": "reboot"}), "user:olga")
    last, _ = await queue.create(ids[12], RebootTask.model_validate({"kind": "reboot"}), "user:olga")
    await repository.finish(last["_id"], ["queued"], TaskStatus.FAILED,
                            {"finished_at": console.services.clock(),
                             "fault": {"code": 9001, "string": "Request denied", "detail": []}})
    await page.goto(console.url("/faults"))
    await page.locator("#fault-groups", has_text="Request denied").wait_for()
    await page.screenshot(path=str(shots / "faults-ru.png"))
    await context.close()


async def test_accounts_and_audit_in_the_browser(
    console: ConsoleHarness, browser: Any, shots: Path  # noqa: F811
) -> None:
    viewer_context, viewer = await _page(browser, console, "u-viewer")
    context, page = await _page(browser, console, "u-admin")
    await page.goto(console.url("/users"))
    row = page.locator('tr[data-user="u-viewer"]')
    await row.locator("select[name=role]").select_option("operator")
    await row.locator("button.user-role").click()
    await page.locator("#account-done").wait_for()
    await row.locator("button.user-end-sessions").click()
    await page.locator("#account-done", has_text="sessions ended").wait_for()
    await viewer.goto(console.url("/"))
    await viewer.wait_for_url("**/login**")
    row = page.locator('tr[data-user="u-operator"]')
    await row.locator("input[name=password]").fill("another-long-secret")
    await row.locator("button.user-password").click()
    await page.locator("#account-done", has_text="password is reset").wait_for()
    await page.screenshot(path=str(shots / "users-en.png"))
    await page.click("#nav-audit")
    await page.locator("#audit-rows", has_text="Change the role of console user u-viewer").wait_for()
    await page.fill("#audit-filters input[name=who]", "user:u-admin")
    await page.select_option("#audit-filters select[name=action]", "POST /users/{username}/password")
    await page.click("#audit-filters button")
    await page.wait_for_url("**action=**")
    assert await page.locator("#audit-rows tbody tr").count() == 1
    await page.goto(console.url("/audit"))
    await page.screenshot(path=str(shots / "audit-en.png"))
    await _russian(page)
    await page.goto(console.url("/users"))
    await page.screenshot(path=str(shots / "users-ru.png"))
    await page.goto(console.url("/audit"))
    await page.locator("h1", has_text="Журнал действий").wait_for()
    await page.screenshot(path=str(shots / "audit-ru.png"))
    await context.close()
    await viewer_context.close()


async def test_fleet_pages_do_not_scroll_sideways_at_400_px(
    console: ConsoleHarness, browser: Any  # noqa: F811
) -> None:
    await _fleet(console)
    context = await browser.new_context(viewport={"width": 400, "height": 800})
    page = await context.new_page()
    await page.goto(console.url("/login"))
    await page.fill("input[name=username]", "u-admin")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#nav-fleet")
    for path in ("/", "/fleet/olts", "/fleet/olts?olt=OLT-0001", "/?olt=OLT-0001", "/bulk?olt=OLT-0001",
                 "/tasks", "/faults", "/users", "/audit"):
        await page.goto(console.url(path))
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 400, f"{path} scrolls sideways ({width} px)"
    await context.close()
