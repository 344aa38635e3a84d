"""Digest nonce counts seen (``digest_nonce_uses``): one inserted document per (nonce, nc).

RFC 7616 3.4.5: a server should refuse a request whose nonce count it has already seen for that
nonce, or a captured ``Authorization`` header could be replayed for the nonce's whole lifetime
(from any connection, to any worker). The use is recorded by inserting ``_id = nonce:nc``; the
unique ``_id`` makes the second insert fail on every worker and host, and that holds on FerretDB
too, whose ``findAndModify`` is a read and a write. Nonces expire after a few minutes (their
issue time is signed into them); a scheduled job deletes the uses older than that.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, ensure_indexes

INDEXES = [IndexModel([("at", ASCENDING)])]


class DigestNonceRepository:
    def __init__(self, database: Database) -> None:
        self._uses = database.collection("digest_nonce_uses")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._uses, INDEXES)

    async def first_use(self, nonce: str, nonce_count: str, now: datetime) -> bool:
        """True when this (nonce, nc) pair was never seen before; it is recorded as seen."""
        try:
            await self._uses.insert_one({"_id": f"{nonce}:{nonce_count}", "at": now})
        except DuplicateKeyError:
            return False
        return True

    async def prune(self, before: datetime) -> int:
        result = await self._uses.delete_many({"at": {"$lt": before}})
        return result.deleted_count
