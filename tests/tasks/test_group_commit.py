"""The group-commit writer on the real database: many callers' writes in few commands, each caller
learning its own statement's fate (``tasks/store/group_commit.py``)."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from tasks.store.db import Database
from tasks.store.group_commit import Delete, GroupWriter, Insert, Update
from tests.support.mongo import MongoDocument


async def test_writes_made_together_leave_in_fewer_commands_and_are_all_stored(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    writer = Database(client=mongo_db.client, db=mongo_db).writer("things")
    await asyncio.gather(*(writer.write(Insert({"_id": f"t{n}", "n": n})) for n in range(40)))
    assert await mongo_db.things.count_documents({}) == 40
    assert writer.statements == 40 and writer.commands < 40
    await asyncio.gather(
        *(writer.write(Update({"_id": f"t{n}"}, {"$inc": {"n": 100}})) for n in range(20)),
        *(writer.write(Delete({"_id": f"t{n}"})) for n in range(20, 40)),
    )
    assert sorted([doc["n"] async for doc in mongo_db.things.find({})]) == list(range(100, 120))


async def test_a_taken_id_fails_its_own_write_only(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    await mongo_db.leases.insert_one({"_id": "held"})
    writer = GroupWriter(mongo_db.leases)
    results = await asyncio.gather(
        writer.write(Insert({"_id": "free"})), writer.write(Insert({"_id": "held"})), return_exceptions=True
    )
    assert results[0] is None and isinstance(results[1], DuplicateKeyError)
    assert await mongo_db.leases.count_documents({}) == 2


async def test_a_condition_that_fails_is_told_to_its_caller_by_the_upsert_colliding(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """The session record's save: matched -> stored; not matched -> a duplicate ``_id``, nothing written."""
    await mongo_db.records.insert_many([{"_id": "a", "seq": 0}, {"_id": "b", "seq": 3}, {"_id": "c", "seq": 0}])
    writer = GroupWriter(mongo_db.records)

    def save(record_id: str) -> Update:
        return Update(
            {"_id": record_id, "seq": 0},
            {"$inc": {"seq": 1}, "$set": {"x": 1}},
            upsert=True,
            applied={"_id": record_id, "seq": 1, "x": 1},
        )

    results = await asyncio.gather(*(writer.write(save(name)) for name in "abc"), return_exceptions=True)
    # FerretDB 1.24 stops the command at "b" and reports index 0: each statement is checked alone.
    assert results[0] is None and isinstance(results[1], DuplicateKeyError) and results[2] is None
    stored = {doc["_id"]: doc async for doc in mongo_db.records.find({})}
    assert stored == {
        "a": {"_id": "a", "seq": 1, "x": 1},
        "b": {"_id": "b", "seq": 3},
        "c": {"_id": "c", "seq": 1, "x": 1},
    }


async def test_a_statement_the_server_refuses_fails_alone(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    await mongo_db.counters.insert_many([{"_id": "n", "v": 1}, {"_id": "s", "v": "text"}, {"_id": "m", "v": 1}])
    writer = GroupWriter(mongo_db.counters)
    results = await asyncio.gather(
        writer.write(Update({"_id": "n"}, {"$inc": {"v": 1}}, applied={"_id": "n", "v": 2})),
        writer.write(Update({"_id": "s"}, {"$inc": {"v": 1}})),  # $inc of a string
        writer.write(Update({"_id": "m"}, {"$set": {"v": 5}})),  # after the failure: sent again alone
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], OperationFailure) and results[2] is None
    assert {doc["_id"]: doc["v"] async for doc in mongo_db.counters.find({})} == {"n": 2, "s": "text", "m": 5}


async def test_the_releases_of_a_linger_leave_as_one_delete_past_a_batch(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    # Twenty clean ends within the linger (more than a command's MAX_BATCH statements): their lease
    # deletes leave as ONE merged statement, one command (three before: eight, eight, four).
    await mongo_db.leases.insert_many([{"_id": f"dev{n}", "session_id": f"s{n}"} for n in range(24)])
    writer = GroupWriter(mongo_db.leases)
    writer.linger = 60.0  # nothing leaves on its own while the test looks
    made = [writer.write_later(Delete({"_id": f"dev{n}", "session_id": f"s{n}"})) for n in range(20)]
    assert writer.commands == 0
    await writer.flush_later()
    assert all(done.done() and done.exception() is None for done in made)
    assert writer.commands == 1 and writer.statements == 20
    assert sorted([doc["_id"] async for doc in mongo_db.leases.find({})]) == ["dev20", "dev21", "dev22", "dev23"]
    # Deletes written together that someone waits for merge the same way.
    await asyncio.gather(*(writer.write(Delete({"_id": f"dev{n}"})) for n in range(20, 24)))
    assert await mongo_db.leases.count_documents({}) == 0 and writer.commands == 2
