"""A database that stops answering gets the CPE a 503 within the time limit, not a hung request.

The database sits behind a TCP relay that can freeze (accept bytes, forward nothing): what a
FerretDB 1.24 deadlocked by too many concurrent writers looks like to the ACS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from tasks.store.db import connect
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoServer, unique_db_name


class FreezableRelay:
    """127.0.0.1:port -> the database; ``frozen`` stops forwarding in both directions."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if self.frozen.is_set():
                    await asyncio.Event().wait()  # swallowed: the database never answers
                sink.write(data)
                await sink.drain()

        try:
            await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            upstream_writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def relayed(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[str, FreezableRelay, Services]]:
    where = urlsplit(mongo_server.uri)
    relay = FreezableRelay((where.hostname or "127.0.0.1", where.port or 27017))
    port = await relay.start()
    name = unique_db_name("stuck")
    database = connect(f"mongodb://127.0.0.1:{port}/{name}", pool_size=4, wait_queue_timeout_ms=1000)
    settings = Settings(data_dir=tmp_path, cwmp_db_timeout=1.0, cwmp_max_requests=4)
    services = build_services(settings, database, lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/")), relay, services
    finally:
        await server.close()
        relay.frozen.clear()
        await relay.close()
        await database.close()


# Without a time limit these requests wait for the database forever (the test's timeout fails it).
@pytest.mark.timeout(60)
async def test_a_stuck_database_answers_503_within_the_time_limit(
    relayed: tuple[str, FreezableRelay, Services],
) -> None:
    url, relay, services = relayed
    assert (await ScriptedCpe(url, serial="STUCK001").run_session(["0 BOOTSTRAP"])).ended_with == 204

    relay.frozen.set()
    exchanges = await asyncio.gather(
        *(ScriptedCpe(url, serial=f"STUCK1{n:02}").run_session(["2 PERIODIC"]) for n in range(8))
    )
    assert [exchange.statuses for exchange in exchanges] == [[503]] * 8
    # Four waited for the database up to the time limit; the others were refused at once.
    assert services.cwmp.metrics.rejected.value(reason="busy") == 4
    assert services.cwmp.metrics.rejected.value(reason="database_unavailable") == 4
