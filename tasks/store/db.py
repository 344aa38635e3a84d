"""The MongoDB connection shared by every repository, and index creation at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
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


def connect(uri: str, *, server_selection_timeout_ms: int = 5000, app_name: str = "acs") -> Database:
    """Open a client (lazily connecting) with UTC-aware datetimes."""
    database = parse_uri(uri).get("database") or DEFAULT_DATABASE
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        appname=app_name,
        retryWrites=True,
    )
    return Database(client=client, db=client[database])


async def ensure_indexes(collection: AsyncCollection[Document], indexes: Sequence[IndexModel]) -> None:
    """Create what is missing; MongoDB treats an existing identical index as a no-op."""
    if indexes:
        await collection.create_indexes(list(indexes))
