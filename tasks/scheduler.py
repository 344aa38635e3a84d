"""Scheduled jobs: APScheduler's asyncio scheduler, each run guarded by a MongoDB lease.

Every ACS process schedules every job; at each tick only the process that takes the job's
lease runs it, so a job runs once per interval however many processes or hosts there are.
The lease lasts a little under one interval: a later tick of the same holder renews it, and if
the holder dies another process takes over at the next tick after expiry. A run that outlasts
its lease keeps it by renewing it while it runs (a heartbeat), so a slow run is never joined by
a second one elsewhere; a holder that dies mid-run stops renewing. Each run is recorded.

Jobs are phased: each job's ticks are offset by its place in the registration order (a golden-ratio
sequence over ``PHASE_SPREAD`` seconds, the greatest common divisor of the default intervals: 5, 10,
15, 30, 60 s), so no two jobs tick at the same moment. Unphased, every job whose interval divides a
minute ticked at once each minute: every detection job read the database together, and the periodic
sessions queued behind them made the whole p99 of a 5,000-device steady state (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from bson import ObjectId

from tasks.stopping import cancel_and_wait
from tasks.store.jobs import JobRepository

log = logging.getLogger("acs.scheduler")
JobFunction = Callable[[], Awaitable[dict[str, Any]]]
LEASE_SHARE = 0.9  # of the interval: how long a tick's lease lasts
OVERRUN_INTERVALS = 10  # a run this many intervals long (at least OVERRUN_MIN_SECONDS) is logged
OVERRUN_MIN_SECONDS = 30.0
# Every database operation of a run shares one deadline (PyMongo's timeoutMS, sent as maxTimeMS and
# bounding each socket read): this many intervals, at least RUN_LIMIT_MIN_SECONDS. A command that
# never returns (a FerretDB connection wedged under many writers) fails the run, which is recorded,
# and the next tick runs the job again, instead of holding it for ever.
RUN_LIMIT_INTERVALS = 30
RUN_LIMIT_MIN_SECONDS = 60.0
GOLDEN = (5**0.5 - 1) / 2  # successive multiples mod 1 are spread evenly over [0, 1)
PHASE_SPREAD = 5.0  # seconds


def phase(place: int, interval: float) -> float:
    """How much earlier than one interval after the start the job registered ``place``-th first
    ticks (then every interval from there): spread over ``PHASE_SPREAD`` (or the interval, if
    shorter), evenly however many jobs there are."""
    return min(interval, PHASE_SPREAD) * ((place * GOLDEN) % 1)


@dataclass(frozen=True)
class Job:
    name: str
    interval: float  # seconds
    run: JobFunction
    at_start: bool = False  # first tick as the scheduler starts, not one interval later


def process_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{ObjectId()}"


class JobRunner:
    def __init__(
        self,
        jobs: JobRepository,
        clock: Callable[[], datetime],
        holder: str | None = None,
        overrun_after: float | None = None,
        run_limit: float | None = None,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.holder = holder or process_identity()
        # A run longer than this (default: OVERRUN_INTERVALS intervals, at least OVERRUN_MIN_SECONDS)
        # is logged with where it waits, then again each time its length doubles.
        self.overrun_after = overrun_after
        self.run_limit = run_limit  # default: RUN_LIMIT_INTERVALS intervals, at least RUN_LIMIT_MIN_SECONDS
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._registered: list[Job] = []
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # Called once the runs have ended at :meth:`stop` (what the jobs hold open: an HTTP client).
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    def add(self, job: Job) -> None:
        first = datetime.now(UTC)
        if not job.at_start:
            first += timedelta(seconds=job.interval - phase(len(self._registered), job.interval))
        self._registered.append(job)
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=job.interval,
            args=[job],
            id=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(job.interval)),
            next_run_time=first,  # then every interval from it
        )

    def start(self) -> None:
        self._scheduler.start()

    def job(self, name: str) -> Job:
        """The registered job of this name."""
        found = [job for job in self._registered if job.name == name]
        if not found:
            raise KeyError(f"no job {name!r} registered")
        return found[0]

    def next_ticks(self) -> dict[str, datetime]:
        """Each registered job's next tick."""
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def shutdown(self) -> None:
        """No more ticks; runs under way go on (see :meth:`stop`)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def stop(self, grace: float) -> None:
        """No more ticks; runs under way get ``grace`` seconds, then are cancelled.

        A cancelled run ends quietly (one log line) instead of reaching APScheduler as an
        exception, which it would log as an ERROR at every stop. Its lease simply expires.
        """
        self._stopping = True
        self.shutdown()
        running = set(self._running)
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            # Bounded too, and cancelled again while running: a cancel can be lost inside the driver.
            await asyncio.gather(*(cancel_and_wait(task, f"a scheduled job's run ({await_chain(task)})",
                                                   timeout=grace) for task in late))
        for close in self.on_stop:
            await close()

    async def tick(self, job: Job) -> bool:
        """Run ``job`` if this process holds its lease; True when it ran."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            return await self._tick(job)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            log.info("scheduled job %s interrupted: this process is stopping", job.name)
            return False
        finally:
            if task is not None:
                self._running.discard(task)

    async def _tick(self, job: Job) -> bool:
        if not await self._take(job):
            return False
        now = self.clock()
        started = time.perf_counter()
        run: dict[str, Any] = {"job": job.name, "holder": self.holder, "started_at": now}
        heartbeat = asyncio.create_task(self._heartbeat(job, asyncio.current_task(), time.monotonic()))
        limit = self.run_limit or max(RUN_LIMIT_MIN_SECONDS, RUN_LIMIT_INTERVALS * job.interval)
        try:
            with pymongo.timeout(limit):
                run["counts"] = await job.run()
            run["outcome"] = "ok"
        except Exception as exc:  # a failed run is recorded, and the next tick tries again
            log.exception("scheduled job %s failed", job.name)
            run["outcome"] = "error"
            run["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            # Cancelled until it ends, not once: on Python 3.11 a cancel that meets the end of an
            # ``asyncio.wait_for`` inside PyMongo (its pool checkout under contention) is lost, and a
            # heartbeat that missed it renewed the lease for ever while this run waited for it here:
            # the job never ran again (the outage e2e, under load). A cancel of this run (a process
            # stopping) still ends it.
            await cancel_and_wait(heartbeat, f"the heartbeat of {job.name}")
        run["ended_at"] = self.clock()
        run["duration_ms"] = int((time.perf_counter() - started) * 1000)
        await self.jobs.record_run(run)
        return True

    async def _take(self, job: Job) -> bool:
        """Take or renew the job's lease, until a little under one interval from now."""
        now = self.clock()
        # Under one interval, so the holder's next tick always finds its own lease.
        until = now + timedelta(seconds=job.interval * LEASE_SHARE)
        return await self.jobs.take_lease(job.name, self.holder, until, now)

    async def _heartbeat(self, job: Job, run: asyncio.Task[Any] | None, started: float) -> None:
        """While a run lasts, renew its lease every third of the lease: nobody else starts the job.
        A run that lasts far beyond its interval is logged with the await chain it is stuck in."""
        overrun = self.overrun_after or max(OVERRUN_MIN_SECONDS, OVERRUN_INTERVALS * job.interval)
        while True:
            await asyncio.sleep(min(job.interval * LEASE_SHARE / 3, overrun / 4))
            lasted = time.monotonic() - started
            if lasted >= overrun:
                where = await_chain(run) if run is not None else "?"
                log.warning("scheduled job %s still running after %.0f s (interval %g s), waiting in %s",
                            job.name, lasted, job.interval, where)
                overrun *= 2
            try:
                if not await self._take(job):
                    log.error("scheduled job %s lost its lease while running", job.name)
                    return
            except Exception:  # the database is away: the run itself will fail or finish; keep trying
                log.warning("scheduled job %s: lease renewal failed", job.name, exc_info=True)

    async def run_all_once(self) -> None:
        """Burst mode (tests, ``acs jobs run``): tick every registered job now."""
        for job in self._registered:
            await self.tick(job)


def await_chain(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: each coroutine of its await chain, outermost first."""
    parts: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(parts) < 40:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            parts.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " > ".join(parts) or type(task.get_coro()).__name__
