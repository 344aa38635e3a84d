"""The MongoDB connection shared by every repository, and index creation at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure
from pymongo.uri_parser import parse_uri

Document = dict[str, Any]
DEFAULT_DATABASE = "acs"


@dataclass(frozen=True)
class Database:
    """A client and the database the ACS uses (the URI's path, default ``acs``)."""

    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]

    def collection(self, name: str) -> AsyncCollection[Document]:
        return self.db[name]

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except Exception:  # any driver error means "not reachable" for readiness
            return False
        return True

    async def close(self) -> None:
        await self.client.close()


def connect(
    uri: str,
    *,
    server_selection_timeout_ms: int = 5000,
    app_name: str = "acs",
    pool_size: int = 100,
    wait_queue_timeout_ms: int | None = None,
) -> Database:
    """Open a client (lazily connecting) with UTC-aware datetimes.

    ``pool_size`` bounds the commands in flight; ``wait_queue_timeout_ms`` bounds the wait for a
    free connection (``WaitQueueTimeoutError``, a ``ConnectionFailure``: the caller answers 503).
    """
    database = parse_uri(uri).get("database") or DEFAULT_DATABASE
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        appname=app_name,
        retryWrites=True,
        maxPoolSize=pool_size,
        waitQueueTimeoutMS=wait_queue_timeout_ms,
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


async def ensure_indexes(collection: AsyncCollection[Document], indexes: Sequence[IndexModel]) -> None:
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
