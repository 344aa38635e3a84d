"""Every write of several statements goes through the one capped writer (``tasks/store/db.py``).

FerretDB 1.24 holds a PostgreSQL connection per statement of a write command for the whole
command: a command of ~50+ statements wedges it. ``write_command`` sends at most MAX_BATCH; the
source check below fails when code elsewhere reaches for a bulk API (``bulk_write``,
``insert_many``) or builds a raw write command, whose statement list nothing would bound.
``update_many`` / ``delete_many`` are one statement each (a filter), so they are not bulk here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from tasks.store.db import MAX_BATCH, Delete, Insert, Update, bulk_write, write_command
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands, unique_db_name

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("acs", "tasks", "cwmp", "schemas")
WRITER = Path("tasks/store/db.py")
BULK_CALLS = frozenset({"bulk_write", "insert_many"})
STATEMENT_LIST = {"insert": "documents", "update": "updates", "delete": "deletes"}  # of a write command


def bulk_writes_in(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) of each call of a bulk API and each raw write command built in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in BULK_CALLS:
            yield node.lineno, f"calls {node.func.attr}"
        elif isinstance(node, ast.Dict):
            keys = {key.value for key in node.keys if isinstance(key, ast.Constant)}
            for name in sorted(keys & set(STATEMENT_LIST.values())):
                yield node.lineno, f"builds a write command's {name!r}"


def uncapped_writes(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line} {what}"
        for package in PRODUCT_PACKAGES
        for path in sorted((root / package).rglob("*.py"))
        if path.relative_to(root) != WRITER
        for line, what in bulk_writes_in(path.read_text(encoding="utf-8"))
    ]


def test_no_bulk_write_goes_around_the_capped_writer() -> None:
    assert uncapped_writes(ROOT) == []


def test_the_check_catches_bulk_apis_and_raw_write_commands(tmp_path: Path) -> None:
    (tmp_path / "tasks" / "store").mkdir(parents=True)
    (tmp_path / "tasks" / "store" / "db.py").write_text("async def w(c):\n    await c.bulk_write([])\n")
    (tmp_path / "tasks" / "store" / "probe.py").write_text(
        "async def f(c, db, docs):\n"
        "    await c.insert_many(docs)\n"
        "    await c.bulk_write(docs, ordered=False)\n"
        "    await db.command({'update': 'x', 'updates': docs})\n"
        "    await c.update_many({}, {'$set': {'a': 1}})\n"
    )
    assert uncapped_writes(tmp_path) == [
        "tasks/store/probe.py:2 calls insert_many",
        "tasks/store/probe.py:3 calls bulk_write",
        "tasks/store/probe.py:4 builds a write command's 'updates'",
    ]


def write_sizes(listener: StartedCommands) -> list[tuple[str, int]]:
    """(kind, statements) of each write command the client sent."""
    return [(name, len(command[STATEMENT_LIST[name]])) for name, command in listener.started_commands
            if name in STATEMENT_LIST]


async def test_bulk_writes_leave_in_commands_of_at_most_max_batch(mongo_server: MongoServer) -> None:
    listener = StartedCommands()
    name = unique_db_name("capped_writes")
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, event_listeners=[listener])
    things = client[name].things
    try:
        count = 2 * MAX_BATCH + 3
        assert await bulk_write(things, [Insert({"_id": n, "v": 0}) for n in range(count)]) == count
        modified = await bulk_write(things, [Update({"_id": n}, {"$set": {"v": n % 2}}) for n in range(count)])
        assert modified == count // 2  # the even ones already had v == 0
        assert await bulk_write(things, [Delete({"_id": n}) for n in range(MAX_BATCH + 1)]) == MAX_BATCH + 1
        assert write_sizes(listener) == [
            *[("insert", MAX_BATCH)] * 2, ("insert", 3),
            *[("update", MAX_BATCH)] * 2, ("update", 3),
            ("delete", MAX_BATCH), ("delete", 1),
        ]
        assert await things.count_documents({}) == count - MAX_BATCH - 1
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_taken_id_is_kept_or_raised_as_asked(mongo_server: MongoServer) -> None:
    name = unique_db_name("capped_inserts")
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri)
    members = client[name].members
    try:
        await members.insert_one({"_id": "m3", "v": "old"})
        fresh = [Insert({"_id": f"m{n}", "v": "new"}) for n in range(12)]
        assert await bulk_write(members, fresh, keep_existing=True) == 11
        assert (await members.find_one({"_id": "m3"}) or {})["v"] == "old"
        with pytest.raises(DuplicateKeyError):
            await bulk_write(members, [Insert({"_id": "m3"})])
    finally:
        await client.drop_database(name)
        await client.close()


async def test_one_command_never_carries_more_than_max_batch_or_two_kinds(mongo_server: MongoServer) -> None:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri)
    things = client[unique_db_name("capped_command")].things
    try:
        with pytest.raises(ValueError, match="at most"):
            await write_command(things, [Insert({"_id": n}) for n in range(MAX_BATCH + 1)])
        with pytest.raises(ValueError, match="one kind"):
            await write_command(things, [Insert({"_id": 1}), Delete({"_id": 2})])
    finally:
        await client.close()
