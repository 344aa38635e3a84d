"""Two `acs serve` processes on one database: each scheduled job runs once per interval, not twice."""

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
    await acs_serve(database=name, env=ENV)
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
