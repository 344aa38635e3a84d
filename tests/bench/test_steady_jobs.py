"""``bench/steady_jobs.py``: when the scheduled jobs count as in their steady state after a start."""

from __future__ import annotations

from bench.steady_jobs import Run, Schedule, overlapped_jobs, unsettled, window_summary
from tasks.scheduler import LEASE_SHARE

START = 1_000_000.0  # the ACS's start, epoch seconds
SCHEDULE = {
    "reap_sessions": Schedule(5.0, False),
    "fleet_census": Schedule(15.0, True),
    "configuration_drift": Schedule(3600.0, True),
    "prune_job_runs": Schedule(3600.0, False),
    "backfill_search": Schedule(600.0, True),
}


def run(job: str, started: float, ms: int) -> Run:
    return Run(job, START + started, START + started + ms / 1000, ms)


def taken(job: str, at: float) -> float:
    """The lease end of a take at ``at`` seconds after the start."""
    return START + at + LEASE_SHARE * SCHEDULE[job].interval


def test_the_catch_up_holds_the_wait_until_every_last_run_is_under_its_share() -> None:
    runs = [run("reap_sessions", 15, 40), run("fleet_census", 0, 9_000), run("configuration_drift", 0, 60_000)]
    leases = {"reap_sessions": taken("reap_sessions", 15), "fleet_census": taken("fleet_census", 0)}
    pending = unsettled(SCHEDULE, runs, leases, START, START + 20, held=["backfill_search"])
    assert set(pending) == {"fleet_census"}, pending  # 9 s of 15: its catch-up
    assert "60.0%" in pending["fleet_census"]
    runs += [run("reap_sessions", 60, 30), run("fleet_census", 45, 500)]
    assert unsettled(SCHEDULE, runs, leases, START, START + 61, held=["backfill_search"]) == {}


def test_a_run_under_way_is_waited_for() -> None:
    # the hourly drift check's start run has not ended: its lease was taken at the start
    leases = {"configuration_drift": taken("configuration_drift", 0)}
    pending = unsettled(SCHEDULE, [run("reap_sessions", 5, 40), run("fleet_census", 1, 300)], leases, START,
                        START + 12, held=["backfill_search"])
    assert set(pending) == {"configuration_drift"}, pending
    # a 15 s job that ended a short run at the start, none since: a long run is under way
    pending = unsettled(SCHEDULE, [run("reap_sessions", 59, 40), run("fleet_census", 1, 300),
                                   run("configuration_drift", 0, 9_000)], {}, START, START + 60,
                        held=["backfill_search"])
    assert set(pending) == {"fleet_census"} and "under way" in pending["fleet_census"], pending


def test_an_earlier_processs_lease_holds_short_jobs_not_hourly_ones() -> None:
    # a process stopped 100 s before the start still holds the drift check's lease (an hour) and the
    # census's (13.5 s: gone soon); the drift check will not run in the benchmark, the census will
    leases = {"configuration_drift": taken("configuration_drift", -100), "fleet_census": START + 3}
    pending = unsettled(SCHEDULE, [run("reap_sessions", 5, 40)], leases, START, START + 1, held=["backfill_search"])
    assert set(pending) == {"fleet_census"} and "earlier process" in pending["fleet_census"], pending
    # a job not ticking at start, an interval not yet passed: not waited for
    assert "prune_job_runs" not in pending and "reap_sessions" not in pending
    # backfill_search not held: its start run is waited for
    assert "backfill_search" in unsettled(SCHEDULE, [], {}, START, START + 1)


def test_slow_requests_are_set_against_the_runs_they_overlapped() -> None:
    runs = [run("detect_incidents", 10, 3_000), run("fleet_census", 20, 500)]
    spans = {"filter model": [(START + 11, 0.25), (START + 15, 0.05), (START + 30, 0.3)]}
    assert overlapped_jobs((START + 11, 0.25), runs) == ["detect_incidents"]
    summary = window_summary(runs, spans, 200.0)
    assert summary["jobs"]["detect_incidents"] == {"runs": 1, "ms_p50": 3000, "ms_max": 3000}
    slow = summary["slow_requests"]["filter model"]
    assert (slow["over_target"], slow["of"], slow["no_job_run"], slow["jobs_met"]) == (2, 3, 1, {"detect_incidents": 1})
