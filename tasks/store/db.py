"""The MongoDB connection shared by every repository, and index creation at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure
from pymongo.uri_parser import parse_uri

from tasks.records import Document as Document  # re-exported: the alias lives in tasks/records.py
from tasks.store.group_commit import COMMANDS_IN_FLIGHT, MAX_BATCH, GroupWriter

DEFAULT_DATABASE = "acs"


@dataclass(frozen=True)
class Database:
    """A client and the database the ACS uses (the URI's path, default ``acs``)."""

    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    _writers: dict[str, GroupWriter] = field(default_factory=dict, compare=False, repr=False)
    _write_slots: list[asyncio.Semaphore] = field(default_factory=list, compare=False, repr=False)

    def collection(self, name: str) -> AsyncCollection[Document]:
        return self.db[name]

    def writer(self, name: str) -> GroupWriter:
        """The process's one group-commit writer of a collection (``tasks/store/group_commit.py``)."""
        if name not in self._writers:
            if not self._write_slots:
                self._write_slots.append(asyncio.Semaphore(COMMANDS_IN_FLIGHT))
            self._writers[name] = GroupWriter(self.db[name], in_flight=self._write_slots[0])
        return self._writers[name]

    def group_commit_figures(self) -> dict[str, tuple[int, int]]:
        """(bulk commands, writes they carried) per collection, since the process started."""
        return {name: (writer.commands, writer.statements) for name, writer in self._writers.items()}

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except Exception:  # any driver error means "not reachable" for readiness
            return False
        return True

    async def close(self) -> None:
        await self.client.close()


# Connections to the database per process, and how long an operation waits for one (ms).
# FerretDB 1.24 serves every command from a pool of 50 PostgreSQL connections, and a findAndModify or
# update holds one of them while it waits for a second: with about 50 writes in flight, every
# connection is held by a waiter and FerretDB stops answering anything (even ping) for good.
# PyMongo's default pool of 100 let the ACS send that many (100 concurrent sessions do); a pool
# well below 50 per process cannot, and the wait-queue timeout turns a stuck database into a 503
# rather than a hang. ``acs serve`` passes its settings (ACS_MONGODB_POOL_SIZE,
# ACS_MONGODB_WAIT_TIMEOUT); a URI that sets maxPoolSize or waitQueueTimeoutMS keeps its own values.
POOL_SIZE = 10
WAIT_QUEUE_TIMEOUT_MS = 5_000


def connect(
    uri: str,
    *,
    server_selection_timeout_ms: int = 5000,
    app_name: str = "acs",
    pool_size: int = POOL_SIZE,
    wait_queue_timeout_ms: int | None = WAIT_QUEUE_TIMEOUT_MS,
) -> Database:
    """Open a client (lazily connecting) with UTC-aware datetimes and a bounded connection pool.

    ``pool_size`` bounds the commands in flight; ``wait_queue_timeout_ms`` bounds the wait for a
    free connection (``WaitQueueTimeoutError``, a ``ConnectionFailure``: the caller answers 503).
    """
    parsed = parse_uri(uri)
    database = parsed.get("database") or DEFAULT_DATABASE
    given = {option.lower() for option in parsed["options"]}
    pool: dict[str, Any] = {}
    if "maxpoolsize" not in given:
        pool["maxPoolSize"] = pool_size
    if "waitqueuetimeoutms" not in given:
        pool["waitQueueTimeoutMS"] = wait_queue_timeout_ms
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        appname=app_name,
        retryWrites=True,
        **pool,
    )
    return Database(client=client, db=client[database])


INDEX_ATTEMPTS = 5
# Server answers that mean "not now" rather than "wrong": primary stepping down, shutting down,
# FerretDB's SQLite backend busy. The caller answers 503 and the client retries.
TRANSIENT_CODES = frozenset({6, 7, 50, 89, 91, 189, 10107, 11600, 11602, 13435, 13436})
BUSY_MARKERS = ("SQLITE_BUSY", "database is locked")  # FerretDB reports these as InternalError (1)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be used right now (as opposed to a bad query)."""
    if isinstance(exc, ConnectionFailure) or getattr(exc, "timeout", False):
        return True  # unreachable, no free connection, or past its time limit (timeoutMS / maxTimeMS)
    if not isinstance(exc, OperationFailure):
        return False
    return exc.code in TRANSIENT_CODES or any(marker in str(exc) for marker in BUSY_MARKERS)


async def ensure_indexes(collection: AsyncCollection[Any], indexes: Sequence[IndexModel]) -> None:
    """Create what is missing; MongoDB treats an existing identical index as a no-op.

    One ``createIndexes`` command per index: FerretDB 1.24 drops the connection when a single
    command lists several indexes that already exist (every restart would hit it). Several ACS
    processes starting together also race here; a dropped attempt is retried a few times.
    """
    for index in indexes:
        for attempt in range(1, INDEX_ATTEMPTS + 1):
            try:
                await collection.create_indexes([index])
                break
            except (AutoReconnect, OperationFailure):
                if attempt == INDEX_ATTEMPTS:
                    raise
                await asyncio.sleep(0.1 * attempt)


async def bulk_update(collection: AsyncCollection[Document], writes: Sequence[UpdateOne | ReplaceOne[Document]]) -> int:
    """Unordered bulk updates in commands of at most MAX_BATCH statements each; how many documents
    they modified.

    FerretDB 1.24 holds one of its 50 PostgreSQL connections per statement of an ``update`` for the
    command's whole run: one command of 200 statements never finishes and the server stops
    answering even ``ping`` (``tests/tasks/test_database_pool.py``).
    """
    modified = 0
    for start in range(0, len(writes), MAX_BATCH):
        result = await collection.bulk_write(list(writes[start:start + MAX_BATCH]), ordered=False)
        modified += result.modified_count
    return modified


async def flush_updates(collection: AsyncCollection[Document], pending: list[UpdateOne]) -> int:
    """Write the updates gathered by a streamed pass (``bulk_update``) and empty the list; how many
    documents they modified."""
    if not pending:
        return 0
    modified = await bulk_update(collection, pending)
    pending.clear()
    return modified
