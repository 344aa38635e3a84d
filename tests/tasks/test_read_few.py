"""``read_few``: the session path's read of a device's open tasks as one ``find`` command, its single
batch the answer; a match larger than the batch read through a cursor, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from tasks.store.db import read_few
from tests.support.mongo import MongoDocument

AT = datetime(2026, 12, 7, 9, 0, 0, 123000, tzinfo=UTC)


async def test_few_matches_come_in_one_command_and_many_through_a_cursor(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    tasks = mongo_db["tasks"]
    await tasks.insert_many([{"_id": f"T{n}", "open_on": "DEV", "at": AT} for n in range(5)]
                            + [{"_id": "OTHER", "open_on": "DEV2", "at": AT}])
    few = await read_few(tasks, {"open_on": "DEV"}, most=10)
    assert sorted(task["_id"] for task in few) == [f"T{n}" for n in range(5)]
    assert few[0]["at"] == AT and few[0]["at"].tzinfo is not None, "the collection's codec options: tz-aware"
    many = await read_few(tasks, {"open_on": "DEV"}, most=3)
    assert sorted(task["_id"] for task in many) == [f"T{n}" for n in range(5)], "past the batch: all of them"
    assert await read_few(tasks, {"open_on": "NONE"}) == []
