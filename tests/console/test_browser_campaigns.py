"""Campaigns in headless Chromium (issue 15): line 2 opens the campaign page, pauses and resumes it,
sees on a device's page the campaign that touched it, and from the incident of the installed version
pauses the campaign that installed it. Skipped outside CI when Chromium or Playwright is missing
(the ``browser`` fixture of test_browser.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.console.conftest import PASSWORD, ConsoleHarness, NightUpgrade, open_version_incident
from tests.console.test_browser import SCREENSHOTS, browser  # noqa: F401  (the fixture)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    place = SCREENSHOTS if os.environ.get("ACS_SCREENSHOTS") == "1" else tmp_path
    place.mkdir(parents=True, exist_ok=True)
    return place


async def test_campaign_page_device_view_and_pause_from_the_incident(
    console: ConsoleHarness, night_upgrade: NightUpgrade, browser: Any, shots: Path  # noqa: F811
) -> None:
    campaign_id, devices = night_upgrade.campaign_id, night_upgrade.devices
    incident_id = await open_version_incident(console, night_upgrade)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Moscow")
    page = await context.new_page()
    await page.goto(console.url("/login"))
    await page.fill("input[name=username]", "u-operator")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("header nav")

    await page.click("header nav a[href='/campaigns']")
    await page.click(f"a.campaign-link[href='/campaigns/{campaign_id}']")
    await page.wait_for_selector("#campaign-waves")
    assert "running" in await page.inner_text("#campaign-status")
    assert "pending 3" in await page.inner_text("#campaign-counts")
    assert await page.locator("#campaign-waves tbody tr").count() == 2
    await page.fill("#campaign-reason", "storm tonight")
    await page.click("#campaign-pause")
    await page.locator("#campaign-status", has_text="paused").wait_for(timeout=10_000)
    assert "storm tonight" in await page.inner_text("#campaign-stopped")
    await page.screenshot(path=str(shots / "campaign.png"), full_page=True)
    await page.click("#campaign-resume")
    await page.locator("#campaign-status", has_text="running").wait_for(timeout=10_000)

    await page.goto(console.url(f"/devices/{quote(devices[0], safe='')}"))
    line = await page.inner_text("#device-campaign")
    assert "night upgrade (running): V1 → V2, this device failed" in line and "TransferComplete fault 9010" in line
    await page.click(f"#device-campaign a[href='/campaigns/{campaign_id}']")
    await page.wait_for_selector("#campaign-waves")

    await page.goto(console.url(f"/incidents/{incident_id}"))
    await page.click(f"#pause-campaign-{campaign_id}")
    await page.wait_for_selector("#incident-campaigns")
    assert page.url.endswith(f"/incidents/{incident_id}")
    assert "paused" in await page.inner_text("#incident-campaigns")
    assert await page.locator(f"#pause-campaign-{campaign_id}").count() == 0
    await context.close()
    stored = await console.services.repositories.campaigns.get(campaign_id)
    assert stored is not None and stored["status"] == "paused" and stored["stopped_by"]["by"] == "user:u-operator"
