"""Boot storm: N devices bootstrap as fast as the ACS lets them.

Every simulated device powers on at once (``ramp`` is effectively infinite) and opens its
BOOTSTRAP session: Inform, empty POST, the provisioning SetParameterValues, 204. The simulator
keeps ``--concurrency`` sessions open at a time. Figures: bootstrap sessions per second (first
session start to last session end), session latency p50/p95/p99, failed sessions, and CPU and
resident memory of the ACS, its database and the simulator. The same storm against the bare
baseline handler (bench/baseline.py) in the same run gives the floor.

    python bench/boot_storm.py [--quick] [--devices N] [--concurrency C] [--duration S] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
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
    verdict = "met" if acs["sessions_per_second"] >= TARGET_RATE and acs["failed_sessions"] == 0 else "missed"
    return (common.table(["figure", "ACS", "baseline (bare aiohttp+lxml)", "ACS / baseline"], rows)
            + f"\n\nTarget (100,000 devices at >= {TARGET_RATE:.0f} sessions/s, 0 failed): **{verdict}** "
              f"at {acs['devices']} devices, {acs['concurrency']} concurrent sessions.")


async def run(args: argparse.Namespace) -> int:
    devices, duration = common.sized(args, SIZES)
    concurrency = args.concurrency
    with common.work_dir(args, "boot-storm") as directory:
        baseline = await common.start_baseline(directory)
        try:
            floor = await storm(directory, "baseline-fleet", baseline.cwmp_url, devices, concurrency, duration,
                                {"server": baseline.pid})
        finally:
            await baseline.child.stop()
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=args.workers)
        try:
            counters = common.DatabaseCounters(server.db_uri, None if args.mongodb_uri else server.data_dir)
            acs = await storm(directory, "acs-fleet", server.cwmp_url, devices, concurrency, duration,
                              {"server": server.pid}, counters)
        finally:
            await server.child.stop()
        common.record(args, f"Boot storm, {devices} devices", server.backend, render(acs, floor),
                      {"acs": acs, "baseline": floor, "workers": args.workers})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--concurrency", type=int, default=100, help="sessions the simulator keeps open")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
