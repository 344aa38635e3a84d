"""The device leases' release on the real database: the releases of one batch leave as ONE delete
statement (FerretDB 1.24 runs each delete statement as two PostgreSQL transactions, whatever it
matches: docs/performance.md), and a release still removes only the lease of its own session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from tasks.store.db import Database
from tasks.store.group_commit import Delete
from tasks.store.locks import SessionLockRepository
from tasks.store.sessions import SessionRepository
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands, unique_db_name

RELEASES = 8  # one batch of the group-commit writer (MAX_BATCH)


@pytest.fixture
async def watched(mongo_server: MongoServer) -> AsyncIterator[tuple[Database, StartedCommands]]:
    listener = StartedCommands()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
        mongo_server.uri, tz_aware=True, event_listeners=[listener]
    )
    name = unique_db_name("leases")
    try:
        yield Database(client=client, db=client[name]), listener
    finally:
        await client.drop_database(name)
        await client.close()


def delete_statements(listener: StartedCommands) -> list[MongoDocument]:
    return [
        statement for name, command in listener.started_commands if name == "delete" for statement in command["deletes"]
    ]


async def test_concurrent_releases_leave_in_one_statement_and_free_every_lease(
    watched: tuple[Database, StartedCommands],
) -> None:
    database, listener = watched
    locks = SessionLockRepository(database)
    now = datetime.now(UTC)
    until = now + timedelta(minutes=1)
    taken = await asyncio.gather(*(locks.acquire(f"dev{n}", f"s{n}", until, now) for n in range(RELEASES)))
    assert all(taken)
    listener.started_commands.clear()

    await asyncio.gather(*(locks.release(f"dev{n}", f"s{n}") for n in range(RELEASES)))

    statements = delete_statements(listener)
    assert len(statements) == 1, statements
    assert statements[0]["limit"] == 0 and len(statements[0]["q"]["$or"]) == RELEASES
    assert await database.collection("session_locks").count_documents({}) == 0
    assert all([await locks.holder(f"dev{n}", now) is None for n in range(RELEASES)])


async def test_a_release_of_a_lease_another_session_took_over_deletes_nothing(
    watched: tuple[Database, StartedCommands],
) -> None:
    database, listener = watched
    locks = SessionLockRepository(database)
    now = datetime.now(UTC)
    assert await locks.acquire("old", "s-old", now + timedelta(minutes=1), now)
    # The device's first session was ended by another (a newer Inform, the reaper), which freed its
    # lease; a newer session of the device took it. The first session's own release comes late.
    assert await locks.acquire("taken", "s-first", now + timedelta(minutes=1), now)
    assert not await locks.acquire("taken", "s-second", now + timedelta(minutes=1), now)
    await locks.release("taken", "s-first")
    assert await locks.acquire("taken", "s-second", now + timedelta(minutes=1), now)
    listener.started_commands.clear()

    # The stale holder's release rides in the same statement as another device's release.
    await asyncio.gather(locks.release("taken", "s-first"), locks.release("old", "s-old"))

    assert len(delete_statements(listener)) == 1
    assert await locks.holder("taken", now) == "s-second"
    assert await locks.holder("old", now) is None


async def test_a_delete_not_by_id_keeps_its_own_statement_and_limit(
    watched: tuple[Database, StartedCommands],
) -> None:
    """Only deletes that name one ``_id`` are merged (limit 0 is then the same as limit 1 each)."""
    database, listener = watched
    things = database.collection("things")
    await things.insert_many([{"_id": n, "kind": "a"} for n in range(4)])
    writer = database.writer("things")
    listener.started_commands.clear()
    await asyncio.gather(writer.write(Delete({"kind": "a"})), writer.write(Delete({"_id": 3})))
    statements = delete_statements(listener)
    assert [statement["limit"] for statement in statements] == [1, 1], statements
    assert await things.count_documents({}) == 2


async def test_the_steps_of_sessions_ending_together_leave_in_one_statement(
    watched: tuple[Database, StartedCommands],
) -> None:
    """Each ended session deletes all its steps (a filter by device and session, every match): the
    deletes of one batch are one ``$or`` statement (two PostgreSQL transactions instead of two per
    session), and each deletes its own session's steps only."""
    database, listener = watched
    steps = database.collection("session_steps")
    await steps.insert_many(
        [
            {"_id": f"s{n}.{seq}", "device_id": f"dev{n}", "session_id": f"s{n}", "seq": seq}
            for n in range(4)
            for seq in (1, 2)
        ]
    )
    await steps.insert_one({"_id": "s9.1", "device_id": "dev0", "session_id": "s9", "seq": 1})  # another session
    sessions = SessionRepository(database)
    listener.started_commands.clear()

    await asyncio.gather(*(sessions.forget_steps(f"s{n}", f"dev{n}") for n in range(3)))

    statements = delete_statements(listener)
    assert len(statements) == 1, statements
    assert statements[0]["limit"] == 0 and len(statements[0]["q"]["$or"]) == 3
    left = sorted([step["_id"] async for step in steps.find({}, {"_id": 1})])
    assert left == ["s3.1", "s3.2", "s9.1"]
