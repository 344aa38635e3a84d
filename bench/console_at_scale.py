"""The console's fleet pages at scale (issue 16 items 1 and 2): the overview, the OLT view, the device
list with its filters and a sort, and the CSV export, on a database of N devices.

The devices are written straight into ``devices`` as ``bench/api_at_scale.py`` writes them, each
with an OLT (``OLT-<n>``, 512 ONTs each over 16 PON ports), a last definite health (0.5% critical,
2% warn) and a region tag. The ``fleet_census`` job's pass is timed in this process against the same
database, then one request at a time with a console login:

- ``/`` (the overview: one document), ``/fleet/olts`` and one OLT's PON ports;
- the list: one OLT, one PON, critical devices, offline devices, one model and version, all devices
  (each first page), one OLT sorted by last inform (a result of 512: read whole and sorted);
- ``/devices.csv`` of one OLT (512 rows) and of the critical devices (0.5% of the fleet).

p50/p99 of each against the console's settings page (a session check and a render, no fleet query)
answered by the same server in the same run.

    python bench/console_at_scale.py [--quick] [--devices N] [--samples K] [--insert-seconds S] [--no-record]
        [--work-dir DIR [--reuse]] [--steady [--steady-timeout S]] [--hold JOB ...]

With ``--work-dir DIR --reuse``, a fleet an earlier run wrote there (and its census) is measured again
without writing it (about 5 minutes and a census pass at 200,000 devices). ``--steady`` and ``--hold``
as in ``bench/api_at_scale.py``: the pages sampled once the scheduled jobs' catch-up after the start has
passed (``bench/steady_jobs.py``), with the job runs that overlapped them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, steady_jobs
from bench.api_at_scale import BATCH, CONCURRENT_BATCHES, console_login, device_document
from tasks.fleet import FleetCensus
from tasks.search import olt_inform_slices, search_fields
from tasks.store.db import Database
from tasks.store.devices import DeviceRepository
from tasks.store.fleet import FleetSummaryRepository

SIZES = common.Sizes(devices=200_000, quick_devices=2000, duration=300.0, quick_duration=20.0)
ONTS_PER_OLT = 512
PONS_PER_OLT = 16
REQUEST_TIMEOUT = 60.0


def fleet_document(index: int, now: datetime) -> dict[str, Any]:
    document = device_document(index, now)
    health = "critical" if index % 200 == 3 else "warn" if index % 50 == 5 else "ok"
    document.update(olt_id=f"OLT-{index // ONTS_PER_OLT:04d}", pon_port=f"0/1/{index % PONS_PER_OLT + 1}",
                    health_definite=health, health={"status": health})
    document["tags"] = [*document["tags"], f"region:r{index // (ONTS_PER_OLT * 8)}"]
    document.update(search_fields(document["_id"], document))  # the region tag's tokens too
    document.update(olt_inform_slices(document["_id"], document["olt_id"], document["last_inform"]))
    return document


async def insert_fleet(db_uri: str, devices: int, budget: float) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_uri, tz_aware=True)
    database = client.get_default_database("acs")
    now = datetime.now(UTC)
    started = time.monotonic()
    written = 0
    try:
        while written < devices and time.monotonic() - started < budget:
            starts = range(written, min(devices, written + BATCH * CONCURRENT_BATCHES), BATCH)
            batches = [[fleet_document(i, now) for i in range(s, min(devices, s + BATCH))] for s in starts]
            await asyncio.gather(*(database["devices"].insert_many(batch, ordered=False) for batch in batches))
            written = starts[-1] + len(batches[-1])
        seconds = time.monotonic() - started
        census_started = time.monotonic()
        db = Database(client=client, db=database)
        await FleetCensus(DeviceRepository(db), FleetSummaryRepository(db), lambda: datetime.now(UTC)).run()
        census = time.monotonic() - census_started
    finally:
        await client.close()
    return {"written": written, "requested": devices, "seconds": round(seconds, 1),
            "per_second": round(written / max(seconds, 1e-9)), "census_seconds": round(census, 2)}


async def reused_fleet(db_uri: str, devices: int) -> dict[str, Any] | None:
    """What ``insert_fleet`` returned, for a database it wrote earlier with the same ``devices`` and a
    census published; None when that fleet is not there (its last device or the census missing)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_uri, tz_aware=True)
    database = client.get_default_database("acs")
    try:
        last = fleet_document(devices - 1, datetime.now(UTC))
        stored = await database["devices"].find_one({"_id": last["_id"]}, {"olt_id": 1})
        summary = await FleetSummaryRepository(Database(client=client, db=database)).get()
    finally:
        await client.close()
    if stored is None or stored.get("olt_id") != last["olt_id"] or summary is None:
        return None
    return {"written": devices, "requested": devices, "seconds": 0.0, "per_second": 0, "census_seconds": 0.0,
            "reused": True}


def plan(written: int) -> dict[str, str]:
    olt = f"OLT-{(written // 2) // ONTS_PER_OLT:04d}"
    return {
        "overview /": "/",
        "OLTs /fleet/olts": "/fleet/olts",
        "one OLT's PONs": f"/fleet/olts?olt={olt}",
        "list: one OLT": f"/?olt={olt}",
        "list: one PON": f"/?olt={olt}&pon=0/1/3",
        "list: critical": "/?health=critical",
        "list: offline": "/?online=no",
        "list: model + version": "/?model=HG8245H&version=V3R017C10S120",
        "list: all devices": "/?all=1",
        "list: one OLT by last inform": f"/?olt={olt}&sort=-last_inform",
        "CSV: one OLT": f"/devices.csv?olt={olt}",
        "CSV: critical": "/devices.csv?health=critical",
        "baseline: /settings": "/settings",
    }


async def measure(base: str, cookies: dict[str, str], paths: dict[str, str], samples: int,
                  spans: dict[str, list[tuple[float, float]]] | None = None) -> dict[str, Any]:
    """Each page ``samples`` times; ``spans`` gets each answered request's (start, seconds) by page."""
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        for name, path in paths.items():
            seconds: list[float] = []
            errors = 0
            size = 0
            for _ in range(samples):
                began = time.time()
                started = time.perf_counter()
                try:
                    async with http.get(base + path, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                                        allow_redirects=False) as response:
                        body = await response.read()
                        ok = response.status == 200
                except TimeoutError:
                    ok, body = False, b""
                if not ok:
                    errors += 1
                    continue
                seconds.append(time.perf_counter() - started)
                if spans is not None:
                    spans.setdefault(name, []).append((began, seconds[-1]))
                size = len(body)
            results[name] = {"latency_ms": common.percentiles(seconds) if seconds else None, "errors": errors,
                             "bytes": size}
    return results


def render(inserted: dict[str, Any], results: dict[str, Any]) -> str:
    floor = (results["baseline: /settings"]["latency_ms"] or {}).get("p99") or 0
    rows: list[list[object]] = []
    for name, result in results.items():
        latency = result["latency_ms"] or {}
        rows.append([name, latency.get("p50", ""), latency.get("p99", ""),
                     common.ratio(latency["p99"], floor) if latency and floor else "", result["errors"] or "",
                     f"{result['bytes']:,}"])
    written = ("written by an earlier run, reused (with its census)" if inserted.get("reused") else
               f"written in {inserted['seconds']} s ({inserted['per_second']:,}/s); one fleet_census pass over "
               f"them: {inserted['census_seconds']} s")
    return (f"Devices: {inserted['written']:,} of {inserted['requested']:,} requested, {written}.\n\n"
            + common.table(["page", "p50 (ms)", "p99 (ms)", "p99 / settings page p99", "errors", "bytes"], rows))


async def run(args: argparse.Namespace) -> int:
    devices, budget = common.sized(args, SIZES)
    samples = args.samples or (3 if args.quick else 10)
    with common.work_dir(args, "console-at-scale") as directory:
        held = await steady_jobs.hold_before_start(directory, args.mongodb_uri, args.hold)
        started = datetime.now(UTC)
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=1)
        window: dict[str, Any] | None = None
        try:
            cookies = await console_login(server)
            inserted = (await reused_fleet(server.db_uri, devices) if args.reuse else None) \
                or await insert_fleet(server.db_uri, devices, args.insert_seconds or budget)
            steady = await steady_jobs.settle(server.db_uri, server.data_dir, started, args.steady_timeout,
                                              held) if args.steady else None
            spans: dict[str, list[tuple[float, float]]] = {}
            load_start, window_start = common.load_average(), time.time()
            results = await measure(server.api_url, cookies, plan(inserted["written"]), samples, spans)
            load_end, window_end = common.load_average(), time.time()
            if steady is not None:
                window = await steady_jobs.window_record(server.db_uri, steady, (load_start, load_end),
                                                         window_start, window_end, spans, 200.0)
        finally:
            if held:
                await steady_jobs.release(server.db_uri)
            await server.child.stop()
        body = render(inserted, results)
        if window is not None:
            body += "\n\n" + steady_jobs.render_window(window)
        common.record(args, f"Console fleet pages at scale, {inserted['written']:,} devices"
                      + (", jobs in their steady state" if window else ""), server.backend, body,
                      {"inserted": inserted, "pages": results,
                       **({"steady_window": window} if window is not None else {})})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--samples", type=int, default=None, help="requests per page (default 10, --quick 3)")
    parser.add_argument("--insert-seconds", type=float, default=None,
                        help="bound on writing the devices (default: --duration, 300 s; --quick 20 s)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --work-dir: measure the fleet an earlier run wrote there for the same "
                             "--devices (no insert, no census); written as usual when it is not there")
    steady_jobs.add_options(parser)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
