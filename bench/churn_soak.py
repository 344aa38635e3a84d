"""Churn soak: a long churn-only run against `acs serve`; how many false incidents per hour?

A fleet of simulated ONTs informs every ``--interval`` seconds; once every device's OLT/PON is
known (the first health read), ``--churn-rate`` devices a minute, at random across OLTs and PONs,
go silent for a random ``--churn-down`` MIN:MAX seconds and come back with ``1 BOOT``. Nothing is
wrong with the network, so every incident opened is a false one. The script prints each as it
opens, then the count per hour of churn, the transitions seen and the busiest moment.

    python bench/churn_soak.py --devices 300 --duration 600 --churn-rate 6 --churn-down 60:300 --no-record

Short intervals stand in for production's (inform 30 s instead of 300 s, detection window 300 s
instead of 900 s), so an hour here holds many more offline/online cycles than one in the field.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymongo import AsyncMongoClient

from bench import common

SIZES = common.Sizes(devices=300, quick_devices=60, duration=600.0, quick_duration=90.0)
POLL = 5.0


def settings(args: argparse.Namespace) -> dict[str, str]:
    return {
        "ACS_PERIODIC_INFORM_INTERVAL": str(args.interval),
        "ACS_OFFLINE_GRACE": "5",
        "ACS_OFFLINE_CHECK_INTERVAL": "5",
        "ACS_HEALTH_INTERVAL": "3600",
        "ACS_HEALTH_CHECK_INTERVAL": "5",
        "ACS_HEALTH_RIDE_WINDOW": str(args.interval + 5),
        "ACS_HEALTH_MAX_IN_FLIGHT": "5000",
        "ACS_INCIDENT_CHECK_INTERVAL": "5",
        "ACS_INCIDENT_WINDOW": str(args.window),
        "ACS_SESSION_TIMEOUT": "20",
        "ACS_LOG_LEVEL": "WARNING" if args.mongodb_uri else "INFO",
    }


async def soak(args: argparse.Namespace, directory: Path, devices: int, duration: float) -> dict[str, Any]:
    server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=args.workers,
                                    env=settings(args))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.db_uri, tz_aware=True)
    db = client.get_default_database()
    churn_start = 3 * args.interval + devices / 20  # after the first health read gave every OLT/PON id
    sim = common.start_child("acs sim", [
        *common.acs_command(), "sim", "--url", server.cwmp_url, "--devices", str(devices),
        "--interval", str(args.interval), "--ramp", "200", "--seed", str(args.seed), "--max-sessions", "100",
        "--onts-per-pon", str(args.onts_per_pon), "--summary-every", "30", "--scenario", "churn",
        "--churn-rate", str(args.churn_rate), "--churn-down", args.churn_down, "--churn-start", str(churn_start),
    ], directory / "sim.log")
    seen: dict[int, dict[str, Any]] = {}
    peak_offline, runs = 0, 0
    try:
        started = time.monotonic()

        async def topology() -> bool:
            sim.check_alive()
            return await db.devices.count_documents({"olt_id": {"$ne": None}}) >= devices

        await common.wait_until(topology, churn_start + 60, "every device's OLT/PON id read", interval=1)
        await common.wait_until(lambda: time.monotonic() - started >= churn_start, churn_start + 5,
                                "the churn start", interval=0.5)
        begun = datetime.now(UTC)
        end = time.monotonic() + duration
        print(f"churn from {begun:%H:%M:%S} for {duration:.0f}s: {devices} devices, {args.churn_rate:g}/min, "
              f"down {args.churn_down}s", file=sys.stderr, flush=True)
        while time.monotonic() < end:
            sim.check_alive()
            server.child.check_alive()
            peak_offline = max(peak_offline, await db.devices.count_documents({"presence": "offline"}))
            async for incident in db.incidents.find({"_id": {"$nin": list(seen)}}):
                seen[incident["_id"]] = incident
                print(f"false incident #{incident['_id']} at {incident['opened_at']:%H:%M:%S}: "
                      f"{incident['title']}", file=sys.stderr, flush=True)
            await asyncio.sleep(min(POLL, max(0.0, end - time.monotonic())))  # the soak itself, not a wait
        runs = await db.job_runs.count_documents({"job": "detect_incidents", "started_at": {"$gte": begun}})
        went = await db.device_events.count_documents({"type": "offline", "at": {"$gte": begun}})
        came = await db.device_events.count_documents({"type": "online", "at": {"$gte": begun}})
        boots = await db.device_events.count_documents({"type": "boot", "at": {"$gte": begun}})
        failed_runs = await db.job_runs.count_documents({"job": "detect_incidents", "outcome": {"$ne": "ok"}})
    finally:
        await sim.stop(30)
        await client.close()
        await server.child.stop()
    hours = duration / 3600
    return {
        "devices": devices, "duration_s": duration, "churn_rate_per_min": args.churn_rate,
        "churn_down_s": args.churn_down, "interval_s": args.interval, "window_s": args.window,
        "onts_per_pon": args.onts_per_pon, "backend": server.backend,
        "false_incidents": len(seen), "false_incidents_per_hour": round(len(seen) / hours, 2),
        "incidents": [{"id": i["_id"], "key": i["key"], "title": i["title"], "opened_at": i["opened_at"]}
                      for i in seen.values()],
        "offline_transitions": went, "online_transitions": came, "boots": boots, "peak_offline": peak_offline,
        "detection_runs": runs, "failed_detection_runs": failed_runs,
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        ["devices / inform interval / ONTs per PON", f"{result['devices']} / {result['interval_s']} s / "
                                                     f"{result['onts_per_pon']}"],
        ["churn", f"{result['churn_rate_per_min']:g} a minute, down {result['churn_down_s']} s"],
        ["churn run", f"{result['duration_s']:.0f} s"],
        ["detection window / runs", f"{result['window_s']} s / {result['detection_runs']} "
                                    f"({result['failed_detection_runs']} failed)"],
        ["offline / online transitions, boots", f"{result['offline_transitions']} / "
                                                f"{result['online_transitions']}, {result['boots']}"],
        ["most devices offline at once", result["peak_offline"]],
        ["false incidents", f"{result['false_incidents']} ({result['false_incidents_per_hour']:g} per hour)"],
    ]
    lines = [common.table(["figure", "value"], rows)]
    lines += [f"- #{i['id']} {i['key']}: {i['title']}" for i in result["incidents"]]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    devices, duration = common.sized(args, SIZES)
    with common.work_dir(args, "churn-soak") as directory:
        result = await soak(args, directory, devices, duration)
    common.record(args, f"Churn soak, {devices} devices, {args.churn_rate:g}/min for {duration:.0f} s",
                  result["backend"], render(result), result)
    return 1 if result["failed_detection_runs"] else 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--interval", type=int, default=30, help="periodic inform interval (default %(default)s)")
    parser.add_argument("--window", type=int, default=300, help="incident detection window, s (default %(default)s)")
    parser.add_argument("--churn-rate", type=float, default=6.0, help="devices silenced a minute (default %(default)s)")
    parser.add_argument("--churn-down", default="60:300", help="MIN:MAX seconds silent (default %(default)s)")
    parser.add_argument("--onts-per-pon", type=int, default=32, help="devices per PON port (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default %(default)s)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
