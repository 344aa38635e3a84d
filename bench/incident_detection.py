"""Incident detection at fleet size: what one run of the ``detect_incidents`` job costs.

The benchmark writes N device documents straight into ``devices`` (the shape the registry and the
health poll store: OLT and PON ids, software version, WAN address, presence) after ``acs serve``
created its indexes, with the scheduled jobs of that server slowed to once an hour so they stay
out of the way. About 1% of the fleet is offline (churn, half of it fresh) and two PONs of one
OLT are dark. Then, in this process, against the same database:

- **baseline: whole-fleet read**, what every run used to do: read each device's grouping fields
  and state, and judge every group (``grouping``'s pure functions; no writes);
- **ACS: the job** (``IncidentDetector.run``): the first run, which takes the census of the fleet,
  then ``--runs`` runs judged by that census, reading only the affected devices.

Both must find the same incident (the dark OLT). Printed: seconds per run, devices read, and
the job's steady run as a ratio of the whole-fleet read measured in the same run.

    python bench/incident_detection.py [--quick] [--devices N] [--runs K] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.api_at_scale import device_document
from tasks.incidents import grouping
from tasks.incidents.grouping import Config
from tasks.incidents.job import FACT_FIELDS, IncidentDetector
from tasks.store.db import Database, connect
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.incidents import IncidentRepository

SIZES = common.Sizes(devices=200_000, quick_devices=3000, duration=600.0, quick_duration=60.0)
BATCH = 1000
CONCURRENT_BATCHES = 4
ONTS_PER_PON = 64
PONS_PER_OLT = 16
CHURN = 0.01
QUIET = {"ACS_INCIDENT_CHECK_INTERVAL": "3600", "ACS_OFFLINE_CHECK_INTERVAL": "3600",
         "ACS_HEALTH_CHECK_INTERVAL": "3600", "ACS_PERIODIC_INFORM_INTERVAL": "300"}
CONFIG = Config(window=timedelta(minutes=15))


def olt_of(index: int) -> tuple[str, str]:
    pon = index // ONTS_PER_PON
    return f"OLT-{pon // PONS_PER_OLT + 1:05d}", f"0/{pon % PONS_PER_OLT // 8 + 1}/{pon % 8}"


def fleet_document(index: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    document = device_document(index, now)
    olt, pon = olt_of(index)
    # WAN addresses spread over the CGNAT range, not in OLT order: a dark PON is no dark /24 here.
    spread = index * 40503 % 4_194_304
    document.update(olt_id=olt, pon_port=pon, presence="online", offline_after=now + timedelta(minutes=10),
                    wan_ip=f"100.{64 + (spread >> 16)}.{spread >> 8 & 255}.{spread & 255}")
    dark = olt == "OLT-00001" and pon in ("0/1/0", "0/1/1")
    if dark or rng.random() < CHURN:
        went = now - timedelta(seconds=60 if dark or rng.random() < 0.5 else 7200)
        document.update(presence="offline", offline_since=went, offline_after=went)
    return document


async def insert_fleet(database: Database, devices: int, budget: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    rng = random.Random(5)
    started = time.monotonic()
    written = 0
    while written < devices and time.monotonic() - started < budget:
        starts = range(written, min(devices, written + BATCH * CONCURRENT_BATCHES), BATCH)
        batches = [[fleet_document(i, now, rng) for i in range(s, min(devices, s + BATCH))] for s in starts]
        await asyncio.gather(*(database.collection("devices").insert_many(b, ordered=False) for b in batches))
        written = starts[-1] + len(batches[-1])
    seconds = time.monotonic() - started
    offline = await database.collection("devices").count_documents({"presence": "offline"})
    return {"written": written, "requested": devices, "seconds": round(seconds, 1),
            "per_second": round(written / max(seconds, 1e-9)), "offline": offline}


async def whole_fleet_run(devices: DeviceRepository, now: datetime) -> tuple[float, int, list[str]]:
    """The run as it was: every device read and judged. Returns (seconds, devices read, incident keys)."""
    started = time.perf_counter()
    documents = await devices.find({}, dict.fromkeys(FACT_FIELDS, 1), 10_000_000)
    facts = [grouping.facts_of(document, now, CONFIG.window, 0) for document in documents]
    chosen = grouping.detect(grouping.group_stats(facts, {}), CONFIG)
    return time.perf_counter() - started, len(documents), sorted({c.incident_key for c in chosen})


async def job_runs(database: Database, runs: int) -> dict[str, Any]:
    detector = IncidentDetector(DeviceRepository(database), DeviceEventRepository(database),
                                IncidentRepository(database), CONFIG, lambda: datetime.now(UTC),
                                census=IncidentCensusRepository(database))
    timings: list[tuple[float, dict[str, Any]]] = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        counts = await detector.run()
        timings.append((time.perf_counter() - started, counts))
    opened = await database.collection("incidents").find({"status": "open"}, {"key": 1}).to_list()
    steady = [seconds for seconds, _ in timings[1:]]
    return {"first_s": round(timings[0][0], 3), "first_counts": timings[0][1],
            "steady_median_s": round(statistics.median(steady), 3), "steady_max_s": round(max(steady), 3),
            "steady_counts": timings[-1][1], "incident_keys": sorted(str(i["key"]) for i in opened)}


def render(inserted: dict[str, Any], whole: dict[str, Any], job: dict[str, Any]) -> str:
    steady = job["steady_counts"]
    rows = [
        ["seconds per run", f"{job['steady_median_s']} (max {job['steady_max_s']})", whole["seconds"],
         common.ratio(job["steady_median_s"], whole["seconds"])],
        ["devices read per run", steady["affected"], whole["devices"], common.ratio(steady["affected"],
                                                                                     whole["devices"])],
        ["groups counted exactly per run", steady["exact_counts"], "-", ""],
        ["first run, census included (s)", job["first_s"], "-", common.ratio(job["first_s"], whole["seconds"])],
        ["incidents found", ", ".join(job["incident_keys"]) or "none", ", ".join(whole["keys"]) or "none", ""],
    ]
    return (f"Devices in the database: {inserted['written']:,} of {inserted['requested']:,} requested, written in "
            f"{inserted['seconds']} s ({inserted['per_second']:,}/s); {inserted['offline']:,} offline (about 1% "
            f"churn, half of it fresh, plus 2 dark PONs of OLT-00001).\n\n"
            + common.table(["figure", "ACS", "baseline (whole-fleet read)", "ACS / baseline"], rows))


async def run(args: argparse.Namespace) -> int:
    devices, budget = common.sized(args, SIZES)
    runs = args.runs or (3 if args.quick else 10)
    with common.work_dir(args, "incident-detection") as directory:
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, env=QUIET)
        database = connect(server.db_uri)
        try:
            inserted = await insert_fleet(database, devices, budget)
            seconds, read, keys = await whole_fleet_run(DeviceRepository(database), datetime.now(UTC))
            whole = {"seconds": round(seconds, 3), "devices": read, "keys": keys}
            job = await job_runs(database, runs)
        finally:
            await database.close()
            await server.child.stop()
        if job["incident_keys"] != whole["keys"]:
            print(f"the job found {job['incident_keys']}, the whole-fleet read {whole['keys']}", file=sys.stderr)
            return 1
        common.record(args, f"Incident detection, {inserted['written']:,} devices", server.backend,
                      render(inserted, whole, job), {"inserted": inserted, "whole_fleet": whole, "job": job})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--runs", type=int, default=None, help="job runs after the first (default 10, --quick 3)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
