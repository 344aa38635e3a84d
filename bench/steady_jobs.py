"""Requests beside the scheduled jobs in their steady state (issue 13 item 3): shared by
``bench/api_at_scale.py`` and ``bench/console_at_scale.py`` (``--steady``).

``acs serve`` started on a kept database first runs every job's catch-up: the offline scan from
where it stopped, the drift check, the census passes, minutes of whole-fleet reads at 200,000
devices. Requests sampled then measure the catch-up, not the service. So the benchmark waits until
the catch-up has passed, as ``job_runs`` says: every job that ticks more than once an hour has
ended a run since the start and its last run took under ``share`` (5%) of its interval, no run is
under way for longer than two intervals (a run is recorded when it ends), and every hourly job
that runs at start has ended that run. A job that never settles (its runs stay over the share)
holds the wait until the deadline; the benchmark then samples anyway and says which did not.

After the sampling, the job runs that overlapped its window are listed (name, duration), and each
request over the target is set against the runs it overlapped.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import common
from tasks.scheduler import LEASE_SHARE
from tasks.store.db import connect

SHARE = 0.05  # of its interval: a run under this is the job's steady state (issue 13 item 2's target)
HOURLY = 3600.0  # jobs this rare run at most once in a benchmark: only their start run is waited for
POLL = 5.0  # seconds between looks at job_runs while waiting
REPORT_EVERY = 30.0  # seconds between progress lines
UNDER_WAY_SLACK = 5.0  # seconds past two intervals with no run recorded: a run is under way
HOLDER = "bench-hold"  # as bench/steady_state.py holds leases: a departed holder's
HOLD_SECONDS = 3 * 3600.0  # released by the benchmark at its end; expires by itself if it dies


@dataclass(frozen=True)
class Schedule:
    interval: float
    at_start: bool


@dataclass(frozen=True)
class Run:
    job: str
    started: float  # epoch seconds
    ended: float
    ms: int


def add_options(parser: argparse.ArgumentParser) -> None:
    # argparse formats help with %: the percent sign doubled, or --help raises TypeError
    parser.add_argument("--steady", action="store_true",
                        help="sample once the scheduled jobs are in their steady state (every job's last run "
                             f"under {SHARE:.0%}% of its interval), not beside their catch-up after the start")
    parser.add_argument("--steady-timeout", type=float, default=900.0,
                        help="with --steady: the longest wait for it (seconds, default 900); then sample anyway")
    parser.add_argument("--hold", action="append", default=[], metavar="JOB",
                        help="take this job's lease before acs serve starts and keep it for the run (repeat)")


async def hold_before_start(directory: Path, mongodb_uri: str | None, jobs: list[str]) -> list[str]:
    """``jobs``' leases taken (for HOLD_SECONDS) before ``acs serve`` starts: a job that ticks at
    start would take its own first. On the local database (no ``mongodb_uri``) it is started on
    ``directory``'s data for the writes, then stopped. Returns the jobs held."""
    if not jobs:
        return []
    if mongodb_uri:
        await _hold(mongodb_uri, jobs)
        return sorted(jobs)
    from acs.localdb import LocalMongo

    server = await LocalMongo.start(directory / "acs-data")
    try:
        await _hold(server.uri, jobs)
    finally:
        await server.stop()
    return sorted(jobs)


async def _hold(uri: str, jobs: list[str]) -> None:
    database = connect(uri, app_name="bench")
    try:
        until = datetime.now(UTC) + timedelta(seconds=HOLD_SECONDS)
        for name in jobs:  # an upsert: a job that never ran is held too
            await database.collection("job_leases").update_one(
                {"_id": name}, {"$set": {"holder": HOLDER, "until": until}}, upsert=True)
    finally:
        await database.close()


async def release(uri: str) -> None:
    """The leases :func:`hold_before_start` took, expired now."""
    database = connect(uri, app_name="bench")
    try:
        await database.collection("job_leases").update_many({"holder": HOLDER}, {"$set": {"until": datetime.now(UTC)}})
    finally:
        await database.close()


async def job_schedule(db_uri: str, data_dir: Path) -> dict[str, Schedule]:
    """Each job ``acs serve`` registers with default settings, as it registers them
    (``acs.jobs.register_jobs``), by name: its interval and whether it ticks at start."""
    from acs.config import Settings
    from acs.jobs import register_jobs
    from acs.services import build_services
    from tasks.scheduler import JobRunner

    database = connect(db_uri, app_name="bench")
    try:
        services = build_services(Settings(data_dir=data_dir), database)
        runner = JobRunner(services.jobs, services.clock, holder="bench-schedule")
        register_jobs(runner, services)
        return {job.name: Schedule(job.interval, job.at_start) for job in runner._registered}
    finally:
        await database.close()


async def runs_since(db_uri: str, since: datetime) -> list[Run]:
    """The runs recorded (ended) that started at or after ``since``, oldest first."""
    database = connect(db_uri, app_name="bench")
    try:
        found = [run async for run in database.collection("job_runs").find(
            {"started_at": {"$gte": since}}, {"job": 1, "started_at": 1, "ended_at": 1, "duration_ms": 1})]
    finally:
        await database.close()
    runs = [Run(str(run["job"]), run["started_at"].timestamp(), run["ended_at"].timestamp(),
                int(run.get("duration_ms", 0))) for run in found if run.get("ended_at") is not None]
    return sorted(runs, key=lambda run: (run.started, run.job))


def unsettled(schedule: Mapping[str, Schedule], runs: Iterable[Run], leases: Mapping[str, float], started: float,
              now: float, held: Iterable[str] = (), share: float = SHARE) -> dict[str, str]:
    """The jobs not in their steady state yet, each with why; empty once every one is.

    ``runs``: those since ``started`` (the ACS's start, epoch seconds); ``leases``: each job's lease
    end (``job_leases`` ``until``, epoch seconds); ``held``: jobs whose lease the benchmark holds.
    A lease is taken until LEASE_SHARE of an interval ahead (and renewed so while its run lasts),
    so one whose take falls before the start is an earlier process's: its job does not run until
    the lease ends, which for an hourly job is after any benchmark (not waited for)."""
    last: dict[str, Run] = {}
    for each in runs:
        if each.job not in last or each.started >= last[each.job].started:
            last[each.job] = each
    skipped = set(held)
    pending: dict[str, str] = {}
    for name, job in sorted(schedule.items()):
        if name in skipped:
            continue
        run = last.get(name)
        until = leases.get(name, 0.0)
        taken_here = until - LEASE_SHARE * job.interval >= started - UNDER_WAY_SLACK
        departed = until > now and not taken_here
        if run is None:
            if taken_here:
                pending[name] = f"its first run under way ({now - started:.0f} s since the start)"
            elif departed and job.interval < HOURLY:
                pending[name] = f"an earlier process's lease, {until - now:.0f} s left"
            elif not departed and (job.at_start or (job.interval < HOURLY and now - started >= job.interval)):
                pending[name] = f"no run yet ({now - started:.0f} s since the start)"
            continue
        if job.interval >= HOURLY:
            continue  # its one run in the benchmark ended
        if now - run.ended > 2 * job.interval + UNDER_WAY_SLACK:
            pending[name] = f"a run under way (none ended for {now - run.ended:.0f} s)"
        elif run.ms / 1000 / job.interval >= share:
            pending[name] = f"last run {run.ms} ms, {run.ms / 1000 / job.interval:.1%} of {job.interval:g} s"
    return pending


async def lease_ends(db_uri: str) -> dict[str, float]:
    """Each job's lease end (epoch seconds), by job name."""
    database = connect(db_uri, app_name="bench")
    try:
        return {str(lease["_id"]): lease["until"].timestamp()
                async for lease in database.collection("job_leases").find({}, {"until": 1})
                if isinstance(lease.get("until"), datetime)}
    finally:
        await database.close()


async def wait_until_steady(db_uri: str, schedule: Mapping[str, Schedule], started: datetime, timeout: float,
                            held: Iterable[str] = (), share: float = SHARE) -> dict[str, Any]:
    """Polls ``job_runs`` until :func:`unsettled` is empty or ``timeout`` seconds have passed;
    prints progress; returns what it waited (seconds, steady or not, the jobs left, the runs seen)."""
    held = list(held)
    begun = time.monotonic()
    deadline = begun + timeout
    reported = 0.0
    pending: dict[str, str] = {}
    runs: list[Run] = []
    while True:
        runs = await runs_since(db_uri, started)
        leases = await lease_ends(db_uri)
        pending = unsettled(schedule, runs, leases, started.timestamp(), time.time(), held, share)
        waited = time.monotonic() - begun
        if not pending or time.monotonic() >= deadline:
            break
        if waited - reported >= REPORT_EVERY:
            reported = waited
            print(f"steady: {waited:.0f} s waited, load {common.load_average()}; not yet: "
                  + "; ".join(f"{name}: {why}" for name, why in pending.items()), flush=True)
        await asyncio.sleep(POLL)
    longest = [(run.job, run.ms) for run in sorted(runs, key=lambda run: run.ms, reverse=True)[:8]]
    outcome: dict[str, Any] = {
        "waited_s": round(time.monotonic() - begun, 1), "steady": not pending, "not_steady": pending,
        "runs_while_waiting": len(runs), "held": held, "longest_runs_while_waiting": [list(run) for run in longest]}
    print(f"steady: {'reached' if not pending else 'NOT reached'} after {outcome['waited_s']} s "
          f"({len(runs)} runs since the start; longest: "
          + ", ".join(f"{job} {ms:,} ms" for job, ms in longest) + ")"
          + ("; not steady: " + "; ".join(f"{name}: {why}" for name, why in pending.items()) if pending else ""),
          flush=True)
    return outcome


async def settle(db_uri: str, data_dir: Path, started: datetime, timeout: float,
                 held: Iterable[str] = ()) -> dict[str, Any]:
    """``--steady``: the jobs ``acs serve`` (started at ``started``, its data in ``data_dir``)
    registered, waited for until steady (:func:`wait_until_steady`)."""
    schedule = await job_schedule(db_uri, data_dir)
    return await wait_until_steady(db_uri, schedule, started, timeout, held)


async def window_record(db_uri: str, steady: Mapping[str, Any], loads: tuple[str, str], start: float, end: float,
                        spans: Mapping[str, list[tuple[float, float]]], target_ms: float) -> dict[str, Any]:
    """What :func:`render_window` shows of a sampling window (``start``-``end``, epoch seconds, with
    the load average at each end) sampled after :func:`settle`."""
    runs = await runs_overlapping(db_uri, start, end)
    return {"steady": steady, "load_start": loads[0], "load_end": loads[1],
            "start": datetime.fromtimestamp(start, UTC).strftime("%H:%M:%S"),
            "end": datetime.fromtimestamp(end, UTC).strftime("%H:%M:%S"),
            **window_summary(runs, spans, target_ms)}


async def runs_overlapping(db_uri: str, start: float, end: float) -> list[Run]:
    """The runs whose span met ``start``-``end`` (epoch seconds), as recorded when they ended."""
    since = datetime.fromtimestamp(start, UTC) - timedelta(hours=1)
    return [run for run in await runs_since(db_uri, since) if run.started <= end and run.ended >= start]


def overlapped_jobs(span: tuple[float, float], runs: Iterable[Run]) -> list[str]:
    """The jobs one of whose runs was under way while the request (start, seconds) was."""
    begin, end = span[0], span[0] + span[1]
    return sorted({run.job for run in runs if run.started <= end and run.ended >= begin})


def window_summary(runs: list[Run], spans: Mapping[str, list[tuple[float, float]]],
                   target_ms: float) -> dict[str, Any]:
    """The window's runs per job (count, p50 / max ms) and, per request kind, its requests over
    ``target_ms`` with the jobs whose runs they overlapped (how many of them met each)."""
    per_job: dict[str, dict[str, Any]] = {}
    for job in sorted({run.job for run in runs}):
        durations = [run.ms for run in runs if run.job == job]
        per_job[job] = {"runs": len(durations), "ms_p50": sorted(durations)[len(durations) // 2],
                        "ms_max": max(durations)}
    slow: dict[str, dict[str, Any]] = {}
    for kind, kind_spans in spans.items():
        over = [span for span in kind_spans if span[1] * 1000 >= target_ms]
        if not over:
            continue
        met = Counter(job for span in over for job in overlapped_jobs(span, runs))
        alone = sum(1 for span in over if not overlapped_jobs(span, runs))
        slow[kind] = {"over_target": len(over), "of": len(kind_spans), "no_job_run": alone,
                      "jobs_met": dict(met.most_common()),
                      "slowest_ms": round(max(span[1] for span in over) * 1000, 1)}
    return {"jobs": per_job, "slow_requests": slow}


def render_window(window: Mapping[str, Any]) -> str:
    """The steady wait, the window's job runs and the slow requests (``window``: the wait's
    outcome under "steady", the window's times and loads, and :func:`window_summary`), as markdown."""
    summary = window
    wait = window["steady"]
    lines = [f"Steady state: {'reached' if wait['steady'] else '**not reached**'} after {wait['waited_s']} s "
             f"of waiting (every job's last run under {SHARE:.0%} of its interval; held: "
             f"{', '.join(wait['held']) or 'none'})"
             + ("; not steady: " + "; ".join(f"{k}: {v}" for k, v in wait["not_steady"].items())
                if wait["not_steady"] else "") + ".",
             f"Sampling window {window['start']} - {window['end']} UTC, load {window['load_start']} -> "
             f"{window['load_end']}.", ""]
    rows = [[job, figures["runs"], figures["ms_p50"], figures["ms_max"]]
            for job, figures in summary["jobs"].items()]
    lines.append(common.table(["job run in the window", "runs", "p50 (ms)", "max (ms)"], rows) if rows
                 else "No job run overlapped the window.")
    slow = [[kind, f"{figures['over_target']} of {figures['of']}", figures["slowest_ms"], figures["no_job_run"],
             ", ".join(f"{job} {count}" for job, count in figures["jobs_met"].items())]
            for kind, figures in summary["slow_requests"].items()]
    if slow:
        lines += ["", common.table(["request over the target", "requests", "slowest (ms)", "beside no job run",
                                    "job runs they overlapped (requests)"], slow)]
    return "\n".join(lines)
