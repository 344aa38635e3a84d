"""The MongoDB-compatible server the test run uses, and per-test databases on it.

One server per test run: ``ACS_TEST_MONGODB_URI`` when set (e.g. a real MongoDB replica set),
otherwise a :class:`acs.localdb.LocalMongo` (mongod, or FerretDB over PostgreSQL, or over SQLite
when PostgreSQL is not installed) on a free port and a temp dir.
Each test that asks for ``mongo_db`` gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pymongo import monitoring

from acs.localdb import LocalMongo

TEST_URI_ENV = "ACS_TEST_MONGODB_URI"

MongoDocument = dict[str, Any]


class StartedCommands(monitoring.CommandListener):
    """The commands a client started, in order (``name``, ``command``), for tests that count them."""

    def __init__(self) -> None:
        self.started_commands: list[tuple[str, MongoDocument]] = []

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.started_commands]

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.started_commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass(frozen=True)
class MongoServer:
    """Where the tests' database server is. ``uri`` names no database."""

    uri: str
    kind: str  # "mongod", "ferretdb-postgresql", "ferretdb-sqlite" or "external"
    local: LocalMongo | None = None

    def uri_for(self, database: str) -> str:
        """The server URI with ``database`` as its default database (query options kept)."""
        return uri_with_database(self.uri, database)


async def leases_freed(db: Any, query: MongoDocument | None = None) -> bool:
    """No session lease left (matching ``query``) in ``db``, a PyMongo async database. A clean
    session end frees its lease just after its 204 (``GroupWriter.write_later``): poll this."""
    return int(await db.session_locks.count_documents(query or {})) == 0


def uri_with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def unique_db_name(hint: str = "test") -> str:
    """A database name unique to this call, readable in a listing: ``t_<hint>_<random>``.

    Kept to [a-z0-9_] and well under 64 characters: what both MongoDB and FerretDB accept.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:32] or "test"
    return f"t_{slug}_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def database_temp_dir(prefix: str = "acs-test-db-") -> Iterator[Path]:
    """A fresh temp dir for a local database server, removed afterwards.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user, which must be
    able to reach its data: pytest's ``tmp_path`` lies under ``/tmp/pytest-of-root`` (mode 0700),
    where it cannot. This dir is in the system temp dir, searchable (not listable) by others.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o711)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def mongo_server_for_tests(data_dir: Path) -> AsyncIterator[MongoServer]:
    """The server for a test run: ``$ACS_TEST_MONGODB_URI``, or a LocalMongo started in a temp dir.

    The server's logs are copied into ``data_dir`` (pytest's, which it keeps) when it has stopped.
    """
    external = os.environ.get(TEST_URI_ENV)
    if external:
        yield MongoServer(uri=uri_with_database(external, ""), kind="external")
        return
    with database_temp_dir() as server_dir:
        local = await LocalMongo.start(server_dir)
        try:
            yield MongoServer(uri=local.uri, kind=local.kind, local=local)
        finally:
            try:
                await local.stop()
            finally:
                for log in server_dir.glob("*.log"):
                    shutil.copy2(log, data_dir / log.name)
