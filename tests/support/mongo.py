"""The MongoDB-compatible server the test run uses, and per-test databases on it.

One server per test run: ``ACS_TEST_MONGODB_URI`` when set (e.g. a real MongoDB replica set),
otherwise a :class:`acs.localdb.LocalMongo` (mongod or FerretDB) on a free port and a temp dir.
Each test that asks for ``mongo_db`` gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from acs.localdb import LocalMongo

TEST_URI_ENV = "ACS_TEST_MONGODB_URI"

MongoDocument = dict[str, Any]


@dataclass(frozen=True)
class MongoServer:
    """Where the tests' database server is. ``uri`` names no database."""

    uri: str
    kind: str  # "mongod", "ferretdb" or "external"
    local: LocalMongo | None = None

    def uri_for(self, database: str) -> str:
        """The server URI with ``database`` as its default database (query options kept)."""
        return uri_with_database(self.uri, database)


def uri_with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def unique_db_name(hint: str = "test") -> str:
    """A database name unique to this call, readable in a listing: ``t_<hint>_<random>``.

    Kept to [a-z0-9_] and well under 64 characters: what both MongoDB and FerretDB accept.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:32] or "test"
    return f"t_{slug}_{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def mongo_server_for_tests(data_dir: Path) -> AsyncIterator[MongoServer]:
    """The server for a test run: ``$ACS_TEST_MONGODB_URI``, or a LocalMongo started on ``data_dir``."""
    external = os.environ.get(TEST_URI_ENV)
    if external:
        yield MongoServer(uri=uri_with_database(external, ""), kind="external")
        return
    local = await LocalMongo.start(data_dir)
    try:
        yield MongoServer(uri=local.uri, kind=local.kind, local=local)
    finally:
        await local.stop()
