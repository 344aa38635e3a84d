"""The ``api_tokens`` collection: operator API tokens, stored as SHA-256 hashes only.

A token is 32 bytes from ``secrets`` (256 bits), so a fast hash is enough: there is no
dictionary to attack, unlike a password, and a slow hash (argon2) would cost every API request.
The unique ``hash`` index serves the lookup of each request; the unique ``name`` index keeps
names usable in ``acs token revoke --name``. Revoking deletes the document; audit entries keep
the token's name and id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [IndexModel([("hash", ASCENDING)], unique=True), IndexModel([("name", ASCENDING)], unique=True)]


class DuplicateTokenName(Exception):
    """A token with this name exists already."""


class TokenRepository:
    def __init__(self, database: Database) -> None:
        self._tokens = database.collection("api_tokens")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._tokens, INDEXES)

    async def insert(self, token: Mapping[str, Any]) -> None:
        try:
            await self._tokens.insert_one(dict(token))
        except DuplicateKeyError as exc:
            raise DuplicateTokenName(str(token.get("name"))) from exc

    async def by_hash(self, token_hash: str) -> Document | None:
        return await self._tokens.find_one({"hash": token_hash}, {"hash": 0})

    async def get(self, token_id: str) -> Document | None:
        return await self._tokens.find_one({"_id": token_id}, {"hash": 0})

    async def by_name(self, name: str) -> Document | None:
        return await self._tokens.find_one({"name": name}, {"hash": 0})

    async def page(self, after: str | None, limit: int) -> list[Document]:
        query: Document = {} if after is None else {"_id": {"$gt": after}}
        cursor = self._tokens.find(query, {"hash": 0}).sort("_id", ASCENDING).limit(limit)
        return [token async for token in cursor]

    async def delete(self, token_id: str) -> Document | None:
        deleted = await self._tokens.find_one_and_delete({"_id": token_id})  # FerretDB: no projection here
        if deleted is not None:
            deleted.pop("hash", None)
        return deleted

    async def touch(self, token_id: str, fields: Mapping[str, Any]) -> None:
        await self._tokens.update_one({"_id": token_id}, {"$set": dict(fields)})
