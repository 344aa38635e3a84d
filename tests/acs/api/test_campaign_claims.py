"""Exactly once per device and campaign (issue 15 item 5), on the real database: racing claims,
a run that died between its claim and its task, and a job run twice over the same state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from acs.transfers import download_url
from tasks.campaigns.job import CampaignJob
from tests.acs.api.conftest import ApiHarness
from tests.acs.api.test_campaigns import firmware


def campaign_job(api: ApiHarness) -> CampaignJob:
    services = api.services
    repositories = services.repositories
    return CampaignJob(repositories.campaigns, repositories.firmware, repositories.devices, repositories.tasks,
                       services.queue, repositories.events, repositories.incidents, services.clock,
                       lambda file_id: download_url(services.settings, file_id))


async def test_racing_claims_give_one_winner(api: ApiHarness) -> None:
    campaigns = api.services.repositories.campaigns
    now = datetime.now(UTC)
    won = await asyncio.gather(*(campaigns.claim("c1", "dev-1", "upgrade", f"task-{n}", now) for n in range(12)))
    assert won.count(True) == 1
    claim = await campaigns.claims("c1", "dev-1", "upgrade")
    assert claim is not None and claim["task_id"] == f"task-{won.index(True)}"
    assert await campaigns.claim("c1", "dev-1", "rollback", "task-r", now)  # a rollback is its own right


async def test_an_orphaned_claim_is_finished_by_one_run(api: ApiHarness) -> None:
    # Several runs find the same orphan at once: FerretDB 1.24 lets every one of them "move" the
    # member from pending (it reads, then writes), so only an insert can pick the one to finish it.
    campaigns = api.services.repositories.campaigns
    then = datetime.now(UTC) - timedelta(minutes=5)
    assert await campaigns.claim("c1", "dev-1", "upgrade", "task-dead", then)
    claim = await campaigns.claims("c1", "dev-1", "upgrade")
    assert claim is not None
    now = datetime.now(UTC)
    won = await asyncio.gather(*(campaigns.take_over(claim, now, timedelta(minutes=1)) for _ in range(12)))
    assert won.count(True) == 1
    assert not await campaigns.take_over(claim, now + timedelta(seconds=30), timedelta(minutes=1))  # still at work
    # The taker died in turn: a minute later the next run takes over, once.
    later = await asyncio.gather(*(campaigns.take_over(claim, now + timedelta(minutes=2), timedelta(minutes=1))
                                   for _ in range(12)))
    assert later.count(True) == 1


async def test_each_device_gets_one_download_however_often_the_job_runs(api: ApiHarness) -> None:
    devices = [await api.device(f"HW{n:04d}", software_version="V1") for n in range(6)]
    image = await firmware(api, "V2", "HG8245H")
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json={
        "name": "once", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image},
        "waves": [{"percent": 100}]})
    assert status == 201, campaign
    # A run that died after taking the claim of the first device, before queueing its task.
    campaigns = api.services.repositories.campaigns
    assert await campaigns.claim(campaign["id"], devices[0], "upgrade", "6b0000000000000000000001",
                                 datetime.now(UTC) - timedelta(minutes=5))
    first, second = campaign_job(api), campaign_job(api)
    await asyncio.gather(first.run(), second.run())  # two processes around a lease takeover
    await first.run()
    tasks = [task async for task in api.services.database.collection("tasks").find({"kind": "download"})]
    assert sorted(task["device_id"] for task in tasks) == sorted(devices)
    assert next(t for t in tasks if t["device_id"] == devices[0])["_id"] == "6b0000000000000000000001"
    assert {task["created_by"] for task in tasks} == {f"campaign:{campaign['id']}:upgrade"}
    assert all(task["params"]["url"].endswith(f"/files/{image}") for task in tasks)
    status, members = await api.call("GET", f"/api/v1/campaigns/{campaign['id']}/devices", "viewer")
    assert {member["state"] for member in members["items"]} == {"downloading"}
    events = api.services.database.collection("device_events")
    assert await events.count_documents({"type": "campaign", "detail.state": "downloading"}) == len(devices)


async def test_an_operator_session_and_an_offline_device_are_left_alone(api: ApiHarness) -> None:
    busy = await api.device("HW0001", software_version="V1")
    offline = await api.device("HW0002", software_version="V1", online=False)
    free = await api.device("HW0003", software_version="V1")
    status, task = await api.call("POST", f"/api/v1/devices/{quote(busy, safe='')}/tasks", "operator",
                                  json={"kind": "get_parameter_values", "names": ["InternetGatewayDevice.DeviceInfo."]})
    assert status in (200, 201, 202), task
    image = await firmware(api, "V2", "HG8245H")
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json={
        "name": "careful", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image},
        "waves": [{"percent": 100}]})
    assert status == 201, campaign
    await campaign_job(api).run()
    tasks = [t["device_id"] async for t in api.services.database.collection("tasks").find({"kind": "download"})]
    assert tasks == [free]
    status, members = await api.call("GET", f"/api/v1/campaigns/{campaign['id']}/devices?state=pending", "viewer")
    assert {member["device_id"] for member in members["items"]} == {busy, offline}


async def test_a_wave_with_failed_devices_closes_and_the_next_one_starts(api: ApiHarness) -> None:
    devices = [await api.device(f"HW{n:04d}", software_version="V1") for n in range(6)]
    image = await firmware(api, "V2", "HG8245H")
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json={
        "name": "waves", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image},
        "waves": [{"devices": 2}, {"percent": 100}], "stop_rules": {"min_devices": 3}})
    assert status == 201, campaign
    job = campaign_job(api)
    await job.run()
    tasks = api.services.database.collection("tasks")
    first = [task async for task in tasks.find({"kind": "download"})]
    assert len(first) == 2
    await tasks.update_many({"kind": "download"}, {"$set": {"status": "failed", "fault": {
        "code": 9010, "string": "Download failure"}, "result": {"complete_time": datetime.now(UTC)}}})
    await job.run()  # the two fail (TransferComplete faults: 2 < min_devices), the wave closes
    await job.run()  # the next wave starts
    stored = await api.services.repositories.campaigns.get(campaign["id"])
    assert stored is not None and stored["status"] == "running" and stored["current_wave"] == 1, stored
    assert await tasks.count_documents({"kind": "download"}) == len(devices)
    status, failed = await api.call("GET", f"/api/v1/campaigns/{campaign['id']}/devices?state=failed", "viewer")
    assert [m["reason"] for m in failed["items"]] == ["TransferComplete fault 9010: Download failure"] * 2


async def test_a_canary_is_judged_by_a_definite_health_read_after_its_upgrade(api: ApiHarness) -> None:
    """A crash-looping device's health reads fail (``unknown``): they move ``health.at`` but keep the last
    definite read, here an "ok" from before the upgrade. That old read must not pass the canary."""
    device = await api.device("HW0001", software_version="V1")
    image = await firmware(api, "V2", "HG8245H")
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json={
        "name": "canary", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image},
        "waves": [{"devices": 1}, {"percent": 100}],
        "stop_rules": {"health_settle": 60, "health_timeout": 3600, "min_devices": 1}})
    assert status == 201, campaign
    job = campaign_job(api)
    await job.run()  # the device starts: its Download is queued
    now = datetime.now(UTC)
    members = api.services.database.collection("campaign_devices")
    assert await members.update_one({"device_id": device}, {"$set": {
        "state": "upgraded", "upgraded_at": now - timedelta(minutes=5), "health_before": "ok"}})
    devices = api.services.database.collection("devices")
    before_upgrade = {"status": "ok", "at": now - timedelta(minutes=20), "since": now - timedelta(hours=1),
                      "reasons": []}
    await devices.update_one({"_id": device}, {"$set": {
        "software_version": "V2", "health_definite": "ok",
        "health": {"status": "unknown", "at": now, "since": now, "reasons": [], "values": {},
                   "last_definite": before_upgrade}}})
    await job.run()
    member = await members.find_one({"device_id": device})
    assert member is not None and member["state"] == "upgraded", member  # not judged on the old "ok"

    sick = {"status": "critical", "at": datetime.now(UTC), "since": datetime.now(UTC), "reasons": []}
    await devices.update_one({"_id": device}, {"$set": {"health_definite": "critical", "health": {
        "status": "critical", "at": sick["at"], "since": sick["at"], "reasons": [], "values": {},
        "last_definite": sick}}})
    await job.run()
    member = await members.find_one({"device_id": device})
    assert member is not None and member["state"] == "degraded", member
    stored = await api.services.repositories.campaigns.get(campaign["id"])
    assert stored is not None and stored["status"] == "paused" and stored["current_wave"] == 0, stored
