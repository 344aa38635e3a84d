"""Scheduled jobs at fleet size: each job of ``acs serve`` run once over N devices.

The benchmark starts a local database (or uses ``--mongodb-uri``), writes N device documents in
the shape the registry stores after an Inform (``tasks/search.py`` fields, ``presence`` and
``offline_due`` included) with unordered ``insert_many`` batches, of which 1% have just missed
their inform (due to go offline), 0.5% are watched (a tenth of those watches ended), and 500 open
tasks of which 50 have expired, and 20 live sessions of which 5 went silent. Then it registers
the jobs exactly as ``acs serve`` does (``acs.jobs.register_jobs``) and runs every one of them
twice in burst mode (``JobRunner.run_all_once``): the first run of a process (one-off passes such
as the search backfill, and the offline and health scans' look-back, fall there), then the steady
run. Health reads are spread over their policy's interval (a minute's worth overdue); between the
rounds the reads the first queued are marked answered, as devices would, and the offline and
health scans go on from one interval back, as they do in a process that runs them every interval. Each
run's time is read from ``job_runs`` and set against the job's interval (target: under 5%), beside
the local database's CPU over the run (FerretDB and its PostgreSQL backends, from /proc; not with
``--mongodb-uri``): what a run costs the sessions that share the database.

    python bench/jobs_at_scale.py [--quick] [--devices N] [--no-record] [--mongodb-uri URI]
        [--work-dir DIR [--reuse]] [--skip JOB ...]

``--skip``: jobs registered but not run (``backfill_search`` spends its whole 300 s budget a
round at 200,000 devices, by design: ten of a run's fifteen minutes under the benchmark lock).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymongo import AsyncMongoClient

from acs.config import Settings
from acs.gcpolicy import tune_collector
from acs.jobs import register_jobs
from acs.localdb import LocalMongo
from acs.services import build_services
from bench import common
from cwmp.device_id import make_device_id
from tasks import search
from tasks.health.poll import HEALTH_USER
from tasks.scheduler import JobRunner
from tasks.search import search_fields
from tasks.session_ids import new_session_id
from tasks.store.db import Database
from tasks.store.devices import HEALTH_SCAN, OFFLINE_SCAN, SEARCH_BACKFILL, due_slice

SIZES = common.Sizes(devices=200_000, quick_devices=2000, duration=0.0, quick_duration=0.0)
TARGET_SHARE = 0.05
BATCH = 1000
PRODUCTS = [("00E0FC", "HG8245H", ["V3R017C10S115", "V3R017C10S120"]), ("00D0D0", "F660", ["V6.0.10P2N2"])]
WATCH_TAG = "watch"  # Settings().health_watch_tag is checked below
HEALTH_INTERVAL, WATCH_INTERVAL = 21600, 300  # Settings().health_interval, health_watch_interval
SPREAD = 7919  # a prime: index * SPREAD % interval spreads any fleet size evenly over the interval


def device_document(index: int, now: datetime) -> dict[str, Any]:
    oui, product_class, versions = PRODUCTS[index % len(PRODUCTS)]
    serial = f"4857544{index:09X}"
    device_id = make_device_id(oui, product_class, serial)
    overdue = index % 100 == 1
    # the others far enough ahead that none falls due while the benchmark runs
    deadline = now - timedelta(seconds=2) if overdue else now + timedelta(seconds=3600 + index % 7200)
    document: dict[str, Any] = {
        "_id": device_id, "oui": oui, "product_class": product_class, "serial_number": serial,
        "manufacturer": "Bench", "software_version": versions[index % len(versions)], "root": "InternetGatewayDevice.",
        "periodic_inform_interval": 3600, "remote_ip": f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}",
        "last_inform": deadline - timedelta(seconds=7260), "first_inform": now - timedelta(days=30),
        "offline_after": deadline, "offline_due": due_slice(deadline), "presence": "online", "tags": [],
    }
    # Health reads spread over the policy's interval (6 h; 5 min for watched devices), as a fleet
    # polled for a while has them; a minute's worth fell due just before the run.
    polled = now - timedelta(seconds=60 + index * SPREAD % HEALTH_INTERVAL)
    document.update(health_polled_at=polled, health_due=due_slice(polled + timedelta(seconds=HEALTH_INTERVAL)))
    if index % 200 == 3:
        document["tags"] = [WATCH_TAG]
        document["watch_until"] = now - timedelta(minutes=1) if index % 2000 == 3 else now + timedelta(hours=2)
        polled = now - timedelta(seconds=60 + index // 200 * SPREAD % WATCH_INTERVAL)
        document.update(health_polled_at=polled, health_due=due_slice(polled + timedelta(seconds=WATCH_INTERVAL)))
    return {**document, **search_fields(device_id, document)}


async def insert_fleet(database: Any, devices: int, now: datetime) -> dict[str, Any]:
    started = time.monotonic()
    for start in range(0, devices, BATCH * 4):
        batches = [[device_document(i, now) for i in range(s, min(devices, s + BATCH))]
                   for s in range(start, min(devices, start + BATCH * 4), BATCH)]
        await asyncio.gather(*(database["devices"].insert_many(batch, ordered=False) for batch in batches))
    seconds = time.monotonic() - started
    first = make_device_id(PRODUCTS[0][0], PRODUCTS[0][1], f"4857544{0:09X}")
    await database["tasks"].insert_many([
        {"_id": f"bench-task-{n:04d}", "device_id": first, "kind": "get_parameter_values", "status": "queued",
         "params": {"names": ["InternetGatewayDevice.DeviceInfo.UpTime"]}, "created_at": now - timedelta(days=1),
         "expires_at": now - timedelta(minutes=1) if n < 50 else now + timedelta(days=1), "attempts": 0,
         "created_by": "bench"} for n in range(500)])
    # Running sessions are their devices' leases, carrying their state (tasks/store/locks.py).
    leases = []
    for n in range(20):
        device_id, session_id = f"bench-{n}", new_session_id(f"bench-{n}")
        expires_at = now - timedelta(seconds=5) if n < 5 else now + timedelta(hours=2)
        state = {"_id": session_id, "device_id": device_id, "started_at": now, "expires_at": expires_at,
                 "events": [], "rpcs": [], "rpc_count": 0, "faults": []}
        leases.append({"_id": device_id, "session_id": session_id, "until": expires_at + timedelta(minutes=1),
                       "taken_at": now, "expires_at": expires_at, "session": state})
    await database["session_locks"].insert_many(leases)
    # Every device was written with this code's search fields (``search_fields``): the fleet as a
    # process of this version that ran its search backfill stores it, which the jobs reading by
    # those fields wait for (``DeviceRepository._backfilled``: the drift report's overrides marker).
    await database["job_state"].update_one({"_id": SEARCH_BACKFILL}, {"$set": {"version": search.VERSION}},
                                           upsert=True)
    return {"written": devices, "seconds": round(seconds, 1), "per_second": round(devices / max(seconds, 1e-9))}


async def steady_start(database: Database, services: Any, intervals: dict[str, float]) -> None:
    """What the steady round starts from, as in a process running every job every interval."""
    await database.db["job_leases"].delete_many({})  # the next round takes every lease again
    # the devices answered the health reads queued (no device runs here): room for the next
    await database.db["tasks"].update_many({"created_by": HEALTH_USER}, {"$set": {"status": "done"}})
    await database.db["health_reads"].delete_many({})  # and their ends took their notes back
    # and each slice scan goes on from one interval back, as in a process running it every
    # interval (not from where the first round left it, minutes ago at 200,000 devices)
    for scan, job in ((OFFLINE_SCAN, "detect_offline"), (HEALTH_SCAN, "poll_health")):
        back = due_slice(services.clock() - timedelta(seconds=intervals[job]))
        await database.db["job_state"].update_one({"_id": scan}, {"$set": {"next": back}}, upsert=True)


async def run_jobs(
    uri: str, data_dir: Path, reused: bool = False, skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        database = Database(client=client, db=client.get_default_database("acs"))
        services = build_services(Settings(data_dir=data_dir), database)
        assert services.settings.health_watch_tag == WATCH_TAG
        assert (services.settings.health_interval, services.settings.health_watch_interval) == (
            HEALTH_INTERVAL, WATCH_INTERVAL)
        await services.repositories.ensure_indexes()
        runner = JobRunner(services.jobs, services.clock, holder="bench")
        register_jobs(runner, services)
        tune_collector()  # the collector of a serving process (acs/gcpolicy.py), as acs serve runs its jobs
        intervals = {job.name: job.interval for job in runner._registered}
        rounds: list[dict[str, Any]] = [{}] if reused else []  # a database reused had its first round
        if reused:
            await steady_start(database, services, intervals)
        while len(rounds) < 2:
            mark = services.clock()
            cpu: dict[str, float | None] = {}
            for job in runner._registered:  # as run_all_once, with the database's CPU around each run
                if job.name in skip:
                    continue
                before = database_ticks()
                await runner.tick(job)
                cpu[job.name] = database_cpu_ms(before, database_ticks())
            runs = database.db["job_runs"].find({"started_at": {"$gte": mark}, "holder": "bench"})
            rounds.append({run["job"]: {"ms": run["duration_ms"], "outcome": run["outcome"],
                                        "database_cpu_ms": cpu.get(run["job"]),
                                        "counts": run.get("counts") or run.get("error")} async for run in runs})
            await steady_start(database, services, intervals)
        return {"intervals": intervals, "first": rounds[0], "steady": rounds[1]}
    finally:
        await client.close()


def database_ticks() -> dict[int, int]:
    """CPU ticks of each database process this benchmark started (the local FerretDB and its
    PostgreSQL backends); none with --mongodb-uri."""
    tree = common.process_tree(os.getpid())
    return {pid: ticks for pid, (ticks, _) in tree.items() if pid != os.getpid() and common.is_database(pid)}


def database_cpu_ms(before: dict[int, int], after: dict[int, int]) -> float | None:
    """The database's CPU between two samples, in ms (processes present in both: a backend that
    exited in between is left out, a new one counted from 0); None without local database processes."""
    if not before and not after:
        return None
    ticks = sum(after[pid] - before.get(pid, 0) for pid in after)
    return round(ticks * 1000 / os.sysconf("SC_CLK_TCK"))


def render(inserted: dict[str, Any], jobs: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    worst = 0.0
    for name, interval in jobs["intervals"].items():
        first, steady = jobs["first"].get(name, {}), jobs["steady"].get(name, {})
        share = steady.get("ms", 0) / 1000 / interval
        worst = max(worst, share)
        cpu = steady.get("database_cpu_ms")
        rows.append([name, f"{interval:g}", first.get("ms", "-"), steady.get("ms", "-"), f"{share:.2%}",
                     "-" if cpu is None else cpu, str(steady.get("counts", ""))[:90]])
    verdict = "met" if worst < TARGET_SHARE and inserted["written"] >= 200_000 else "missed"
    census = jobs["steady"].get("fleet_census", {}).get("counts") or {}
    census_line = ""
    if isinstance(census, dict) and census.get("devices_read"):
        # the census spreads a pass over runs (tasks/fleet.py): how old the landing page's counts get
        runs = inserted["written"] / census["devices_read"]
        minutes = runs * jobs["intervals"]["fleet_census"] / 60
        census_line = (f"\n\nfleet_census read {census['devices_read']:,} devices in its steady run: one pass over "
                       f"{inserted['written']:,} is about {runs:.0f} runs, {minutes:.0f} minutes at its interval.")
    written = ("written by an earlier run, reused (its first round ran then)" if inserted.get("reused")
               else f"written in {inserted['seconds']} s ({inserted['per_second']:,}/s)")
    return (f"Devices in the database: {inserted['written']:,}, {written}; 1% due to go offline, 0.5% watched, "
            "500 open tasks (50 expired), 20 live sessions (5 silent).\n\n"
            + common.table(["job", "interval (s)", "first run (ms)", "steady run (ms)", "steady / interval",
                            "steady run's database CPU (ms)", "steady run's counts"], rows)
            + census_line
            + f"\n\nTarget (each run under {TARGET_SHARE:.0%} of its interval at 200,000 devices): **{verdict}** "
            f"(worst {worst:.2%}).")


async def run(args: Any) -> int:
    devices, _ = common.sized(args, SIZES)
    with common.work_dir(args, "jobs-at-scale") as directory:
        local: LocalMongo | None = None
        uri = args.mongodb_uri
        if uri is None:
            directory.chmod(0o711)  # as root, PostgreSQL runs as postgres and must reach its data dir
            local = await LocalMongo.start(directory / "db")
            uri = local.uri + "acs"
        try:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
            try:
                backend = f"local {local.kind}" if local is not None else await common.describe_database(uri)
                database = client.get_default_database("acs")
                # the fleet's last device, by _id (a count reads every document on FerretDB)
                last = device_document(devices - 1, datetime.now(UTC))["_id"]
                reused = args.reuse and await database["devices"].find_one({"_id": last}, {"_id": 1}) is not None
                if reused:  # written by an earlier run with --work-dir: only the steady round runs
                    inserted = {"written": devices, "seconds": 0.0, "per_second": 0, "reused": True}
                else:
                    inserted = await insert_fleet(database, devices, datetime.now(UTC))
            finally:
                await client.close()
            jobs = await run_jobs(uri, directory / "acs-data", reused, frozenset(args.skip or ()))
        finally:
            if local is not None:
                await local.stop()
    common.record(args, f"Scheduled jobs at scale, {devices:,} devices", backend, render(inserted, jobs),
                  {"inserted": inserted, "jobs": jobs})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--reuse", action="store_true",
                        help="with --work-dir: a database an earlier run wrote is reused (no insert, no first "
                             "round: the steady round only, within a locked run's 12 minutes at 200,000 devices)")
    parser.add_argument("--skip", action="append", metavar="JOB",
                        help="a job registered but not run (repeat for several); shown as '-'")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
