"""Steady state: N bootstrapped devices informing periodically; ACS CPU, memory and latency.

The ACS pushes ``PeriodicInformInterval`` = ``--interval`` at BOOTSTRAP (ACS_PERIODIC_INFORM_INTERVAL,
at least 30 s), and the devices power on spread over one interval, so once all are bootstrapped
the load is N / interval periodic sessions per second. The benchmark waits for every BOOTSTRAP,
then measures ``--duration`` seconds: periodic sessions per second and their latency, and the CPU
(cores) and resident memory of the ACS, of its database and of the simulator. The baseline handler
gets the same fleet and interval in the same run.

    python bench/steady_state.py [--quick] [--devices N] [--interval S] [--duration S] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SIZES = common.Sizes(devices=2000, quick_devices=40, duration=60.0, quick_duration=5.0)
QUICK_BASELINE_INTERVAL = 10  # --quick only: the baseline may go below the ACS's 30 s minimum


async def steady(directory: Path, name: str, url: str, devices: int, interval: int, duration: float,
                 server: dict[str, int], bootstrap_timeout: float,
                 counters: common.DatabaseCounters | None = None) -> dict[str, Any]:
    fleet = common.start_fleet(directory, name, url, devices, ramp=devices / interval, max_sessions=200,
                               interval=interval)
    try:
        bootstrapped = await fleet.wait_bootstrapped(devices, bootstrap_timeout)
        # The first periodic informs come one interval after each device's boot.
        first_boot = fleet.status().get("time", 0.0) - fleet.status().get("elapsed", 0.0)
        await common.wait_until(lambda: fleet.status().get("time", 0.0) >= first_boot + interval,
                                interval + 30, "one periodic interval after the first boot")
        before = await counters.read() if counters else {}
        fleet.mark_window()
        sampler = common.Sampler({**server, "simulator": fleet.child.pid}).start()
        await asyncio.sleep(duration)  # the measurement window itself, not a wait for readiness
        usage = await sampler.stop()
        after = await counters.read() if counters else {}
    finally:
        report = await fleet.finish()
    window = report.get("window", {})
    periodic = window.get("by_kind", {}).get("periodic", {"ok": 0, "failed": 0, "latency_ms": {}})
    return {
        "devices": devices,
        "interval": interval,
        "all_bootstrapped": bootstrapped,
        "offered_sessions_per_second": round(devices / interval, 1),
        "sessions_per_second": window.get("sessions_per_second", 0.0),
        "periodic_ok": periodic["ok"],
        "failed_sessions": sum(kind["failed"] for kind in window.get("by_kind", {}).values()),
        "latency_ms": periodic["latency_ms"],
        "window_seconds": window.get("seconds", 0.0),
        "usage": usage,
        "per_session": common.per_session(before, after, usage,
                                          sum(kind["ok"] for kind in window.get("by_kind", {}).values())),
    }


def render(acs: dict[str, Any], floor: dict[str, Any]) -> str:
    def row(label: str, a: float, b: float) -> list[object]:
        return [label, a, b, common.ratio(a, b)]

    def use(result: dict[str, Any], group: str, key: str) -> float:
        return float(result["usage"].get(group, {}).get(key, 0.0))

    rows: list[list[object]] = [
        ["devices / interval (s)", f"{acs['devices']} / {acs['interval']}", f"{floor['devices']} / "
                                                                              f"{floor['interval']}", ""],
        row("sessions/s in the window", acs["sessions_per_second"], floor["sessions_per_second"]),
        *(row(f"periodic latency {q} (ms)", acs["latency_ms"].get(q, 0), floor["latency_ms"].get(q, 0))
          for q in ("p50", "p95", "p99")),
        ["failed sessions", acs["failed_sessions"], floor["failed_sessions"], ""],
        row("server CPU (cores)", use(acs, "server", "cpu_cores"), use(floor, "server", "cpu_cores")),
        row("server max RSS (MB)", use(acs, "server", "rss_mb_max"), use(floor, "server", "rss_mb_max")),
        ["database CPU (cores) / RSS sum (MB)", f"{use(acs, 'server database', 'cpu_cores')} / "
                                                f"{use(acs, 'server database', 'rss_mb_max')}", "-", ""],
        ["simulator CPU (cores)", use(acs, "simulator", "cpu_cores"), use(floor, "simulator", "cpu_cores"), ""],
        *common.per_session_rows(acs, floor),
    ]
    return common.table(["figure", "ACS", "baseline (bare aiohttp+lxml)", "ACS / baseline"], rows)


async def run(args: argparse.Namespace) -> int:
    devices, duration = common.sized(args, SIZES)
    interval = args.interval or (30 if args.quick else 60)
    floor_interval = min(interval, QUICK_BASELINE_INTERVAL) if args.quick else interval
    floor_devices = max(1, devices * floor_interval // interval)
    bootstrap_timeout = max(120.0, 3.0 * interval + devices / 10)
    with common.work_dir(args, "steady-state") as directory:
        baseline = await common.start_baseline(directory, floor_interval)
        try:
            floor = await steady(directory, "baseline-fleet", baseline.cwmp_url, floor_devices, floor_interval,
                                 duration, {"server": baseline.pid}, bootstrap_timeout)
        finally:
            await baseline.child.stop()
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=args.workers,
                                        env={"ACS_PERIODIC_INFORM_INTERVAL": str(interval)})
        try:
            counters = common.DatabaseCounters(server.db_uri, None if args.mongodb_uri else server.data_dir)
            acs = await steady(directory, "acs-fleet", server.cwmp_url, devices, interval, duration,
                               {"server": server.pid}, bootstrap_timeout, counters)
        finally:
            await server.child.stop()
        common.record(args, f"Steady state, {devices} devices every {interval} s", server.backend,
                      render(acs, floor), {"acs": acs, "baseline": floor, "workers": args.workers})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--interval", type=int, default=None, help="periodic inform interval (default 60, "
                        "--quick 30; the ACS accepts 30 or more)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
