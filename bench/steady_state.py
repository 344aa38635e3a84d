"""Steady state: N bootstrapped devices informing periodically; ACS CPU, database work and latency.

Three phases, each against the ACS and then (same fleet, same interval) against the bare baseline:

1. **Bring-up.** The devices power on at ``devices / (k * interval)`` per second, the smallest
   whole number of intervals ``k`` that keeps the rate at or under ``--bring-up-rate`` (what the box
   bootstraps while the devices already up inform). The ACS pushes ``PeriodicInformInterval`` =
   ``--interval`` in each BOOTSTRAP session, and a device's periodic informs count from that
   moment (TR-069 3.2.1.1's interval, anchored when it is set), so bringing the fleet up over whole
   intervals at an even rate spreads the periodic informs evenly over the interval.
2. **Settle** (``--settle``, default one interval + 15 s, then until at most 2% of 10 s of periodic
   sessions carry RPCs, 300 s at most). A device's first periodic session after its BOOTSTRAP
   carries the work the ACS queues for a new device (its first health read); the window begins
   once that has drained, so it holds the fleet's ordinary periodic sessions.
3. **Window** (``--duration``): periodic sessions per second and their latency (p50/p95/p99, split
   into sessions with nothing queued and sessions with RPCs), database commands, PostgreSQL
   transactions and CPU milliseconds of the ACS and of its database per session, and each ACS
   process's sessions (count, p50/p99 of how long the ACS held them) from its log.
   ``--hold-jobs`` takes every scheduled job's lease for the window (as a departed holder would
   hold it), so the window's database figures are the sessions' alone; without it they include
   the jobs' work, as in production. ``--hold-jobs NAME ...`` holds only the jobs named.
4. **The jobs against the sessions**: each job's runs that overlapped the window (from
   ``job_runs``: count, duration p50 / max) and the periodic sessions' p99 while one of its runs
   was under way against the rest (a session overlaps a run when their spans meet), and the window's
   slowest ``SLICE``-second slices with the jobs that ran in them or just before: what names the
   job behind a tail.

The simulator keeps at most ``--concurrency`` sessions open: by default the ACS's own cap on CWMP
requests in flight per worker (``ACS_CWMP_MAX_REQUESTS``), so the ACS never answers it 503 for
being busy. The benchmark measures sessions the ACS serves, not how it sheds load beyond its cap
(bench/boot_storm.py and the listener tests do that); a real fleet does not hold more sessions open
than the ACS admits for long, because every 503 sends the device into its retry back-off.

    python bench/steady_state.py [--quick] [--devices N] [--interval S] [--duration S] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acs.config import Settings
from bench import common
from tasks.store.db import connect

SIZES = common.Sizes(devices=5000, quick_devices=40, duration=180.0, quick_duration=5.0)
QUICK_BASELINE_INTERVAL = 10  # --quick only: the baseline may go below the ACS's 30 s minimum
BASELINE_BRING_UP_RATE = 500.0  # devices/s: the bare handler bootstraps an order of magnitude faster
BASELINE_WINDOW = 60.0  # seconds: the floor's figures are per session, a minute of them is plenty
SETTLE_MARGIN = 15.0  # seconds beyond one interval: the health read is queued ~10 s after a BOOTSTRAP
SETTLE_CHECK = 10.0  # seconds of periodic sessions judged at a time
SETTLE_SHARE = 0.02  # at most this share of them with RPCs: the first health reads are done
MAX_SETTLE = 300.0  # seconds after the last BOOTSTRAP at most
SLICE = 5.0  # seconds: the window cut into slices of session starts, the slowest ones shown with their jobs
SLOWEST_SLICES = 6
JOB_ECHO = 5.0  # seconds: a run that ended this little before a slice counts as in it (the work it queued)
ACS_REQUEST_CAP = int(Settings.model_fields["cwmp_max_requests"].default)


def bring_up_ramp(devices: int, interval: int, max_rate: float) -> float:
    """Devices powered on per second: ``devices`` over the fewest whole intervals at <= ``max_rate``."""
    intervals = max(1, math.ceil(devices / (interval * max_rate)))
    return devices / (intervals * interval)


def reached(moment: float, status: dict[str, Any]) -> bool:
    """The fleet runner's clock (its status file's ``time``) is at ``moment`` or later."""
    return float(status.get("time", 0.0)) >= moment


async def settle_down(fleet: common.FleetProcess, settle: float) -> float | None:
    """Wait ``settle`` seconds, then until the ACS's work for new devices has drained: over one
    ``SETTLE_CHECK`` at most ``SETTLE_SHARE`` of the periodic sessions carried RPCs (a loaded ACS
    serves the first health reads later than one interval after the BOOTSTRAP). Returns the
    seconds waited, or None if the share never fell within ``MAX_SETTLE`` (the window then begins)."""
    started = float(fleet.status().get("time", 0.0))
    await fleet.wait_status(partial(reached, started + settle), settle + 30,
                            f"{settle:.0f} s of periodic sessions after the last BOOTSTRAP")
    if settle <= 0:
        return 0.0

    def periodic(status: dict[str, Any]) -> tuple[int, int]:
        kinds = status.get("ok_by_kind", {})
        return kinds.get("periodic", 0), kinds.get("periodic_with_rpcs", 0)

    while True:
        first = fleet.status()
        due = float(first.get("time", 0.0)) + SETTLE_CHECK
        later = await fleet.wait_status(partial(reached, due), SETTLE_CHECK + 30, "the next settle check")
        (plain_0, rpcs_0), (plain_1, rpcs_1) = periodic(first), periodic(later)
        waited = float(later.get("time", 0.0)) - started
        if rpcs_1 - rpcs_0 <= SETTLE_SHARE * max(1, plain_1 - plain_0 + rpcs_1 - rpcs_0):
            return round(waited, 1)
        if waited >= MAX_SETTLE:
            return None


async def steady(directory: Path, name: str, url: str, devices: int, interval: int, duration: float,
                 server: dict[str, int], *, ramp: float, settle: float, concurrency: int,
                 counters: common.DatabaseCounters | None = None, db_uri: str | None = None,
                 hold_jobs: list[str] | None = None, log_path: Path | None = None) -> dict[str, Any]:
    fleet = common.start_fleet(directory, name, url, devices, ramp=ramp, max_sessions=concurrency,
                               interval=interval)
    bring_up = devices / ramp
    try:
        bootstrapped = await fleet.wait_bootstrapped(devices, 2 * bring_up + 120)
        settled_at = await settle_down(fleet, settle)
        held = await hold_job_leases(db_uri, duration, hold_jobs) if db_uri and hold_jobs is not None else None
        before = await counters.read() if counters else {}
        load_before = common.load_average()
        fleet.mark_window()
        window_start = time.time()
        sampler = common.Sampler({**server, "simulator": fleet.child.pid}).start()
        await asyncio.sleep(duration)  # the measurement window itself, not a wait for readiness
        usage = await sampler.stop()
        after = await counters.read() if counters else {}
        load_after = common.load_average()
        window_end = time.time()
        if held is not None and db_uri:
            await release_job_leases(db_uri)
    finally:
        report = await fleet.finish()
    runs = await job_runs_between(db_uri, window_start, window_end) if db_uri else []
    log_text = await asyncio.to_thread(log_path.read_text, errors="replace") if log_path is not None else ""
    by_process = common.session_seconds_by_process(log_text, window_start, window_end)
    window = report.get("window", {})
    kinds = window.get("by_kind", {})
    empty = {"ok": 0, "failed": 0, "latency_ms": {}}
    periodic = kinds.get("periodic", empty)
    each = [(float(start), float(length)) for start, length, ok, kind in window.get("each", [])
            if ok and str(kind).startswith("periodic")]
    return {
        "devices": devices,
        "interval": interval,
        "bring_up_rate": round(ramp, 2),
        "concurrency": concurrency,
        "all_bootstrapped": bootstrapped,
        "settled_seconds_after_bring_up": settled_at,
        "offered_sessions_per_second": round(devices / interval, 1),
        "sessions_per_second": window.get("sessions_per_second", 0.0),
        "periodic_ok": periodic["ok"],
        "periodic_with_rpcs_ok": kinds.get("periodic_with_rpcs", empty)["ok"],
        "failed_sessions": sum(kind["failed"] for kind in kinds.values()),
        "latency_ms": window.get("periodic_latency_ms", {}),
        "latency_ms_nothing_queued": periodic["latency_ms"],
        "latency_ms_with_rpcs": kinds.get("periodic_with_rpcs", empty)["latency_ms"],
        "window_seconds": window.get("seconds", 0.0),
        "window_by_kind": kinds,
        "errors_whole_run": report.get("errors", {}),
        "load_average": {"window_start": load_before, "window_end": load_after},
        "usage": usage,
        "per_session": common.per_session(before, after, usage, sum(kind["ok"] for kind in kinds.values())),
        "jobs_held": held,
        "sessions_by_process": by_process,
        "jobs_against_sessions": jobs_against_sessions(runs, each) if db_uri else None,
        "slowest_slices": slowest_slices(runs, each, window_start, window_end) if db_uri else None,
    }


HOLDER = "bench-hold"


async def hold_job_leases(uri: str, duration: float, only: list[str]) -> list[str]:
    """Take the scheduled jobs' leases until after the window, as a departed holder would hold them:
    a run under way finishes, no new one starts. ``only`` names the jobs; empty: every job that has
    taken a lease so far."""
    database = connect(uri, app_name="bench")
    try:
        leases = database.collection("job_leases")
        names = sorted(set(only)) or sorted([lease["_id"] async for lease in leases.find({}, {"_id": 1})])
        until = datetime.now(UTC) + timedelta(seconds=duration + 600)
        for name in names:  # an upsert: a job named that has not run yet is held too
            await leases.update_one({"_id": name}, {"$set": {"holder": HOLDER, "until": until}}, upsert=True)
        return names
    finally:
        await database.close()


JobRun = tuple[str, float, float, dict[str, Any]]  # job, started and ended (epoch seconds), counts


async def job_runs_between(uri: str, start: float, end: float) -> list[JobRun]:
    """The scheduled jobs' runs (``job_runs``: recorded as each ends) whose span met ``start``-``end``
    (epoch seconds): (job, started, ended, what the run counted)."""
    database = connect(uri, app_name="bench")
    try:
        since = datetime.fromtimestamp(start, UTC) - timedelta(hours=1)
        found = [run async for run in database.collection("job_runs").find(
            {"started_at": {"$gte": since}}, {"job": 1, "started_at": 1, "ended_at": 1, "counts": 1})]
    finally:
        await database.close()
    runs = [(str(run["job"]), run["started_at"].timestamp(), run["ended_at"].timestamp(), run.get("counts") or {})
            for run in found if run.get("ended_at") is not None]
    return sorted((run for run in runs if run[1] <= end and run[2] >= start), key=lambda run: run[:3])


def overlaps(session: tuple[float, float], runs: list[tuple[float, float]]) -> bool:
    """The session (start, seconds) was under way while one of ``runs`` (started, ended) was."""
    start, end = session[0], session[0] + session[1]
    return any(begun <= end and ended >= start for begun, ended in runs)


def jobs_against_sessions(runs: list[JobRun], sessions: list[tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """Per job: its runs in the window (count, duration p50 / max ms, the numbers its runs counted,
    summed), and the p99 (ms) of the periodic sessions that overlapped one of its runs against that
    of the others, with their counts."""
    found: dict[str, dict[str, Any]] = {}
    for job in sorted({run[0] for run in runs}):
        spans = [(begun, ended) for name, begun, ended, _ in runs if name == job]
        counted: dict[str, float] = {}
        for name, *_, counts in runs:
            for key, value in counts.items() if name == job else ():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    counted[key] = counted.get(key, 0) + value
        durations = common.percentiles(ended - begun for begun, ended in spans)
        during = [s[1] for s in sessions if overlaps(s, spans)]
        rest = [s[1] for s in sessions if not overlaps(s, spans)]
        found[job] = {"runs": len(spans), "run_ms_p50": durations["p50"], "run_ms_max": durations["max"],
                      "sessions_during": len(during), "p99_during": common.percentiles(during)["p99"],
                      "sessions_other": len(rest), "p99_other": common.percentiles(rest)["p99"],
                      "counted": {key: value for key, value in counted.items() if value}}
    return found


def slowest_slices(runs: list[JobRun], sessions: list[tuple[float, float]],
                   start: float, end: float) -> list[dict[str, Any]]:
    """The window's ``SLICE``-second slices of session starts with the highest p99, each with its
    sessions and the jobs whose runs met it (or ended at most ``JOB_ECHO`` s before it)."""
    slices: dict[int, list[float]] = {}
    for began, length in sessions:
        if start <= began < end:
            slices.setdefault(int((began - start) // SLICE), []).append(length)
    ranked = sorted(slices.items(), key=lambda item: common.percentiles(item[1])["p99"], reverse=True)
    shown = []
    for index, lengths in ranked[:SLOWEST_SLICES]:
        begins, ends = start + index * SLICE, start + (index + 1) * SLICE
        jobs = sorted({name for name, begun, ended, _ in runs if begun <= ends and ended >= begins - JOB_ECHO})
        shown.append({"from_s": round(index * SLICE), "sessions": len(lengths),
                      "p99": common.percentiles(lengths)["p99"], "jobs": jobs})
    return shown


async def release_job_leases(uri: str) -> None:
    database = connect(uri, app_name="bench")
    try:
        await database.collection("job_leases").update_many({"holder": HOLDER},
                                                            {"$set": {"until": datetime.now(UTC)}})
    finally:
        await database.close()


def render(acs: dict[str, Any], floor: dict[str, Any]) -> str:
    def row(label: str, a: float, b: float) -> list[object]:
        return [label, a, b, common.ratio(a, b)]

    def use(result: dict[str, Any], group: str, key: str) -> float:
        return float(result["usage"].get(group, {}).get(key, 0.0))

    def setup(result: dict[str, Any]) -> str:
        return (f"{result['devices']} / {result['interval']} s; brought up at {result['bring_up_rate']}/s, "
                f"{result['concurrency']} sessions open at most")

    rows: list[list[object]] = [
        ["devices / interval; bring-up", setup(acs), setup(floor), ""],
        ["all bootstrapped before the window", acs["all_bootstrapped"], floor["all_bootstrapped"], ""],
        ["offered periodic sessions/s", acs["offered_sessions_per_second"], floor["offered_sessions_per_second"], ""],
        row("sessions/s in the window", acs["sessions_per_second"], floor["sessions_per_second"]),
        *(row(f"periodic latency {q} (ms)", acs["latency_ms"].get(q, 0), floor["latency_ms"].get(q, 0))
          for q in ("p50", "p95", "p99")),
        ["periodic latency p50 / p99 (ms): nothing queued; with RPCs", split(acs), split(floor), ""],
        ["periodic sessions ok: nothing queued / with RPCs", f"{acs['periodic_ok']} / {acs['periodic_with_rpcs_ok']}",
         f"{floor['periodic_ok']} / {floor['periodic_with_rpcs_ok']}", ""],
        ["failed sessions in the window", acs["failed_sessions"], floor["failed_sessions"], ""],
        ["session errors over the whole run", acs["errors_whole_run"] or "none",
         floor["errors_whole_run"] or "none", ""],
        row("server CPU (cores)", use(acs, "server", "cpu_cores"), use(floor, "server", "cpu_cores")),
        row("server max RSS (MB)", use(acs, "server", "rss_mb_max"), use(floor, "server", "rss_mb_max")),
        ["database CPU (cores) / RSS sum (MB)", f"{use(acs, 'server database', 'cpu_cores')} / "
                                                f"{use(acs, 'server database', 'rss_mb_max')}", "-", ""],
        ["simulator CPU (cores)", use(acs, "simulator", "cpu_cores"), use(floor, "simulator", "cpu_cores"), ""],
        *common.per_session_rows(acs, floor),
        ["load average at the window's start / end", " / ".join(acs["load_average"].values()),
         " / ".join(floor["load_average"].values()), ""],
        ["event loop", acs.get("event_loop") or "-", "asyncio", ""],
        ["ACS sessions by process: count, p50 / p99 ms held (from its log)",
         "; ".join(f"{pid}: {v['sessions']}, {v['p50']} / {v['p99']}" for pid, v in acs["sessions_by_process"].items())
         or "-", "-", ""],
        ["scheduled jobs' leases held for the window", held(acs["jobs_held"]), "-", ""],
    ]
    return "\n\n".join([common.table(["figure", "ACS", "baseline (bare aiohttp+lxml)", "ACS / baseline"], rows),
                        *jobs_tables(acs)])


def split(result: dict[str, Any]) -> str:
    def pair(latency: dict[str, float]) -> str:
        return f"{latency.get('p50', 0)} / {latency.get('p99', 0)}"

    return f"{pair(result['latency_ms_nothing_queued'])}; {pair(result['latency_ms_with_rpcs'])}"


def held(names: list[str] | None) -> str:
    if names is None:
        return "none: the jobs ran"
    return f"{len(names)}: " + ", ".join(names)


def jobs_tables(acs: dict[str, Any]) -> list[str]:
    """Each job's runs in the window against the sessions' p99, and the slowest slices with their jobs."""
    per_job = acs.get("jobs_against_sessions")
    if not per_job:
        return []
    jobs = common.table(
        ["job (runs that met the window)", "runs", "run ms p50 / max", "sessions during a run: count, p99 ms",
         "other sessions: count, p99 ms", "its runs counted (summed)"],
        [[job, v["runs"], f"{v['run_ms_p50']} / {v['run_ms_max']}", f"{v['sessions_during']}, {v['p99_during']}",
          f"{v['sessions_other']}, {v['p99_other']}",
          ", ".join(f"{key} {value:g}" for key, value in v["counted"].items()) or "-"]
         for job, v in per_job.items()])
    slices = common.table(
        [f"slowest {SLICE:g} s slices (s into the window)", "sessions", "p99 ms",
         f"jobs running in it or ended <= {JOB_ECHO:g} s before"],
        [[s["from_s"], s["sessions"], s["p99"], ", ".join(s["jobs"]) or "-"] for s in acs["slowest_slices"] or []])
    return [jobs, slices]


async def run(args: argparse.Namespace) -> int:
    devices, duration = common.sized(args, SIZES)
    interval = args.interval or (30 if args.quick else 60)
    floor_interval = min(interval, QUICK_BASELINE_INTERVAL) if args.quick else interval
    floor_devices = max(1, devices * floor_interval // interval)
    settle = args.settle if args.settle is not None else (0.0 if args.quick else interval + SETTLE_MARGIN)
    concurrency = args.concurrency or ACS_REQUEST_CAP
    with common.work_dir(args, "steady-state") as directory:
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=args.workers,
                                        env={"ACS_PERIODIC_INFORM_INTERVAL": str(interval),
                                             "ACS_CWMP_MAX_REQUESTS": str(ACS_REQUEST_CAP),
                                             **common.acs_env(args)})
        try:
            acs_loop = common.event_loop_from_log(server.child.log_path.read_text(errors="replace"))
            counters = common.DatabaseCounters(server.db_uri, None if args.mongodb_uri else server.data_dir)
            acs = await steady(directory, "acs-fleet", server.cwmp_url, devices, interval, duration,
                               {"server": server.pid}, counters=counters, settle=settle, concurrency=concurrency,
                               ramp=bring_up_ramp(devices, interval, args.bring_up_rate),
                               db_uri=server.db_uri, hold_jobs=args.hold_jobs,
                               log_path=server.child.log_path)
            acs["event_loop"] = acs_loop
        finally:
            await server.child.stop()
        # The floor queues nothing for a new device: its window needs no settle.
        baseline = await common.start_baseline(directory, floor_interval)
        try:
            floor = await steady(directory, "baseline-fleet", baseline.cwmp_url, floor_devices, floor_interval,
                                 min(duration, BASELINE_WINDOW), {"server": baseline.pid}, settle=0.0,
                                 concurrency=concurrency,
                                 ramp=bring_up_ramp(floor_devices, floor_interval, BASELINE_BRING_UP_RATE))
        finally:
            await baseline.child.stop()
        common.record(args, f"Steady state, {devices} devices every {interval} s, --workers {args.workers}",
                      server.backend, render(acs, floor),
                      {"acs": acs, "baseline": floor, "workers": args.workers, "cpus": os.cpu_count()})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    common.add_event_loop_option(parser)
    parser.add_argument("--interval", type=int, default=None, help="periodic inform interval (default 60, "
                        "--quick 30; the ACS accepts 30 or more)")
    parser.add_argument("--bring-up-rate", type=float, default=30.0, help="devices powered on per second at "
                        "most while the fleet comes up (default 30: the box bootstraps ~48/s alone)")
    parser.add_argument("--settle", type=float, default=None, help="seconds between the last BOOTSTRAP and the "
                        "window (default one interval + 15; --quick 0)")
    parser.add_argument("--concurrency", type=int, default=None, help="sessions the simulator keeps open at most "
                        f"(default the ACS's per-worker cap, {ACS_REQUEST_CAP})")
    parser.add_argument("--hold-jobs", nargs="*", metavar="JOB", default=None, help="hold the scheduled jobs' "
                        "leases for the window (those named; none named: every job): its database figures are "
                        "then the sessions' alone")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
