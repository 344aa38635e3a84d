"""Database commands per CWMP session: the figure that bounds sessions per second (docs/performance.md).

Each command is a round trip and, on FerretDB, a PostgreSQL transaction; a change that adds one to
every periodic session costs the whole fleet. The budgets below are what the session path needs
today; the test prints the counts so a regression shows which command came back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import build_services
from schemas.tasks import GetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

IGNORED = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "getMore", "killCursors"})


class CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in IGNORED:
            collection = event.command.get(event.command_name)
            self.counts[f"{event.command_name} {collection}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> Counter[str]:
        taken, self.counts = self.counts, Counter()
        return taken


class Harness:
    def __init__(self, counter: CommandCounter, server: TestServer, services: object) -> None:
        self.counter = counter
        self.server = server
        self.services = services

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def counted(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[Harness]:
    counter = CommandCounter()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
        mongo_server.uri, tz_aware=True, event_listeners=[counter]
    )
    name = unique_db_name("budget")
    settings = Settings(data_dir=tmp_path)
    services = build_services(settings, Database(client=client, db=client[name]), lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield Harness(counter, server, services)
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


def report(label: str, counts: Counter[str]) -> int:
    total = sum(counts.values())
    detail = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
    print(f"\n{label}: {total} commands ({detail})")
    return total


async def test_commands_per_session_stay_within_budget(counted: Harness) -> None:
    cpe = ScriptedCpe(counted.url, serial="BUDGET01")
    counted.counter.take()

    # BOOTSTRAP: Inform, empty POST, the provisioning SetParameterValues and its answer.
    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["SetParameterValues"]
    bootstrap = report("BOOTSTRAP session", counted.counter.take())

    # A periodic session with nothing to do: Inform, empty POST, 204.
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204 and exchange.received == []
    periodic = report("periodic session, nothing queued", counted.counter.take())

    # A periodic session carrying one queued read (a health poll riding on the Inform).
    services = counted.services
    request = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    await services.queue.create(cpe.device_id, request, "test")  # type: ignore[attr-defined]
    counted.counter.take()
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["GetParameterValues"]
    with_read = report("periodic session with one read", counted.counter.take())

    # The same read for a CPE that opens a new connection per message: the session record and the
    # sent task are read back from the database (any worker or host may get the message).
    await services.queue.create(cpe.device_id, request, "test")  # type: ignore[attr-defined]
    counted.counter.take()
    exchange = await cpe.run_session(["2 PERIODIC"], new_connection_each_message=True)
    assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["GetParameterValues"]
    reconnecting = report("the same, a new connection per message", counted.counter.take())

    assert periodic <= 9, periodic
    assert bootstrap <= 18, bootstrap
    assert with_read <= 14, with_read
    # The third message reads the session record and the sent task back; the second reads it anyway
    # (it carries the InformResponse's cookie, which names no saved sequence).
    assert reconnecting == with_read + 2, "a session read and a task read for the answer"
