"""The console's fleet pages find their rows by top-level equality, served by an index (issue 16).

FerretDB 1.24 pushes down only a top-level equality; anything else is evaluated on what that part
matched (``tests/tasks/test_job_queries.py`` says more). Over a fleet of 300 devices, with PyMongo
command monitoring, every query the device list, its CSV, the bulk preview, the task queue, the
faults page and the audit page send is checked: an index leads with one of its equality fields and
its equality part matches a fraction of the fleet (that such a filter is pushed down to PostgreSQL
is shown by ``explain`` in ``tests/tasks/test_job_queries.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_api_app
from acs.config import Settings
from acs.console.web import CONSOLE
from acs.services import build_services
from schemas.api import Role
from tasks import search
from tasks.store.db import Database
from tests.console.conftest import PASSWORD, ConsoleHarness
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

FLEET = 300
NOW = datetime.now(UTC).replace(microsecond=0)
COLLECTIONS = ("devices", "tasks", "audit")


class Queries(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, MongoDocument]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "find" and command["find"] in COLLECTIONS:
            self.seen.append((command["find"], dict(command.get("filter") or {})))
        elif event.command_name == "aggregate" and command["aggregate"] in COLLECTIONS:
            stages = command.get("pipeline") or [{}]
            self.seen.append((command["aggregate"], dict(stages[0].get("$match") or {})))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def equality_part(query: MongoDocument) -> MongoDocument:
    return {key: value for key, value in query.items() if not key.startswith("$") and not isinstance(value, dict)}


def device(n: int) -> MongoDocument:
    device_id = f"00E0FC-HG8245H-Q{n:05d}"
    facts = {"serial_number": f"Q{n:05d}", "tags": [f"region:r{n % 5}"], "remote_ip": f"10.{n // 250}.{n % 250}.1"}
    return {
        "_id": device_id, "oui": "00E0FC", "product_class": "HG8245H", "software_version": f"V{n % 4}",
        "presence": "offline" if n % 30 == 0 else "online", "olt_id": f"OLT-{n // 64:02d}",
        "pon_port": f"0/1/{n % 8}", "health_definite": "critical" if n % 50 == 0 else "ok",
        "last_inform": NOW - timedelta(seconds=n), **facts, **search.search_fields(device_id, facts),
    }


@pytest.fixture
async def watched(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[ConsoleHarness, Queries, Any]]:
    queries = Queries()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True, maxPoolSize=10,
                                                               event_listeners=[queries])
    name = unique_db_name("consolequeries")
    settings = Settings(data_dir=tmp_path, connection_request_timeout=0.5, connection_request_attempts=1)
    services = build_services(settings, Database(client=client, db=client[name]), lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    await client[name].devices.insert_many([device(n) for n in range(FLEET)])
    tasks = [{"_id": f"T{n:05d}", "device_id": f"00E0FC-HG8245H-Q{n:05d}", "kind": "reboot" if n % 2 else "refresh",
              "status": ["queued", "done", "failed"][n % 3], "created_by": f"user:u{n % 7}",
              "created_at": NOW - timedelta(seconds=n), "finished_at": NOW, "params": {},
              "fault": {"code": 9002, "string": "Internal error", "detail": []}} for n in range(FLEET)]
    await client[name].tasks.insert_many(tasks)
    await client[name].audit.insert_many([{"_id": f"A{n:05d}", "at": NOW - timedelta(seconds=n),
                                           "token_name": f"user:u{n % 9}", "method": "POST",
                                           "route": f"/r{n % 11}", "summary": "s", "status": 200}
                                          for n in range(FLEET)])
    server = TestServer(create_api_app(services), host="127.0.0.1")
    await server.start_server()
    for role in Role:
        await server.app[CONSOLE].accounts.create(f"u-{role.value}", PASSWORD, role, "test")
    harness = ConsoleHarness(services, server)
    try:
        yield harness, queries, mongo_server
    finally:
        await harness.close()
        await server.close()
        await client.drop_database(name)
        await client.close()


PAGES = [
    "/?olt=OLT-03", "/?olt=OLT-03&pon=0/1/2", "/?health=critical", "/?online=no", "/?q=Q00042",
    "/?model=HG8245H&version=V2&sort=-last_inform", "/?tag=region:r1", "/devices.csv?olt=OLT-04",
    "/devices.csv?health=critical", "/bulk?olt=OLT-02", "/tasks", "/tasks?kind=reboot", "/tasks?who=user:u3",
    "/tasks?status=failed&device=00E0FC-HG8245H-Q00005", "/faults", "/audit?who=user:u4", "/audit?action=POST+/r3",
]


async def test_each_fleet_page_reads_by_indexed_equality(watched: Any) -> None:
    console, queries, _server = watched
    admin = await console.login("admin")
    db = console.services.database.db
    leading = {name: {spec["key"][0][0] for spec in (await db[name].index_information()).values()}
               for name in COLLECTIONS}
    checked: set[tuple[str, frozenset[str]]] = set()
    for path in PAGES:
        queries.seen.clear()
        async with admin.http.get(console.url(path), allow_redirects=False) as response:
            assert response.status in (200, 303), path
            await response.read()
        assert queries.seen, f"{path} read nothing"
        for collection, query in queries.seen:
            equal = equality_part(query)
            assert equal, f"{path}: {collection} {query} has no equality part (a scan of the collection)"
            if set(equal) == {"_id"}:
                continue  # a lookup by id
            assert leading[collection] & set(equal), f"{path}: {collection} {query}: no index leads with its fields"
            shape = (collection, frozenset(equal))
            if shape in checked:
                continue  # the same fields with other values (partitions of one listing)
            checked.add(shape)
            matched = await db[collection].count_documents(equal)
            assert matched <= FLEET // 2, f"{path}: {collection} {query} matches {matched} of {FLEET}"
