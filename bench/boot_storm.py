"""Boot storm: N devices bootstrap as fast as the ACS lets them.

Every simulated device powers on at once (``ramp`` is effectively infinite) and opens its
BOOTSTRAP session: Inform, empty POST, the provisioning SetParameterValues, 204. The simulator
keeps ``--concurrency`` sessions open at a time. Figures: bootstrap sessions per second (first
session start to last session end), session latency p50/p95/p99, failed sessions, and CPU and
resident memory of the ACS, its database and the simulator. The same storm against the bare
baseline handler (bench/baseline.py) in the same run gives the floor. ``--jobs-after S`` keeps the
ACS S seconds after the storm and reports its scheduled jobs' runs (a run is recorded when it
ends) and the ticks skipped because a run was still going: jobs that stall show there.

    python bench/boot_storm.py [--quick] [--devices N] [--concurrency C] [--duration S] [--no-record]
                               [--event-loop auto|uvloop|asyncio] [--jobs-after S]
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

from bench import common

SIZES = common.Sizes(devices=10_000, quick_devices=200, duration=300.0, quick_duration=40.0)
TARGET_RATE = 1000.0


async def storm(directory: Path, name: str, url: str, devices: int, concurrency: int, timeout: float,
                server: dict[str, int], counters: common.DatabaseCounters | None = None) -> dict[str, Any]:
    """One storm of ``devices`` bootstraps against ``url``; ``server`` names the pids to sample."""
    before = await counters.read() if counters else {}
    fleet = common.start_fleet(directory, name, url, devices, max_sessions=concurrency)
    sampler = common.Sampler({**server, "simulator": fleet.child.pid}).start()
    started = time.monotonic()
    try:
        complete = await fleet.wait_bootstrapped(devices, timeout)
        wall = time.monotonic() - started
        usage = await sampler.stop()
        after = await counters.read() if counters else {}
    finally:
        report = await fleet.finish()
    bootstrap = report.get("by_kind", {}).get("bootstrap", {"ok": 0, "failed": 0, "latency_ms": {}})
    span = max(report.get("last_end", 0.0) - report.get("first_start", 0.0), 1e-9)
    return {
        "devices": devices,
        "concurrency": concurrency,
        "all_bootstrapped": complete,
        "bootstrapped": bootstrap["ok"],
        "failed_sessions": report.get("failed", 0),
        "errors": report.get("errors", {}),
        "sessions_per_second": round(bootstrap["ok"] / span, 1),
        "latency_ms": bootstrap["latency_ms"],
        "wall_seconds": round(wall, 1),
        "usage": usage,
        "per_session": common.per_session(before, after, usage, bootstrap["ok"]),
    }


def render(acs: dict[str, Any], floor: dict[str, Any]) -> str:
    rows = common.storm_rows(acs, floor)
    rows.append(["event loop", acs.get("event_loop") or "-", "asyncio", ""])
    jobs = acs.get("scheduled_jobs")
    if jobs is not None:
        per_job = ", ".join(f"{name} {job['runs']}" + (f" ({job['errors']} failed)" if job["errors"] else "")
                            for name, job in jobs["jobs"].items())
        rows.append([f"scheduled job runs finished, storm + {jobs['after_seconds']:g} s after",
                     f"{jobs['runs']}: {per_job or 'none'}", "-", ""])
        rows.append(["scheduled job ticks skipped (previous run still going)", jobs["skipped_ticks"], "-", ""])
    verdict = "met" if acs["sessions_per_second"] >= TARGET_RATE and acs["failed_sessions"] == 0 else "missed"
    return (common.table(["figure", "ACS", "baseline (bare aiohttp+lxml)", "ACS / baseline"], rows)
            + f"\n\nTarget (100,000 devices at >= {TARGET_RATE:.0f} sessions/s, 0 failed): **{verdict}** "
              f"at {acs['devices']} devices, {acs['concurrency']} concurrent sessions.")


async def run(args: argparse.Namespace) -> int:
    devices, duration = common.sized(args, SIZES)
    concurrency = args.concurrency
    load_start = common.load_average()
    with common.work_dir(args, "boot-storm") as directory:
        baseline = await common.start_baseline(directory)
        try:
            floor = await storm(directory, "baseline-fleet", baseline.cwmp_url, devices, concurrency, duration,
                                {"server": baseline.pid})
        finally:
            await baseline.child.stop()
        acs_started = datetime.now(UTC)
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=args.workers,
                                        env=common.acs_env(args))
        try:
            counters = common.DatabaseCounters(server.db_uri, None if args.mongodb_uri else server.data_dir)
            acs = await storm(directory, "acs-fleet", server.cwmp_url, devices, concurrency, duration,
                              {"server": server.pid}, counters)
            log_text = server.child.log_path.read_text(errors="replace")
            acs["event_loop"] = common.event_loop_from_log(log_text)
            if args.jobs_after > 0:
                await asyncio.sleep(args.jobs_after)  # the scheduled jobs' ticks after the storm
                log_text = server.child.log_path.read_text(errors="replace")
                acs["scheduled_jobs"] = {
                    "after_seconds": args.jobs_after,
                    **await common.scheduled_job_runs(server.db_uri, acs_started, log_text),
                }
        finally:
            await server.child.stop()
        common.record(args, f"Boot storm, {devices} devices", server.backend, render(acs, floor),
                      {"acs": acs, "baseline": floor, "workers": args.workers,
                       "load_start": load_start, "load_end": common.load_average()})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    common.add_event_loop_option(parser)
    parser.add_argument("--concurrency", type=int, default=100, help="sessions the simulator keeps open")
    parser.add_argument("--jobs-after", type=float, default=0.0,
                        help="seconds to keep the ACS after the storm, then report its scheduled jobs' runs")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
