"""The MongoDB connection shared by every repository, index creation at start-up, and the one
capped writer that every write of several statements goes through (``write_command``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.uri_parser import parse_uri

from tasks.records import Document as Document  # re-exported: the alias lives in tasks/records.py

if TYPE_CHECKING:
    from tasks.store.group_commit import GroupWriter

DEFAULT_DATABASE = "acs"
# FerretDB 1.24 holds one of its 50 PostgreSQL connections per statement of a write command for the
# command's whole run: one insert or update of 50 statements never finished (seen at 60), and every
# other command waited behind it; a health poll's one bulk update for 200 devices stopped it
# answering even ``ping`` (``tests/tasks/test_database_pool.py``). So a command carries at most
# MAX_BATCH statements (``write_command``, the only sender of multi-statement writes:
# ``tests/tasks/test_capped_writes.py``) and a process's group commit has at most
# COMMANDS_IN_FLIGHT of them running, 16 connections (the session path's single-document commands
# use the rest: POOL_SIZE).
MAX_BATCH = 8
COMMANDS_IN_FLIGHT = 2
DUPLICATE_KEY = 11000


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
        from tasks.store.group_commit import GroupWriter  # it builds on this module's write_command

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

    async def flush_later(self) -> None:
        """Every group-commit writer's deferred writes sent now, and waited for."""
        await asyncio.gather(*(writer.flush_later() for writer in self._writers.values()))

    async def close(self) -> None:
        """The deferred writes sent (a lease freed late is still freed), then the client closed."""
        try:
            async with asyncio.timeout(10):
                await self.flush_later()
        except TimeoutError:  # the database is gone: the leases expire and the reaper frees them
            logging.getLogger("acs.db").warning("deferred writes not made within 10 s at close; left to the reaper")
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


async def upsert_one(collection: AsyncCollection[Any], query: Mapping[str, Any], update: Mapping[str, Any]) -> None:
    """``update_one(query, update, upsert=True)`` that two processes may run at once.

    FerretDB 1.24 runs an upsert as "find, then insert when nothing matched"
    (shared/mongo/README.md), and MongoDB does the same outside its own retry cases: when two
    writers upsert a missing document together, the later insert fails on the unique ``_id``.
    The document exists by then, so the loser's second try is an ordinary update of it. Seen
    with ``acs serve --workers 2`` on a fresh database: both workers recorded the same start-up
    pass, and the worker whose insert lost died before it served.
    """
    try:
        await collection.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        await collection.update_one(query, update, upsert=True)


async def read_few(collection: AsyncCollection[Document], query: Mapping[str, Any], most: int = 100) -> list[Document]:
    """The documents ``query`` matches, when they are usually few (a device's open tasks on the
    session path): one ``find`` command whose single batch is the answer, not a cursor. PyMongo's
    cursor machinery costs the client about 60 µs of CPU more a read (369 µs against 310 on the
    local FerretDB, docs/performance.md). More than ``most`` found: read again through a cursor."""
    command = {"find": collection.name, "filter": dict(query), "limit": most + 1, "singleBatch": True}
    reply = await collection.database.command(command, codec_options=collection.codec_options)
    found: list[Document] = reply["cursor"]["firstBatch"]
    if len(found) <= most:
        return found
    return [document async for document in collection.find(query)]


@dataclass(frozen=True)
class Insert:
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Update:
    filter: Mapping[str, Any]
    update: Mapping[str, Any]  # operators, or a whole replacement document
    upsert: bool = False
    # A filter that finds the document only if this update was applied (for an update that may not
    # be applied twice); None: applying it again changes nothing that matters ($set, a mark's $inc).
    applied: Mapping[str, Any] | None = None
    # Every document the filter matches (``multi``), not the first only: a job's bulk mark of the
    # devices of one slice by its equality and their ids (``DeviceRepository.mark_offline``).
    every_match: bool = False


@dataclass(frozen=True)
class Delete:
    filter: Mapping[str, Any]
    # Every document the filter matches (``limit: 0``), not the first only: the group-commit writer's
    # one statement for several callers' deletes by ``_id`` (``GroupWriter``).
    every_match: bool = False


WriteOp = Insert | Update | Delete
Statement = TypeVar("Statement")


def capped(statements: Sequence[Statement]) -> Iterator[list[Statement]]:
    """``statements`` in runs of at most MAX_BATCH: one command each."""
    for start in range(0, len(statements), MAX_BATCH):
        yield list(statements[start:start + MAX_BATCH])


def _command(collection: AsyncCollection[Document], ops: Sequence[WriteOp]) -> Document:
    first = ops[0]
    if len(ops) > MAX_BATCH or any(type(op) is not type(first) for op in ops):
        raise ValueError(f"a write command carries at most {MAX_BATCH} statements of one kind, not {len(ops)}")
    name = collection.name
    if isinstance(first, Insert):
        return {"insert": name, "documents": [dict(op.document) for op in ops if isinstance(op, Insert)],
                "ordered": False}
    if isinstance(first, Update):
        return {"update": name, "updates": [{"q": dict(op.filter), "u": dict(op.update), "upsert": op.upsert,
                                             **({"multi": True} if op.every_match else {})}
                                            for op in ops if isinstance(op, Update)], "ordered": False}
    return {"delete": name,
            "deletes": [{"q": dict(op.filter), "limit": 0 if op.every_match else 1}
                        for op in ops if isinstance(op, Delete)],
            "ordered": False}


async def write_command(collection: AsyncCollection[Document], ops: Sequence[WriteOp]) -> Document:
    """One unordered ``insert``, ``update`` or ``delete`` command carrying ``ops`` (at most
    MAX_BATCH, all of one kind: ValueError otherwise); the server's reply, whose ``writeErrors``
    name the failed statements by index.

    Sent as a plain command rather than PyMongo's ``bulk_write``: FerretDB 1.24 leaves ``nModified``
    out of an ``update`` reply whose statements all failed, which PyMongo's bulk API cannot read.
    """
    return await collection.database.command(_command(collection, ops))


def statement_error(error: Mapping[str, Any]) -> PyMongoError:
    """The error of one failed statement of a write command's reply (``writeErrors``)."""
    code = int(error.get("code", 0))
    message = str(error.get("errmsg", "write failed"))
    if code == DUPLICATE_KEY:
        return DuplicateKeyError(message, code, dict(error))
    return OperationFailure(message, code, dict(error))


async def bulk_write(
    collection: AsyncCollection[Document], ops: Sequence[WriteOp], *, keep_existing: bool = False
) -> int:
    """Write ``ops`` (all of one kind) unordered in commands of at most MAX_BATCH statements; how
    many documents they inserted, modified or deleted.

    A failed statement raises its error once its command is done (the commands after it are not
    sent); ``keep_existing``: an insert whose ``_id`` is taken is left out instead (a retried
    creation keeps what is there).
    """
    written = 0
    for chunk in capped(ops):
        reply = await write_command(collection, chunk)
        written += int(reply.get("nModified" if isinstance(chunk[0], Update) else "n", 0))
        for error in reply.get("writeErrors", []):
            if not (keep_existing and int(error.get("code", 0)) == DUPLICATE_KEY):
                raise statement_error(error)
    return written


async def flush_updates(collection: AsyncCollection[Document], pending: list[Update]) -> int:
    """Write the updates gathered by a streamed pass (``bulk_write``) and empty the list; how many
    documents they modified."""
    if not pending:
        return 0
    modified = await bulk_write(collection, pending)
    pending.clear()
    return modified
