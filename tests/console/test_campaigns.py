"""Campaigns in the console (issue 15 items 4 and 6): the list and a campaign's progress with the
operator's actions (audited), the device page's line-2 view of its campaign, and "pause the campaign
that installed it" on the incident of that software version."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from tasks.campaigns.service import CampaignService
from tasks.store.files import NewFile
from tests.console.conftest import ConsoleHarness


async def _campaign(console: ConsoleHarness) -> tuple[str, list[str]]:
    devices = [await console.device(f"HW{n:04d}") for n in range(4)]
    repositories = console.services.repositories
    now = datetime.now(UTC)

    async def content():  # type: ignore[no-untyped-def]
        yield b"image"

    stored = await repositories.files.put(content(), NewFile("HG8245H-V2.bin", "1 Firmware Upgrade Image",
                                                             "application/octet-stream", "test"), now, 1000)
    image = await repositories.firmware.add(stored, "V2", ["HG8245H"], None, "test", now)
    service = CampaignService(repositories.campaigns, repositories.firmware, repositories.devices,
                              console.services.clock)
    campaign = await service.create({
        "name": "night upgrade", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image["_id"]},
        "waves": [{"devices": 2}, {"percent": 100}], "concurrency": 10, "rate": 60, "windows": [],
        "time_zone": "Europe/Moscow", "stop_rules": {"max_failed_share": 0.2, "max_health_regression": 0.2,
                                                     "min_devices": 3, "return_timeout": 900, "health_settle": 60,
                                                     "health_timeout": 1800}}, "test")
    members = console.services.database.collection("campaign_devices")
    await members.update_one({"_id": f"{campaign['_id']}#{devices[0]}"},
                             {"$set": {"state": "failed", "reason": "TransferComplete fault 9010: HTTP 500"}})
    return campaign["_id"], devices


async def test_the_campaign_pages_and_the_operator_actions(console: ConsoleHarness) -> None:
    campaign_id, devices = await _campaign(console)
    operator = await console.login("operator")
    async with operator.http.get(console.url("/campaigns")) as response:
        listed = await response.text()
    assert response.status == 200 and "night upgrade" in listed and f"/campaigns/{campaign_id}" in listed
    async with operator.http.get(console.url(f"/campaigns/{campaign_id}")) as response:
        page = await response.text()
    assert response.status == 200 and 'id="campaign-pause"' in page and "TransferComplete fault 9010" in page
    assert "pending 3" in page and "failed 1" in page and "(Europe/Moscow)" in page

    viewer = await console.login("viewer")
    async with viewer.http.post(console.url(f"/campaigns/{campaign_id}/pause"),
                                data={"csrf": viewer.csrf}, allow_redirects=False) as response:
        assert response.status == 403
    async with operator.http.post(console.url(f"/campaigns/{campaign_id}/pause"),
                                  data={"csrf": operator.csrf, "reason": "storm tonight"},
                                  allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == f"/campaigns/{campaign_id}"
    stored = await console.services.repositories.campaigns.get(campaign_id)
    assert stored is not None and stored["status"] == "paused" and stored["stopped_by"]["reason"] == "storm tonight"
    async with operator.http.post(console.url(f"/campaigns/{campaign_id}/pause"),
                                  data={"csrf": operator.csrf}, allow_redirects=False) as response:
        assert response.status == 409 and "cannot pause" in await response.text()
    audit = console.services.database.collection("audit")
    assert await audit.count_documents({"campaign_id": campaign_id, "via": "console", "status": 200}) == 1

    async with operator.http.get(console.url(f"/devices/{quote(devices[0], safe='')}")) as response:
        device_page = await response.text()
    assert 'id="device-campaign"' in device_page and "night upgrade (paused): V1 → V2, this device failed" in \
        device_page and "TransferComplete fault 9010" in device_page


async def test_an_incident_of_the_version_offers_to_pause_the_campaign_that_installed_it(
    console: ConsoleHarness,
) -> None:
    campaign_id, devices = await _campaign(console)
    now = datetime.now(UTC)
    incident_id = await console.services.repositories.incidents.open({
        "key": "software_version:HG8245H V2", "dimension": "software_version", "value": "HG8245H V2",
        "title": "Software version V2 (HG8245H)", "cause": "software version V2", "selector": [], "opened_at": now,
        "updated_at": now, "members": devices[:2], "member_count": 2, "affected_now": 2, "peak": 2,
        "group_size": 2, "baseline": 0.0, "signals": {"critical": 2}, "acknowledged": None, "comments": [],
        "timeline": [{"at": now, "event": "opened", "affected": 2, "detail": ""}]}, now)
    assert incident_id is not None
    operator = await console.login("operator")
    async with operator.http.get(console.url(f"/incidents/{incident_id}")) as response:
        page = await response.text()
    assert f'id="pause-campaign-{campaign_id}"' in page and "Pause the campaign that installed it" in page
    async with operator.http.post(console.url(f"/campaigns/{campaign_id}/pause"), allow_redirects=False,
                                  data={"csrf": operator.csrf, "back": f"/incidents/{incident_id}",
                                        "reason": f"#{incident_id}"}) as response:
        assert response.status == 303 and response.headers["Location"] == f"/incidents/{incident_id}"
    stored = await console.services.repositories.campaigns.get(campaign_id)
    assert stored is not None and stored["status"] == "paused"
    async with operator.http.get(console.url(f"/incidents/{incident_id}")) as response:
        page = await response.text()
    assert f'id="pause-campaign-{campaign_id}"' not in page and "paused" in page
