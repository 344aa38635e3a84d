"""Churn against `acs serve` and `acs sim` as processes: devices going dark at random open no incident.

A few hundred devices inform every 20 s; from the churn start, 15 a minute (one every 4 s, at
random across the OLT's PON ports) go silent for 65-80 s, so each is marked offline (45 s after
its last inform) and comes back with `1 BOOT`. At the busiest moment about eight are offline at once: more than the
five an incident needs, but never a share of any PON, OLT, software version or subnet beyond the
30% the detector asks for. The test checks that the churn really happened (offline and online
transitions, the boots) and that the detection job ran throughout, without a candidate.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from acs.sim.scenarios import Churn
from tests.conftest import AcsServeFactory
from tests.e2e.test_incidents_e2e import api_get
from tests.support.api import create_token
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]
INTERVAL = 20
FLEET = 250
# The churn starts when the test sends SIGUSR1 (``--scenarios-on-signal``), once every device's
# OLT and PON are known: its offsets count from then, however long the fleet took to come up.
CHURN = Churn(rate=15.0, start=0.0, min_down=65.0, max_down=80.0, duration=40.0, seed=11)
TOPOLOGY_TIMEOUT = 300
SETTINGS = {
    "ACS_PERIODIC_INFORM_INTERVAL": str(INTERVAL),
    "ACS_OFFLINE_GRACE": "5",
    "ACS_OFFLINE_CHECK_INTERVAL": "2",
    "ACS_HEALTH_INTERVAL": "600",
    "ACS_HEALTH_CHECK_INTERVAL": "2",
    "ACS_HEALTH_RIDE_WINDOW": str(INTERVAL + 5),
    "ACS_HEALTH_MAX_IN_FLIGHT": "5000",
    "ACS_INCIDENT_CHECK_INTERVAL": "3",
    "ACS_INCIDENT_WINDOW": "120",
    "ACS_SESSION_TIMEOUT": "20",
}


def churn_events(churn: Churn) -> int:
    k = 0
    while churn.step_at(k) is not None:
        k += 1
    return k


@pytest.mark.timeout(700)
async def test_random_churn_opens_no_incident(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    db_name = unique_db_name("churn")
    db = mongo_client[db_name]
    acs = await acs_serve(database=db_name, env=SETTINGS)
    started = time.monotonic()
    assert CHURN.duration is not None
    sim = start_sim(args=[
        "--url", acs.cwmp_url, "--devices", str(FLEET), "--interval", str(INTERVAL), "--ramp", "200",
        "--seed", str(CHURN.seed), "--max-sessions", "100", "--summary-every", "10", "--scenario", "churn",
        "--scenarios-on-signal",
        "--churn-rate", str(CHURN.rate), "--churn-start", str(CHURN.start),
        "--churn-down", f"{CHURN.min_down}:{CHURN.max_down}", "--churn-duration", str(CHURN.duration),
    ], log_path=tmp_path / "sim.log")
    events = churn_events(CHURN)
    assert events == 10
    token = await create_token(acs, "churn", "viewer")
    diagnosis: dict[str, Any] = {}
    try:
        async def topology_known() -> bool:
            return await db.devices.count_documents({"olt_id": {"$ne": None}, "pon_port": {"$ne": None}}) >= FLEET

        await wait_until(topology_known, timeout=TOPOLOGY_TIMEOUT, interval=1,
                         message=acs.describe("OLT/PON ids not read from every device"))
        topology_at = time.monotonic() - started
        first = await db.devices.find_one({}, sort=[("first_inform", 1)])
        assert first is not None
        churn_began = time.time() + CHURN.start
        sim.popen.send_signal(signal.SIGUSR1)
        triggered = time.monotonic()
        peak_offline = 0

        async def churned_and_back() -> bool:
            nonlocal peak_offline
            incidents = [incident async for incident in db.incidents.find({}, {"title": 1, "opened_at": 1})]
            assert incidents == [], f"churn opened incidents: {incidents}"
            offline_now = await db.devices.count_documents({"presence": "offline"})
            peak_offline = max(peak_offline, offline_now)
            if offline_now and not diagnosis:
                dark = await db.devices.find_one({"presence": "offline"})
                if dark is not None:
                    diagnosis.update(await api_get(acs, token, f"/api/v1/devices/{dark['_id']}/diagnosis"))
            boots = await db.device_events.count_documents({"type": "boot"})
            went = await db.device_events.count_documents({"type": "offline"})
            came = await db.device_events.count_documents({"type": "online"})
            return boots >= FLEET + events and went >= events and came == went and offline_now == 0

        last_return = CHURN.start + CHURN.duration + CHURN.max_down
        await wait_until(churned_and_back, timeout=last_return + 2 * INTERVAL + 30, interval=1,
                         message=acs.describe("churned devices did not all go offline and come back"))
        elapsed = time.monotonic() - started
        churning = time.monotonic() - triggered
    finally:
        await sim.stop(grace=30, expect_returncode=None)
    runs = [run async for run in db.job_runs.find({"job": "detect_incidents",
                                                   "started_at": {"$gte": first["first_inform"]}})]
    during = [run for run in runs if run["started_at"].timestamp() >= churn_began]
    assert all(run["outcome"] == "ok" for run in runs), [run for run in runs if run["outcome"] != "ok"]
    assert len(during) >= churning / 3 / 2, f"detection ran only {len(during)} times"
    assert max(run["counts"]["candidates"] for run in during) == 0
    went = await db.device_events.count_documents({"type": "offline"})
    churned = len(await db.device_events.distinct("device_id", {"type": "offline"}))
    print(f"\n{FLEET} devices, churn {CHURN.rate:g}/min for {CHURN.duration:g}s ({events} events, down "
          f"{CHURN.min_down:g}-{CHURN.max_down:g}s): {went} offline transitions on {churned} devices, at most "
          f"{peak_offline} offline at once; {len(during)} detection runs during the churn, no candidate, no "
          f"incident; topology known after {topology_at:.0f}s, all back after {elapsed:.0f}s")
    assert peak_offline >= 5, "never enough devices offline at once to test the share rule"
    assert await db.incidents.count_documents({}) == 0
    assert diagnosis["online"] is False and diagnosis["incidents"] == [], diagnosis
    assert diagnosis["next_steps"][0].startswith("device offline since"), diagnosis["next_steps"]
