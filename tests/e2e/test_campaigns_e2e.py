"""Firmware campaigns against `acs serve` and `acs sim` as processes (issue 15).

- Two models (Huawei HG8245H and ZTE F660, beside TR-181 gateways the campaign does not target),
  waves and a maintenance window: every targeted device ends on its model's new version; a
  campaign whose window is closed starts nothing.
- The bad-firmware scenario: a campaign installing the version that makes devices sick is paused by
  its health rule within the canary, with fewer than 2 % of the fleet upgraded, and one incident
  that names the campaign and the version.
- A device bricked by the upgrade (it never boots again) counts as failed; rollback brings the
  upgraded devices back to their previous version.

The fleet size is ``ACS_CAMPAIGN_E2E_DEVICES`` (default 150: a few minutes on an idle 2-core box) and
the inform interval ``ACS_CAMPAIGN_E2E_INTERVAL`` (default 20 s; waits scale with it); docs/performance.md
has the figures of larger runs.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from acs.sim.profile import load_profile
from tests.conftest import AcsServeFactory
from tests.e2e.campaigns import add_image, api, campaign, closed_window, open_window, progress
from tests.support.api import create_token
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import AcsProcess, start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]
FLEET = int(os.environ.get("ACS_CAMPAIGN_E2E_DEVICES", "150"))
# A larger fleet needs a longer inform interval on a 2-core box (2,000 devices on a shared one: 240 s), and so
# longer waits.
INTERVAL = int(os.environ.get("ACS_CAMPAIGN_E2E_INTERVAL", "20"))
SLOWER = INTERVAL / 20
HUAWEI = load_profile("huawei-hg8245").identity
ZTE = load_profile("zte-f660").identity
SETTINGS = {
    "ACS_PERIODIC_INFORM_INTERVAL": str(INTERVAL),
    # A loaded box answers late: at 2,000 devices every 120 s (p95 11 s) a grace of 5 s kept ~6 % of the
    # fleet "offline" at any time, and the fleet never all came up.
    "ACS_OFFLINE_GRACE": str(max(5, INTERVAL // 10)),
    "ACS_OFFLINE_CHECK_INTERVAL": "2",
    "ACS_HEALTH_INTERVAL": str(INTERVAL),
    "ACS_HEALTH_CHECK_INTERVAL": "2",
    "ACS_HEALTH_RIDE_WINDOW": str(INTERVAL + 5),
    "ACS_HEALTH_MAX_IN_FLIGHT": "5000",
    "ACS_HEALTH_REBOOTS_WARN": "3",
    "ACS_HEALTH_REBOOTS_CRITICAL": "4",
    "ACS_INCIDENT_CHECK_INTERVAL": "3",
    "ACS_INCIDENT_WINDOW": str(6 * INTERVAL),
    "ACS_SESSION_TIMEOUT": "30",
    "ACS_CAMPAIGN_CHECK_INTERVAL": "2",
}


def sim_args(acs: AcsProcess, devices: int, *extra: str) -> list[str]:
    return ["--url", acs.cwmp_url, "--devices", str(devices), "--interval", str(INTERVAL), "--ramp", "100",
            "--seed", "15", "--max-sessions", "40", "--summary-every", "10", "--firmware-mix", "1,0,0", *extra]


async def fleet_up(db: Any, acs: AcsProcess, devices: int) -> None:
    async def known() -> bool:
        return await db.devices.count_documents({"presence": "online"}) >= devices

    await wait_until(known, timeout=120 * SLOWER, interval=1, message=acs.describe("the fleet did not come up"))


async def versions(db: Any, product_class: str) -> Counter[str]:
    return Counter([d["software_version"] async for d in db.devices.find({"product_class": product_class},
                                                                          {"software_version": 1})])


@pytest.mark.timeout(600 * SLOWER)
async def test_a_campaign_over_two_models_with_waves_and_a_window_upgrades_every_device(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    db_name = unique_db_name("campaign")
    db = mongo_client[db_name]
    # Health read every 3 intervals: judged devices need one read after their upgrade, not one per inform.
    acs = await acs_serve(database=db_name, env={**SETTINGS, "ACS_HEALTH_INTERVAL": str(3 * INTERVAL)})
    token = await create_token(acs, "campaigns", "operator")
    images = {"HG8245H": await add_image(acs, token, "HG8245H", HUAWEI.software_versions[2]),
              "F660": await add_image(acs, token, "F660", ZTE.software_versions[2])}
    sim = start_sim(args=sim_args(acs, FLEET, "--profile", "mix"), log_path=tmp_path / "sim.log")
    try:
        await fleet_up(db, acs, FLEET)
        target = {"product_classes": ["HG8245H", "F660"]}
        status, waiting = await api(acs, token, "POST", "/api/v1/campaigns", json={
            "name": "closed window", "target": target, "images": images, "windows": [closed_window()],
            "time_zone": "Europe/Moscow"})
        assert status == 201, waiting
        runs = await db.job_runs.count_documents({"job": "run_campaigns"})

        async def ran_three_times() -> bool:
            return await db.job_runs.count_documents({"job": "run_campaigns"}) >= runs + 3

        await wait_until(ran_three_times, timeout=60, interval=1, message="run_campaigns did not run")
        closed = await progress(acs, token, waiting["id"])
        assert closed["counts"]["pending"] == waiting["devices"] and not closed["in_window"], closed
        assert await db.tasks.count_documents({"kind": "download"}) == 0  # outside the window nothing starts
        status, _ = await api(acs, token, "POST", f"/api/v1/campaigns/{waiting['id']}/actions",
                              json={"action": "abort"})
        assert status == 200

        started = time.monotonic()
        status, created = await api(acs, token, "POST", "/api/v1/campaigns", json={
            "name": "spring upgrade", "target": target, "images": images,
            "waves": [{"devices": 10}, {"percent": 50}, {"percent": 100}],
            # 20 at once, more for a large fleet (2,000 devices: 100, so the run stays within minutes).
            "concurrency": max(20, FLEET // 20), "rate": 600, "windows": [open_window()], "time_zone": "Europe/Moscow",
            # A device with no health read 20-40 s after its upgrade is taken as healthy: this test is
            # about completion, and a longer wait only holds each wave open (2,000 devices: minutes).
            "stop_rules": {"health_settle": 0, "health_timeout": min(int(20 * SLOWER), 40),
                           "return_timeout": int(120 * SLOWER)}})
        assert status == 201, created
        targeted = created["devices"]
        assert 0.5 * FLEET <= targeted <= 0.8 * FLEET  # two of the three profiles

        async def completed() -> dict[str, Any] | None:
            now = await campaign(acs, token, created["id"])
            assert now["status"] in ("running", "completed"), now
            if FLEET > 500 and int(time.monotonic() - started) % 60 < 2:  # a large run's progress, in its log
                print(f"{time.monotonic() - started:.0f}s:", (await progress(acs, token, created["id"]))["counts"])
            return now if now["status"] == "completed" else None

        try:
            await wait_until(completed, timeout=420 * SLOWER, interval=2, message="the campaign did not complete")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {await progress(acs, token, created['id'])}") from exc
        elapsed = time.monotonic() - started
        done = await progress(acs, token, created["id"])
    finally:
        await sim.stop(grace=30, expect_returncode=None)
    print(f"\n{targeted} of {FLEET} devices upgraded in {elapsed:.0f}s: {done['counts']}")
    assert done["counts"]["upgraded_healthy"] == targeted, done
    assert [wave["counts"]["upgraded_healthy"] for wave in done["waves"]] == [w["size"] for w in done["waves"]]
    for product_class, version in (("HG8245H", HUAWEI.software_versions[2]), ("F660", ZTE.software_versions[2])):
        assert set(await versions(db, product_class)) == {version}, product_class
    downloads = Counter([t["device_id"] async for t in db.tasks.find({"kind": "download"}, {"device_id": 1})])
    assert len(downloads) == targeted and set(downloads.values()) == {1}  # one Download per device
    # Counted, not read (a device has several steps: 2,000 devices have more than any page of them).
    for step in ("downloading", "healthy"):
        assert await db.device_events.count_documents({"type": "campaign", "detail.state": step}) == targeted, step


@pytest.mark.timeout(300)
async def test_a_campaign_start_wakes_each_device_by_a_real_connection_request(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    """Devices that inform once an hour take their Download within seconds: the campaign job's
    connection request (digest, with the credentials the ACS provisioned and keeps sealed) reaches
    the simulator, which opens a session with ``6 CONNECTION REQUEST``. No health poll runs (it would
    wake devices too)."""
    devices, hour = 6, 3600
    db_name = unique_db_name("campaignwake")
    db = mongo_client[db_name]
    acs = await acs_serve(database=db_name, env={**SETTINGS, "ACS_PERIODIC_INFORM_INTERVAL": str(hour),
                                                 "ACS_HEALTH_INTERVAL": "0"})
    token = await create_token(acs, "campaigns", "operator")
    old, new = HUAWEI.software_versions[0], HUAWEI.software_versions[2]
    image = await add_image(acs, token, "HG8245H", new)
    args = sim_args(acs, devices)
    args[args.index("--interval") + 1] = str(hour)
    sim = start_sim(args=args, log_path=tmp_path / "sim.log")
    try:
        async def provisioned() -> bool:  # the wake needs the credentials the device confirmed
            return await db.devices.count_documents({"connection_request_username": {"$exists": True}}) >= devices

        await wait_until(provisioned, timeout=120, interval=1, message=acs.describe("the fleet was not provisioned"))
        started = time.monotonic()
        status, created = await api(acs, token, "POST", "/api/v1/campaigns", json={
            "name": "woken", "target": {"software_versions": [old]}, "images": {"HG8245H": image},
            "waves": [{"percent": 100}], "concurrency": devices, "rate": 600,
            "stop_rules": {"health_settle": 0, "health_timeout": 10, "return_timeout": 240}})
        assert status == 201 and created["devices"] == devices, created

        async def completed() -> dict[str, Any] | None:
            now = await campaign(acs, token, created["id"])
            return now if now["status"] == "completed" else None

        await wait_until(completed, timeout=200, interval=1, message=acs.describe("the campaign did not complete"))
        elapsed = time.monotonic() - started
        woken = [s async for s in db.sessions.find({"events": "6 CONNECTION REQUEST"}, {"device_id": 1, "rpcs": 1})]
    finally:
        await sim.stop(grace=30, expect_returncode=None)
    assert elapsed < hour / 10, elapsed  # not the periodic inform: that would be an hour after the bootstrap
    took_download = {s["device_id"] for s in woken if any(r["name"] == "Download" for r in s.get("rpcs") or [])}
    assert len(took_download) == devices, woken  # each took its Download in the session the wake opened
    assert set(await versions(db, "HG8245H")) == {new}
    report = re.search(r"connection_requests accepted=(\d+), ignored_in_session=\d+, challenged=\d+, "
                       r"unauthorized=(\d+)", (tmp_path / "sim.log").read_text())
    assert report is not None and int(report[1]) >= devices and int(report[2]) == 0, report


@pytest.mark.timeout(420 * SLOWER)
async def test_the_bad_firmware_is_stopped_by_the_health_rule_within_the_canary(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    fleet = max(FLEET, 200)  # a canary of 3 is then under 2 % of the fleet
    db_name = unique_db_name("campaignbad")
    db = mongo_client[db_name]
    acs = await acs_serve(database=db_name, env=SETTINGS)
    token = await create_token(acs, "campaigns", "operator")
    image = await add_image(acs, token, "HG8245H", HUAWEI.bad_firmware)
    sim = start_sim(args=sim_args(acs, fleet, "--scenario", "bad-firmware", "--rx-drift", "1200",
                                  "--reboot-interval", "25"), log_path=tmp_path / "sim.log")
    canary = max(3, fleet // 100)  # under 2 % of the fleet
    try:
        await fleet_up(db, acs, fleet)
        started = time.monotonic()
        status, created = await api(acs, token, "POST", "/api/v1/campaigns", json={
            "name": "bad night", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image},
            "waves": [{"devices": canary}, {"percent": 10}, {"percent": 100}], "concurrency": 50, "rate": 600,
            # The bad firmware shows within a minute (RX falls 20 dB a minute from -14 to -25 dBm, the
            # critical level is -27: under 40 s for the best device): a canary judged sooner would pass,
            # and the next wave start.
            "stop_rules": {"health_settle": 50, "health_timeout": int(150 * SLOWER), "min_devices": 3}})
        assert status == 201, created

        async def paused() -> dict[str, Any] | None:
            now = await campaign(acs, token, created["id"])
            return now if now["status"] == "paused" else None

        stopped = await wait_until(paused, timeout=240 * SLOWER, interval=1,
                                   message=acs.describe("the campaign went on"))
        decided = time.monotonic() - started
        first_upgrade = await db.campaign_devices.find_one({"upgraded_at": {"$ne": None}}, sort=[("upgraded_at", 1)])
        runs = await db.job_runs.count_documents({"job": "detect_incidents"})

        async def settled() -> bool:  # a few more detection runs: still one incident
            return await db.job_runs.count_documents({"job": "detect_incidents"}) >= runs + 3

        await wait_until(settled, timeout=60, interval=1, message="the detection job stopped running")
        upgraded = await db.devices.count_documents({"software_version": HUAWEI.bad_firmware})
        incidents = [incident async for incident in db.incidents.find({})]
        stopped = await campaign(acs, token, created["id"])
        done = await progress(acs, token, created["id"])
        canary_steps = [(m["device_id"], m["state"], [step["step"] for step in m.get("steps") or []],
                         ((await db.devices.find_one({"_id": m["device_id"]}, {"health": 1})) or {}).get("health"))
                        async for m in db.campaign_devices.find({"wave": 0})]
    finally:
        await sim.stop(grace=30, expect_returncode=None)
    assert first_upgrade is not None
    after_first = stopped["stopped_by"]["at"]
    print(f"\nstopped after {decided:.0f}s ({stopped['stopped_by']['reason']}); {upgraded} of {fleet} devices on "
          f"{HUAWEI.bad_firmware}; first upgrade to stop: {after_first} vs {first_upgrade['upgraded_at']}")
    assert stopped["stopped_by"]["rule"] == "health_regression", stopped
    for member in canary_steps:  # what the canary was judged on, for a failure
        print("canary", *member)
    assert stopped["current_wave"] == 0 and upgraded < 0.02 * fleet, (upgraded, stopped)
    assert done["waves"][1]["counts"]["pending"] == done["waves"][1]["size"]  # nothing of the next wave started
    assert len(incidents) == 1, [(i["key"], i["title"]) for i in incidents]
    incident = incidents[0]
    assert incident["_id"] == stopped["incident_id"] and incident["status"] == "open", (incident, stopped)
    assert incident["value"] == f"HG8245H {HUAWEI.bad_firmware}" and incident["campaign"]["id"] == created["id"]
    assert "bad night" in incident["timeline"][-1]["detail"] or any(
        "campaign bad night paused" in entry["detail"] for entry in incident["timeline"])
    assert "upgraded devices are in critical health" in incident["campaign"]["reason"]


@pytest.mark.timeout(600)
async def test_a_device_that_never_returns_fails_and_rollback_restores_the_previous_version(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    devices = 40
    db_name = unique_db_name("campaignback")
    db = mongo_client[db_name]
    acs = await acs_serve(database=db_name, env=SETTINGS)
    token = await create_token(acs, "campaigns", "operator")
    old, new = HUAWEI.software_versions[0], HUAWEI.software_versions[2]
    image = await add_image(acs, token, "HG8245H", new)
    sim = start_sim(args=sim_args(acs, devices, "--brick-share", "0.1"), log_path=tmp_path / "sim.log")
    try:
        await fleet_up(db, acs, devices)
        status, created = await api(acs, token, "POST", "/api/v1/campaigns", json={
            "name": "with bricks", "target": {"software_versions": [old]}, "images": {"HG8245H": image},
            "waves": [{"percent": 100}], "concurrency": 50, "rate": 600,
            "stop_rules": {"health_settle": 0, "health_timeout": 30, "return_timeout": 120, "max_failed_share": 1}})
        assert status == 201, created

        async def completed() -> dict[str, Any] | None:
            now = await campaign(acs, token, created["id"])
            return now if now["status"] == "completed" else None

        await wait_until(completed, timeout=400, interval=2, message=acs.describe("the campaign did not complete"))
        status, failed = await api(acs, token, "GET", f"/api/v1/campaigns/{created['id']}/devices?state=failed")
        assert status == 200 and 1 <= len(failed["items"]) <= 0.3 * devices, failed
        assert all(f"not back on {new} within 120 s" in member["reason"] for member in failed["items"]), failed
        bricked = {member["device_id"] for member in failed["items"]}
        assert all(member["steps"][-1]["state"] == "failed" for member in failed["items"])

        status, refused = await api(acs, token, "POST", f"/api/v1/campaigns/{created['id']}/actions",
                                    json={"action": "rollback"})
        assert status == 409 and refused["error"]["code"] == "no_previous_image", refused
        await add_image(acs, token, "HG8245H", old)
        status, rolling = await api(acs, token, "POST", f"/api/v1/campaigns/{created['id']}/actions",
                                    json={"action": "rollback", "reason": "test"})
        assert status == 200 and rolling["status"] == "rolling_back", rolling

        async def rolled_back() -> dict[str, Any] | None:
            now = await campaign(acs, token, created["id"])
            return now if now["status"] == "rolled_back" else None

        await wait_until(rolled_back, timeout=200, interval=2, message=acs.describe("the rollback did not finish"))
        done = await progress(acs, token, created["id"])
        on_device = {d["_id"]: d["software_version"] async for d in db.devices.find({}, {"software_version": 1})}
    finally:
        await sim.stop(grace=30, expect_returncode=None)
    assert done["counts"]["rolled_back"] == created["devices"] - len(bricked), done
    assert {version for device, version in on_device.items() if device not in bricked} == {old}



@pytest.mark.timeout(420)
async def test_two_processes_never_upgrade_a_device_twice(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    """Two processes run ``run_campaigns`` (whoever holds its lease); the one running it is killed
    mid-campaign and the other takes over: still one Download per device. The devices talk to a
    third process, whose campaign job is set to tick only hourly (so it never takes part)."""
    devices = 60
    db_name = unique_db_name("campaign2p")
    db = mongo_client[db_name]
    # Three processes on one FerretDB: 4 connections each keeps them all well under its deadlock (~50 writers).
    env = {**SETTINGS, "ACS_MONGODB_POOL_SIZE": "4"}
    first = await acs_serve(database=db_name, env=env, data_dir=tmp_path / "acs")
    second = await acs_serve(database=db_name, env=env, data_dir=tmp_path / "acs")
    listener = await acs_serve(database=db_name, env={**env, "ACS_CAMPAIGN_CHECK_INTERVAL": "3600"},
                               data_dir=tmp_path / "acs")
    token = await create_token(first, "campaigns", "operator")
    old, new = HUAWEI.software_versions[0], HUAWEI.software_versions[2]
    image = await add_image(first, token, "HG8245H", new)
    sim = start_sim(args=sim_args(listener, devices), log_path=tmp_path / "sim.log")
    try:
        await fleet_up(db, listener, devices)
        status, created = await api(first, token, "POST", "/api/v1/campaigns", json={
            "name": "twice?", "target": {"software_versions": [old]}, "images": {"HG8245H": image},
            "waves": [{"devices": 10}, {"percent": 100}], "concurrency": 10, "rate": 600,
            "stop_rules": {"health_settle": 0, "health_timeout": 20, "return_timeout": 120}})
        assert status == 201, created

        async def some_upgraded() -> bool:
            return await db.campaign_devices.count_documents({"campaign_id": created["id"], "state": "healthy"}) >= 5

        await wait_until(some_upgraded, timeout=120, interval=1, message=first.describe("no device upgraded"))
        last = await db.job_runs.find_one({"job": "run_campaigns"}, sort=[("started_at", -1)])
        assert last is not None
        holder, survivor = (first, second) if f":{first.pid}:" in last["holder"] else (second, first)
        assert f":{holder.pid}:" in last["holder"], last["holder"]
        await holder.kill()

        async def completed() -> dict[str, Any] | None:
            now = await campaign(survivor, token, created["id"])
            return now if now["status"] == "completed" else None

        await wait_until(completed, timeout=240, interval=2, message=survivor.describe("did not complete"))
        holders = {run["holder"].split(":")[1] async for run in db.job_runs.find({"job": "run_campaigns"})}
    finally:
        await sim.stop(grace=30, expect_returncode=None)
    assert holders == {str(first.pid), str(second.pid)}  # both ran it, the listener never did
    downloads = Counter([t["device_id"] async for t in db.tasks.find({"kind": "download"}, {"device_id": 1})])
    assert len(downloads) == created["devices"] and set(downloads.values()) == {1}, downloads
    sends = Counter([s["task_id"] async for s in db.task_sends.find({})])
    assert all(sends[task] == 1 for task in [t["_id"] async for t in db.tasks.find({"kind": "download"})])
    assert await db.campaign_claims.count_documents({"purpose": "upgrade"}) == created["devices"]
