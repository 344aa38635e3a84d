"""A benchmark run on a kept ``--work-dir``: the database it names is this start's, and a reused
fleet is the one the benchmark wrote.

``acs serve`` appends its log to the kept work dir's file, so the first "local development" line was
an earlier run's, whose port another engineer's server held by then: the reused 200,000-device run
created its token and console user there, and its console login answered 401.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from bench import api_at_scale, console_at_scale
from bench.common import backend_from_log
from tests.support.mongo import MongoDocument, MongoServer

EARLIER = ("2026-12-05 09:21:25,366 INFO acs.serve [6637] ACS_MONGODB_URI is unset: using the local development "
           "ferretdb-postgresql at mongodb://127.0.0.1:27017/ (data in /tmp/w/acs-data/postgresql)\n")
LATER = ("2026-12-05 10:00:56,212 INFO acs.serve [516] ACS_MONGODB_URI is unset: using the local development "
         "ferretdb-postgresql at mongodb://127.0.0.1:40831/ (data in /tmp/w/acs-data/postgresql)\n")


def test_the_database_of_a_kept_work_dir_is_the_last_starts() -> None:
    assert backend_from_log(EARLIER + "... stopped\n" + LATER) == (
        "local ferretdb-postgresql", "mongodb://127.0.0.1:40831/acs")
    assert backend_from_log(EARLIER) == ("local ferretdb-postgresql", "mongodb://127.0.0.1:27017/acs")


async def test_a_reused_fleet_is_the_one_the_benchmark_wrote(
    mongo_server: MongoServer, mongo_db: AsyncDatabase[MongoDocument]
) -> None:
    uri = mongo_server.uri_for(mongo_db.name)
    assert await api_at_scale.reused_fleet(uri, 300) is None  # nothing written yet: the run writes it
    written = await api_at_scale.insert_devices(uri, 300, 60.0)
    reused = await api_at_scale.reused_fleet(uri, 300)
    assert reused is not None and reused["reused"]
    assert reused["_sample"] == written["_sample"] and reused["_incident"] == written["_incident"]
    assert await api_at_scale.reused_fleet(uri, 301) is None  # another size is another fleet


async def test_a_reused_console_fleet_is_the_one_the_benchmark_wrote_with_its_census(
    mongo_server: MongoServer, mongo_db: AsyncDatabase[MongoDocument]
) -> None:
    uri = mongo_server.uri_for(mongo_db.name)
    assert await console_at_scale.reused_fleet(uri, 300) is None  # nothing written yet: the run writes it
    await api_at_scale.insert_devices(uri, 300, 60.0)  # the API benchmark's fleet: no OLTs, no census
    assert await console_at_scale.reused_fleet(uri, 300) is None
    await mongo_db["devices"].delete_many({})
    await console_at_scale.insert_fleet(uri, 300, 60.0)
    reused = await console_at_scale.reused_fleet(uri, 300)
    assert reused is not None and reused["reused"] and reused["written"] == 300
    assert await console_at_scale.reused_fleet(uri, 301) is None  # another size is another fleet
