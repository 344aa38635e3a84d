"""Every database command of a CWMP session names the shard key of its collection (docs/scaling.md).

On a sharded cluster a command that names its collection's shard key goes to one shard; one that
does not goes to every shard, and the session path would then cost more with every shard added.
Sessions run over real HTTP against the CWMP app; PyMongo's command monitoring sees each command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import build_services
from schemas.tasks import GetParameterValuesTask, RebootTask
from tasks.store import shards
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

IGNORED = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "getMore", "killCursors"})


@dataclass
class Seen:
    command: str
    collection: str
    filters: list[MongoDocument]  # each statement's filter; for an insert, the documents


@dataclass
class FilterLog(monitoring.CommandListener):
    seen: list[Seen] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name, command = event.command_name, event.command
        if name in IGNORED:
            return
        statements: list[Any]
        if name in ("find", "count", "distinct"):
            statements = [command.get("filter", command.get("query")) or {}]
        elif name == "findAndModify":
            statements = [command.get("query") or {}]
        elif name == "update":
            statements = [update.get("q") or {} for update in command.get("updates", [])]
        elif name == "delete":
            statements = [delete.get("q") or {} for delete in command.get("deletes", [])]
        elif name == "insert":
            statements = list(command.get("documents", []))
        elif name == "aggregate":
            statements = [stage["$match"] for stage in command.get("pipeline", [])[:1] if "$match" in stage] or [{}]
        else:
            statements = [{}]
        self.seen.append(Seen(name, str(command.get(name)), statements))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def logged(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[FilterLog, Any, str]]:
    log = FilterLog()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True, event_listeners=[log])
    name = unique_db_name("shardkeys")
    services = build_services(
        Settings(data_dir=tmp_path), Database(client=client, db=client[name]), lambda: datetime.now(UTC)
    )
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield log, services, str(server.make_url("/"))
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


def untargeted(seen: list[Seen], device_id: str) -> list[str]:
    """Commands whose filter does not name the shard key (with this device's id, where device-keyed)."""
    wrong: list[str] = []
    for one in seen:
        key = shards.shard_key(one.collection)
        # The group-commit writer's merged delete (``coalesced``): each branch of its ``$or`` is one write.
        statements = [
            branch
            for statement in one.filters
            for branch in (statement["$or"] if set(statement) == {"$or"} and one.command == "delete" else [statement])
        ]
        for statement in statements:
            if one.collection in shards.DEVICE_KEYED:
                named = statement.get(shards.DEVICE_KEYED[one.collection]) == device_id
            elif key:
                named = "_id" in statement and not isinstance(statement["_id"], dict)
            else:
                named = True  # an unsharded collection: one shard anyway
            if not named:
                wrong.append(f"{one.command} {one.collection} {statement}")
    return wrong


async def test_every_session_command_names_its_shard_key(logged: tuple[FilterLog, Any, str]) -> None:
    log, services, url = logged
    cpe = ScriptedCpe(url, serial="SHARD01")
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204  # with provisioning
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    read = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    await services.queue.create(cpe.device_id, read, "test")
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    await services.queue.create(cpe.device_id, read, "test")
    assert (await cpe.run_session(["2 PERIODIC"], new_connection_each_message=True)).ended_with == 204
    await services.queue.create(cpe.device_id, RebootTask(kind="reboot"), "test")
    log.seen.clear()  # the operator's writes above are not the session path
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert [message.kind for message in exchange.received] == ["Reboot"]
    # Back with another software version: an Inform repeating its values would write no cache.
    cpe.params[cpe.root + "DeviceInfo.SoftwareVersion"] = ("V1.1", "xsd:string", False)
    assert (await cpe.run_session(["1 BOOT", "M Reboot"])).ended_with == 204  # the proof settles it

    collections = {one.collection for one in log.seen}
    assert {"devices", "parameters", "session_locks", "tasks", "sessions"} <= collections, collections
    assert untargeted(log.seen, cpe.device_id) == []


def test_every_collection_has_a_shard_decision() -> None:
    """A new collection must be placed (device-keyed, hashed id, or unsharded) before it ships."""
    import re

    root = Path(__file__).resolve().parents[2]
    named = set()
    for path in [*root.glob("tasks/store/*.py"), *root.glob("acs/*.py")]:
        named |= set(re.findall(r'collection\("([a-z_]+)"\)', path.read_text()))
    placed = set(shards.DEVICE_KEYED) | set(shards.ID_HASHED) | set(shards.UNSHARDED)
    assert named - placed == set(), named - placed
