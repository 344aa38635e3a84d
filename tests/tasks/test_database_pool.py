"""The ACS's database client cannot wedge FerretDB 1.24, and streamed reads close their cursors.

FerretDB 1.24 serves every command from 50 PostgreSQL connections; a findAndModify holds one while
it waits for a second, and an open cursor holds one until it is exhausted or killed. With PyMongo's
default pool (100 connections) 100 concurrent writes took all 50 and FerretDB stopped answering,
even ``ping`` — the hang of the bad-firmware and churn e2e tests once the incident census landed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
from pymongo import AsyncMongoClient

from acs import localpg
from acs.localdb import LocalDatabaseError, LocalMongo, find_server_binary
from tasks.store.db import POOL_SIZE, Database, connect
from tasks.store.devices import DeviceRepository
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands, database_temp_dir, unique_db_name

WRITERS = 120  # concurrent findAndModify: over twice FerretDB's PostgreSQL pool
try:
    ON_FERRETDB_POSTGRESQL = find_server_binary().kind == "ferretdb" and localpg.find_pg_bin_dir() is not None
except LocalDatabaseError:  # pragma: no cover - a machine without scripts/setup run
    ON_FERRETDB_POSTGRESQL = False


def test_connect_bounds_the_pool_below_ferretdbs_and_times_out_waiters() -> None:
    database = connect("mongodb://127.0.0.1:1/acs")
    pool = database.client.options.pool_options
    assert pool.max_pool_size == POOL_SIZE < 50
    assert pool.wait_queue_timeout is not None and pool.wait_queue_timeout > 0


def test_a_uri_that_sets_the_pool_keeps_its_values() -> None:
    database = connect("mongodb://127.0.0.1:1/acs?maxPoolSize=7&waitQueueTimeoutMS=1500")
    pool = database.client.options.pool_options
    assert (pool.max_pool_size, pool.wait_queue_timeout) == (7, 1.5)


@pytest.fixture
async def private_ferretdb() -> AsyncIterator[str]:
    """A FerretDB over PostgreSQL of this test's own: a wedged one must not take the suite's with it."""
    if not ON_FERRETDB_POSTGRESQL:
        pytest.skip("the local database is not FerretDB over PostgreSQL")
    with database_temp_dir("acs-test-pool-") as path:
        server = await LocalMongo.start(path)
        try:
            yield server.uri + "acs"
        finally:
            await server.stop()


@pytest.mark.timeout(180)
async def test_writes_in_flight_beyond_ferretdbs_pool_complete_and_it_still_answers(private_ferretdb: str) -> None:
    database = connect(private_ferretdb)
    devices = database.collection("devices")
    try:
        await devices.insert_many([{"_id": f"d{i}", "n": 0} for i in range(WRITERS)])

        async def write(i: int) -> None:
            for _ in range(5):
                await devices.find_one_and_update({"_id": f"d{i}"}, {"$inc": {"n": 1}})

        # Without the bounded pool every writer gets a connection and FerretDB never answers again.
        await asyncio.wait_for(asyncio.gather(*(write(i) for i in range(WRITERS))), timeout=90)
        assert await database.ping()
        assert await devices.count_documents({"n": 5}) == WRITERS
    finally:
        await database.close()


async def test_a_scan_stopped_early_kills_its_cursor_at_once(mongo_server: MongoServer) -> None:
    listener = StartedCommands()
    name = unique_db_name("scan_close")
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, event_listeners=[listener])
    try:
        devices = DeviceRepository(Database(client, client[name]))
        await client[name].devices.insert_many([{"_id": f"d{i:03}"} for i in range(60)])
        async with aclosing(devices.scan({}, None, 5)) as fleet:
            async for _device in fleet:
                break
        assert "killCursors" in listener.names
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.mark.timeout(180)
async def test_a_jobs_bulk_update_of_many_devices_leaves_the_database_answering(private_ferretdb: str) -> None:
    """FerretDB 1.24 holds a PostgreSQL connection per statement of an ``update`` for the whole
    command: the health poll's bookkeeping for 200 devices sent as one command never finished and
    the server stopped answering ``ping`` (the 2,000-device outage test hung on it)."""
    database = connect(private_ferretdb)
    devices = DeviceRepository(database)
    try:
        await database.collection("devices").insert_many([{"_id": f"d{i:03}"} for i in range(200)])
        changes: list[tuple[str, dict[str, object]]] = [(f"d{i:03}", {"health_polled": i}) for i in range(200)]
        await asyncio.wait_for(devices.set_fields_many(changes), timeout=60)
        assert await asyncio.wait_for(database.ping(), timeout=10)
        assert await database.collection("devices").count_documents({"health_polled": {"$gte": 0}}) == 200
    finally:
        await database.close()
