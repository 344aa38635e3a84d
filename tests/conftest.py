"""Fixtures shared by the whole test suite.

Database (one server per test run, see tests/support/mongo.py):
    mongo_server  (session)  MongoServer: .uri ("mongodb://127.0.0.1:PORT/"), .kind, .uri_for(db_name)
    mongo_client  (session)  AsyncMongoClient connected to it
    mongo_db      (function) AsyncDatabase with a name unique to the test, dropped afterwards

Processes (see tests/support/processes.py):
    acs_serve     (function) async factory: `proc = await acs_serve(env={...}, args=[...])` starts
                             `acs serve` on its own database and free ports, waits for /healthz,
                             and at teardown stops it with SIGTERM and asserts exit code 0.

Set ACS_TEST_MONGODB_URI to run against an existing MongoDB instead of starting one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.mongo import MongoDocument, MongoServer, mongo_server_for_tests, unique_db_name
from tests.support.processes import AcsProcess, start_serve

AcsServeFactory = Callable[..., Awaitable[AcsProcess]]


LONG_TEST_TIMEOUT = 400


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long end-to-end tests (a timeout of LONG_TEST_TIMEOUT s or more) first.

    The suite runs on two xdist workers (the README's test command): a ten-minute test started last
    would run alone at the end while the other worker idles. (An ``xdist_group`` mark to keep the
    long tests on one worker has no effect with pytest 9 and pytest-xdist 3.8: the worker's nodeid
    suffix is not applied, so none is set here.)
    """

    def allowed(item: pytest.Item) -> float:
        marker = item.get_closest_marker("timeout")
        return float(marker.args[0]) if marker is not None and marker.args else 0.0

    items.sort(key=lambda item: -allowed(item) if allowed(item) >= LONG_TEST_TIMEOUT else 0.0)


@pytest.fixture(scope="session")
async def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MongoServer]:
    async with mongo_server_for_tests(tmp_path_factory.mktemp("mongo")) as server:
        yield server


@pytest.fixture(scope="session")
async def mongo_client(mongo_server: MongoServer) -> AsyncIterator[AsyncMongoClient[MongoDocument]]:
    # Bounded like the ACS's own pool (tasks/store/db.py): FerretDB 1.24 wedges at about 50 writers in flight.
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True, maxPoolSize=10)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def mongo_db(
    mongo_client: AsyncMongoClient[MongoDocument], request: pytest.FixtureRequest
) -> AsyncIterator[AsyncDatabase[MongoDocument]]:
    name = unique_db_name(request.node.name)
    try:
        yield mongo_client[name]
    finally:
        await mongo_client.drop_database(name)


@pytest.fixture
async def acs_serve(
    mongo_server: MongoServer,
    mongo_client: AsyncMongoClient[MongoDocument],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[AcsServeFactory]:
    started: list[AcsProcess] = []
    databases: list[str] = []

    async def start(
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        database: str | None = None,
        data_dir: Path | None = None,
        ready_timeout: float = 30.0,
    ) -> AcsProcess:
        if database is None:
            database = unique_db_name(request.node.name)
            databases.append(database)  # ours to drop; a database the test named is the test's
        proc = await start_serve(
            mongodb_uri=mongo_server.uri_for(database),
            data_dir=data_dir or tmp_path / f"acs-{len(started)}",
            args=args,
            env=env,
            ready_timeout=ready_timeout,
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        try:
            for proc in started:
                if proc.running():  # a test may have stopped it itself, with its own expectations
                    await proc.stop()
        finally:
            for proc in started:
                await proc.kill()
            for name in databases:
                await mongo_client.drop_database(name)
