"""Campaigns in the console (issue 15 items 4 and 6): the list and a campaign's progress with the
operator's actions (audited), the device page's line-2 view of its campaign, and "pause the campaign
that installed it" on the incident of that software version."""

from __future__ import annotations

from urllib.parse import quote

from tests.console.conftest import ConsoleHarness, NightUpgrade, open_version_incident


async def test_the_campaign_pages_and_the_operator_actions(
    console: ConsoleHarness, night_upgrade: NightUpgrade
) -> None:
    campaign_id, devices = night_upgrade.campaign_id, night_upgrade.devices
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
    console: ConsoleHarness, night_upgrade: NightUpgrade,
) -> None:
    campaign_id = night_upgrade.campaign_id
    incident_id = await open_version_incident(console, night_upgrade)
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
