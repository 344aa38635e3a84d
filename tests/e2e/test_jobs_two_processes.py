"""Two `acs serve` processes on one database: each scheduled job runs once per interval, not twice;
when the process running a job is killed, the other takes the job over."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime

from pymongo import AsyncMongoClient

from tests.conftest import AcsServeFactory
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import wait_until

Client = AsyncMongoClient[MongoDocument]
INTERVALS = {"detect_offline": 2.0, "poll_health": 2.0, "detect_incidents": 3.0}
ENV = {"ACS_OFFLINE_CHECK_INTERVAL": "2", "ACS_HEALTH_CHECK_INTERVAL": "2", "ACS_INCIDENT_CHECK_INTERVAL": "3"}


async def test_each_job_runs_once_per_interval_across_two_processes(
    acs_serve: AcsServeFactory, mongo_client: Client
) -> None:
    name = unique_db_name("jobs2")
    first = await acs_serve(database=name, env=ENV)
    second = await acs_serve(database=name, env=ENV)
    runs = mongo_client[name].job_runs

    async def enough() -> bool:
        return await runs.count_documents({"job": "detect_incidents"}) >= 6

    await wait_until(enough, timeout=60, interval=0.5, message=first.describe("jobs did not run"))
    started: dict[str, list[datetime]] = defaultdict(list)
    async for run in runs.find({"job": {"$in": list(INTERVALS)}}).sort("started_at", 1):
        started[run["job"]].append(run["started_at"])
        assert run["outcome"] == "ok", run
    for job, interval in INTERVALS.items():
        times = started[job]
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
        # The lease lasts 0.9 interval: a takeover after a late tick may come that soon, never sooner.
        assert min(gaps) >= 0.85 * interval, (job, gaps)
        span = (times[-1] - times[0]).total_seconds()
        assert len(times) <= span / interval + 2, (job, len(times), span)

    # Kill (SIGKILL: no clean shutdown) the process that ran the last detection; the other must
    # take the job over within one lease (0.9 interval) plus one tick of its own.
    last = await runs.find_one({"job": "detect_incidents"}, sort=[("started_at", -1)])
    assert last is not None
    holder, survivor = (first, second) if f":{first.pid}:" in last["holder"] else (second, first)
    assert f":{holder.pid}:" in last["holder"], last["holder"]
    await holder.kill()
    interval = INTERVALS["detect_incidents"]

    async def taken_over() -> MongoDocument | None:
        return await runs.find_one({"job": "detect_incidents", "started_at": {"$gt": last["started_at"]},
                                    "holder": {"$regex": f":{survivor.pid}:"}})

    run = await wait_until(taken_over, timeout=30, interval=0.2, message=survivor.describe("job not taken over"))
    gap = (run["started_at"] - last["started_at"]).total_seconds()
    assert gap <= 0.9 * interval + interval + 1.5, gap
    assert await runs.count_documents({"job": "detect_incidents", "started_at": {"$gt": last["started_at"]},
                                       "holder": {"$regex": f":{holder.pid}:"}}) == 0
