"""Health polls against `acs serve` and `acs sim` as processes: every device read, judged, grouped by OLT."""

from __future__ import annotations

import time
from pathlib import Path

from pymongo import AsyncMongoClient

from tasks import search
from tests.conftest import AcsServeFactory
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]
FAST = {
    "ACS_PERIODIC_INFORM_INTERVAL": "20",
    "ACS_OFFLINE_GRACE": "5",
    "ACS_OFFLINE_CHECK_INTERVAL": "2",
    "ACS_HEALTH_INTERVAL": "60",
    "ACS_HEALTH_CHECK_INTERVAL": "2",
    "ACS_HEALTH_RIDE_WINDOW": "30",
    "ACS_INCIDENT_CHECK_INTERVAL": "3",
    "ACS_INCIDENT_WINDOW": "120",
}


def sim_args(url: str, devices: int, *extra: str) -> list[str]:
    return ["--url", url, "--devices", str(devices), "--interval", "20", "--ramp", "200", "--seed", "5",
            "--summary-every", "5", *extra]


async def test_mixed_fleet_gets_health_results_and_topology(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    db_name = unique_db_name("health")
    acs = await acs_serve(database=db_name, env=FAST)
    sim = start_sim(args=sim_args(acs.cwmp_url, 12, "--profile", "mix"), log_path=tmp_path / "sim.log")
    devices = mongo_client[db_name].devices
    started = time.monotonic()
    try:
        async def all_judged() -> bool:
            # Judged, not necessarily ok: the simulator draws each ONT's optical levels, and one near
            # the edge reads warn (-25.01 dBm against -25 dBm was seen). None of them is sick.
            judged = {"health.status": {"$in": ["ok", "warn"]}, "olt_id": {"$ne": None}}
            return await devices.count_documents(judged) >= 12

        try:
            await wait_until(all_judged, timeout=90, interval=0.5)
        except TimeoutError:
            seen = [(d["_id"], (d.get("health") or {}).get("status"), (d.get("health") or {}).get("reasons"),
                     d.get("olt_id")) async for d in devices.find({})]
            raise AssertionError(acs.describe(f"devices not health-checked: {seen}")) from None
    finally:
        await sim.stop(grace=20, expect_returncode=0)
    print(f"12 devices health-checked in {time.monotonic() - started:.1f}s")
    device = await devices.find_one({"product_class": "F660"})
    assert device is not None and device["olt_id"] == "OLT-0001" and device["pon_port"] == "0/1/0"
    assert isinstance(device["health"]["values"]["rx_power"], float)
    assert await mongo_client[db_name].health_results.count_documents({}) >= 12
    # The OLT the health reads stored is named in the slices of each device's last inform
    # (``tasks/search.py``): written by the health read, then by each Inform (the list sorted by last inform).
    async for stored in devices.find({}):
        assert stored[search.OLT_SLICES_FIELD] == search.olt_inform_slices(
            stored["_id"], stored["olt_id"], stored["last_inform"]
        )[search.OLT_SLICES_FIELD], stored["_id"]
