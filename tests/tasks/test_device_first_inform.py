"""A BOOTSTRAP stores a device it has never seen with one insert (issue 10: on FerretDB 1.24 an
insert is one PostgreSQL transaction shared by its group-committed command, a findAndModify two of
its own); a stored device makes the insert collide and is written by the findAndModify as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from tasks.store.db import Database
from tasks.store.devices import DeviceRepository
from tests.support.mongo import MongoDocument

T0 = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
DEVICE = "00E0FC-HG8245H-FIRST1"
IDENTITY = {"oui": "00E0FC", "product_class": "HG8245H", "serial_number": "FIRST1", "manufacturer": "Huawei"}
STATE = {"software_version": "V1", "remote_ip": "10.0.0.1", "offline_after": T0 + timedelta(hours=1)}


async def test_a_new_device_inserted_at_bootstrap_is_the_document_the_upsert_stores(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    devices = DeviceRepository(Database(client=mongo_db.client, db=mongo_db))
    inserted = await devices.upsert_inform(DEVICE, IDENTITY, STATE, T0, probably_new=True)
    assert inserted.created and inserted.before == {}
    stored = await mongo_db["devices"].find_one({"_id": DEVICE})
    assert stored is not None and stored == inserted.device

    await mongo_db["devices"].delete_one({"_id": DEVICE})
    upserted = await devices.upsert_inform(DEVICE, IDENTITY, STATE, T0)
    assert upserted.created and upserted.device == inserted.device
    by_upsert = await mongo_db["devices"].find_one({"_id": DEVICE})
    assert by_upsert is not None
    # FerretDB 1.24's upsert leaves out the empty ``tags`` of ``$setOnInsert``; MongoDB, like the insert, keeps it.
    assert {**by_upsert, "tags": by_upsert.get("tags", [])} == stored


async def test_a_bootstrap_of_a_stored_device_updates_it_and_returns_it_as_it_was(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    devices = DeviceRepository(Database(client=mongo_db.client, db=mongo_db))
    await devices.upsert_inform(DEVICE, IDENTITY, STATE, T0, probably_new=True)
    later = T0 + timedelta(minutes=5)
    again = await devices.upsert_inform(DEVICE, IDENTITY, {**STATE, "software_version": "V2"}, later, probably_new=True)
    assert not again.created and again.before["software_version"] == "V1"
    stored = await mongo_db["devices"].find_one({"_id": DEVICE})
    assert stored is not None and stored["software_version"] == "V2"
    assert stored["first_inform"] == again.before["first_inform"] and stored["last_inform"] > stored["first_inform"]
    assert await mongo_db["devices"].count_documents({}) == 1
