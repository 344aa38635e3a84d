"""A periodic Inform that repeats the device's previous values writes no parameter cache.

On FerretDB 1.24 the cache write is two PostgreSQL transactions (docs/performance.md, "PostgreSQL
transactions per session, command by command"): a fleet informing every few minutes repeats the
same values nearly every time. The device write of each Inform keeps a digest of its values and of
the hour; the cache is written when the digest differs (a value changed, a new hour, a BOOTSTRAP).
Real HTTP, the real database, the service's clock moved by the test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

URL_PARAMETER = "InternetGatewayDevice.ManagementServer.ConnectionRequestURL"


class CacheWrites(monitoring.CommandListener):
    """Statements sent to the ``parameters`` collection."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == "parameters" and event.command_name != "find":
            self.counts[event.command_name] += len(event.command.get("updates") or [None])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> int:
        taken, self.counts = sum(self.counts.values()), Counter()
        return taken


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 10, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def acs(
    mongo_server: MongoServer, tmp_path: Path
) -> AsyncIterator[tuple[str, Services, CacheWrites, Clock]]:
    writes, clock = CacheWrites(), Clock()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
        mongo_server.uri, tz_aware=True, event_listeners=[writes]
    )
    name = unique_db_name("inform_values")
    services = build_services(Settings(data_dir=tmp_path), Database(client=client, db=client[name]), clock)
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/")), services, writes, clock
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


async def cached_url(services: Services, device_id: str) -> str | None:
    cached = await services.repositories.parameters.get(device_id, URL_PARAMETER)
    return None if URL_PARAMETER not in cached else str(cached[URL_PARAMETER].value)


async def test_an_inform_repeating_its_values_writes_no_cache_until_a_value_or_the_hour_changes(
    acs: tuple[str, Services, CacheWrites, Clock],
) -> None:
    url, services, writes, clock = acs
    cpe = ScriptedCpe(url, serial="REPEAT01")
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    assert await cached_url(services, cpe.device_id) == "http://127.0.0.1:9/cr"
    clock.now += timedelta(minutes=5)
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204  # a new ParameterKey since
    writes.take()

    clock.now += timedelta(minutes=5)
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    assert writes.take() == 0, "the same values in the same hour: no cache write"

    cpe.params[URL_PARAMETER] = ("http://127.0.0.1:10/cr", "xsd:string", False)
    clock.now += timedelta(minutes=5)
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    assert writes.take() == 1
    assert await cached_url(services, cpe.device_id) == "http://127.0.0.1:10/cr"

    clock.now += timedelta(minutes=5)
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    assert writes.take() == 0

    clock.now += timedelta(hours=1)  # a new hour: written again (bounds a write lost to a crash)
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    assert writes.take() == 1

    clock.now += timedelta(minutes=1)
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert writes.take() >= 1, "a BOOTSTRAP replaces the cached tree whatever its values"
