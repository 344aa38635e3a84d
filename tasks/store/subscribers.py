"""The ``subscribers`` collection: one document per account (``_id`` = account number).

Passwords (PPPoE, VoIP) are sealed with the secret box before they are written; ``shown`` gives
the API's view (``***``), ``opened`` the clear record the profile templates need. Lookups are by
top-level equality only (FerretDB serves nothing else from an index): serial number, PPPoE login,
bound device.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from tasks.secret_values import REDACTED
from tasks.secretbox import SecretBox
from tasks.store.db import Database, Document, ensure_indexes

SEALED = "sealed"
INDEXES = [
    IndexModel([("serial_number", ASCENDING)]),
    IndexModel([("pppoe_login", ASCENDING)]),
    IndexModel([("device_id", ASCENDING)]),
]
RECORD_FIELDS = (
    "name",
    "pppoe_login",
    "pppoe_password",
    "vlan",
    "voip",
    "plan",
    "address",
    "serial_number",
    "bind_by",
)


def _map_passwords(record: Document, change: Any) -> Document:
    mapped = copy.deepcopy(record)
    if mapped.get("pppoe_password") not in (None, ""):
        mapped["pppoe_password"] = change(mapped["pppoe_password"])
    for line in mapped.get("voip") or []:
        if isinstance(line, dict) and line.get("password") not in (None, ""):
            line["password"] = change(line["password"])
    return mapped


class SubscriberRepository:
    def __init__(self, database: Database, box: SecretBox) -> None:
        self._subscribers = database.collection("subscribers")
        self._box = box

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._subscribers, INDEXES)

    def sealed(self, record: Document) -> Document:
        return _map_passwords(record, lambda v: v if isinstance(v, dict) else {SEALED: self._box.encrypt(str(v))})

    def opened(self, stored: Document) -> Document:
        """The clear record (for templates): passwords opened, ``account`` = ``_id``."""
        opened = _map_passwords(stored, lambda v: self._box.decrypt(v[SEALED]) if isinstance(v, dict) else v)
        opened["account"] = stored["_id"]
        return opened

    @staticmethod
    def shown(stored: Document) -> Document:
        shown = _map_passwords(stored, lambda _v: REDACTED)
        shown["account"] = shown.pop("_id")
        return shown

    async def get(self, account: str) -> Document | None:
        return await self._subscribers.find_one({"_id": account})

    async def by_serial(self, serial_number: str) -> Document | None:
        if not serial_number:
            return None
        return await self._subscribers.find_one({"serial_number": serial_number})

    async def by_pppoe_login(self, login: str) -> Document | None:
        if not login:
            return None
        return await self._subscribers.find_one({"pppoe_login": login})

    async def by_device(self, device_id: str) -> Document | None:
        return await self._subscribers.find_one({"device_id": device_id})

    async def search(self, text: str, limit: int) -> list[Document]:
        """Line 2 types an account number, a PPPoE login or a serial: each an indexed equality."""
        found: dict[str, Document] = {}
        for lookup in (self.get, self.by_pppoe_login, self.by_serial):
            record = await lookup(text)
            if record is not None:
                found.setdefault(record["_id"], record)
        return list(found.values())[:limit]

    async def page(self, after: str | None, limit: int) -> list[Document]:
        query: Document = {"_id": {"$gt": after}} if after else {}
        cursor = self._subscribers.find(query).sort("_id", ASCENDING).limit(limit)
        return [record async for record in cursor]

    async def put(self, account: str, record: Document, by: str, now: datetime) -> bool:
        """Create or replace the record (passwords sealed); True when it was created. A replaced
        record keeps its device binding unless its serial number changed."""
        stored = await self.get(account)
        document = {**self.sealed(record), "updated_at": now, "updated_by": by}
        if stored is not None and stored.get("serial_number") == record.get("serial_number"):
            document["device_id"] = stored.get("device_id")
        else:
            document["device_id"] = None
        await self._subscribers.replace_one({"_id": account}, document, upsert=True)
        return stored is None

    async def bind(self, account: str, device_id: str) -> None:
        await self._subscribers.update_one({"_id": account}, {"$set": {"device_id": device_id}})

    async def delete(self, account: str) -> bool:
        result = await self._subscribers.delete_one({"_id": account})
        return result.deleted_count == 1

    def same_record(self, stored: Document, record: Document) -> bool:
        """Whether ``record`` (clear, as written) equals what is stored (for the import's "unchanged")."""
        opened = self.opened(stored)
        return all(opened.get(field) == record.get(field) for field in RECORD_FIELDS)
