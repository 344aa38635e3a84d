"""The simulator for benchmarks: `acs.sim.fleet.Fleet` in its own process, with a status file.

Unlike `acs sim` it exposes the device boot time (a reboot round trip should measure the ACS, not
the simulated firmware's 2 s boot), writes a status JSON every half second for the benchmark to
poll, and at SIGTERM writes the final report with every session's latency, grouped by why the
session was opened (bootstrap, periodic, connection request, boot after reboot).

    python bench/fleet_runner.py --url http://127.0.0.1:7547/ --devices 1000 \
        --status-file s.json --report-file r.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acs.sim.fleet import Fleet, FleetConfig
from acs.sim.session import SessionOutcome
from bench.common import percentiles

STATUS_PERIOD = 0.5


def kind_of(events: tuple[str, ...], requests: int = 0) -> str:
    """Why the session was opened; a periodic session in which the ACS sent RPCs is told apart."""
    if "0 BOOTSTRAP" in events:
        return "bootstrap"
    if "M Reboot" in events:
        return "reboot"
    if "6 CONNECTION REQUEST" in events:
        return "connection_request"
    if "2 PERIODIC" in events:
        return "periodic_with_rpcs" if requests else "periodic"
    return "other"


class Recorder:
    """Every finished session: (started_at, duration, ok, kind); SIGUSR1 marks a window's start."""

    def __init__(self) -> None:
        self.sessions: list[tuple[float, float, bool, str]] = []
        self.ok_by_kind: Counter[str] = Counter()  # sessions that succeeded so far, by kind
        self.window_from: float | None = None

    def mark(self) -> None:
        self.window_from = time.time()

    def record(self, outcome: SessionOutcome) -> None:
        kind = kind_of(outcome.events, len(outcome.requests))
        self.sessions.append((outcome.started_at, outcome.duration, outcome.ok, kind))
        if outcome.ok:
            self.ok_by_kind[kind] += 1

    def summary(self) -> dict[str, Any]:
        first = min((s[0] for s in self.sessions), default=0.0)
        last = max((s[0] + s[1] for s in self.sessions), default=0.0)
        report = {"sessions": len(self.sessions), "first_start": first, "last_end": last,
                  "by_kind": by_kind(self.sessions)}
        if self.window_from is not None:
            chosen = [s for s in self.sessions if s[0] >= self.window_from]
            window = max(time.time() - self.window_from, 1e-9)
            periodic = [s[1] for s in chosen if s[2] and s[3].startswith("periodic")]
            report["window"] = {"seconds": round(window, 2), "sessions": len(chosen),
                                "sessions_per_second": round(len(chosen) / window, 2), "by_kind": by_kind(chosen),
                                "periodic_latency_ms": percentiles(periodic),
                                # each one, for what the benchmark lines up with them (the jobs' runs)
                                "each": [[round(start, 3), round(duration, 4), ok, kind]
                                         for start, duration, ok, kind in chosen]}
        return report


def by_kind(sessions: list[tuple[float, float, bool, str]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kind in sorted({kind for *_, kind in sessions}):
        chosen = [s for s in sessions if s[3] == kind]
        ok = [s for s in chosen if s[2]]
        found[kind] = {"ok": len(ok), "failed": len(chosen) - len(ok),
                       "latency_ms": percentiles(duration for _, duration, _, _ in ok)}
    return found


def status(fleet: Fleet, recorder: Recorder) -> dict[str, Any]:
    snapshot = fleet.snapshot()
    return {
        "time": time.time(),
        "elapsed": round(snapshot.elapsed, 2),
        "sessions": fleet.stats.sessions,
        "ok": fleet.stats.sessions_ok,
        "failed": fleet.stats.sessions_failed,
        "online": snapshot.online,
        "in_session": snapshot.in_session,
        "errors": dict(fleet.stats.errors),
        "cr": vars(fleet.listener.stats),
        "bootstrap_ok": recorder.ok_by_kind["bootstrap"],
        "ok_by_kind": dict(recorder.ok_by_kind),
    }


def write_json(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(content, default=str))
    temporary.replace(path)


async def main(args: argparse.Namespace) -> int:
    config = FleetConfig(url=args.url, devices=args.devices, ramp=args.ramp, interval=args.interval, seed=args.seed,
                         max_sessions=args.max_sessions, boot_seconds=args.boot_seconds,
                         cr_listen=("127.0.0.1", args.cr_port), transfer_io=False)
    fleet = Fleet(config)
    recorder = Recorder()
    record = fleet.stats.record

    def record_both(outcome: SessionOutcome) -> None:
        record(outcome)
        recorder.record(outcome)

    fleet.stats.record = record_both  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, recorder.mark)
    await fleet.start()
    print(f"fleet: {args.devices} devices -> {args.url}; connection requests at {fleet.settings.cr_base_url}",
          file=sys.stderr, flush=True)
    while not stop.is_set():
        write_json(args.status_file, status(fleet, recorder))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_PERIOD)
    # The report first: the sessions the stop cuts short are not the ACS's failures, and a stop
    # that outlasts the parent's grace (a kill) must not cost the run its figures.
    write_json(args.status_file, status(fleet, recorder))
    write_json(args.report_file, {**status(fleet, recorder), **recorder.summary()})
    await fleet.stop()
    return 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=1e9, help="devices powered on per second")
    parser.add_argument("--max-sessions", type=int, default=100)
    parser.add_argument("--interval", type=int, default=300, help="periodic inform until the ACS sets one")
    parser.add_argument("--boot-seconds", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cr-port", type=int, default=0)
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument("--report-file", type=Path, required=True)
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(arguments())))
