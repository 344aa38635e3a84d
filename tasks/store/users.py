"""Console accounts (``console_users``) and their login sessions (``console_sessions``).

Passwords are stored as argon2id hashes only (hashing happens in ``acs.console.accounts``).
A session is found by the SHA-256 of its cookie value (256 random bits: a fast hash is enough),
so a leaked database does not give away live sessions. Login attempts are counted apart, one
insert each (``tasks.store.login_attempts``); the account holds the lock-out time and the epoch
its attempts are counted under.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes

USER_INDEXES = [IndexModel([("username", ASCENDING)], unique=True)]
SESSION_INDEXES = [IndexModel([("expires_at", ASCENDING)]), IndexModel([("username", ASCENDING)])]
NO_HASH = {"password_hash": 0}


class DuplicateUserName(Exception):
    """An account with this username exists already."""


class UserRepository:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._users = database.collection("console_users")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._users, USER_INDEXES)

    async def insert(self, user: Mapping[str, Any]) -> None:
        try:
            await self._users.insert_one(dict(user))
        except DuplicateKeyError as exc:
            raise DuplicateUserName(str(user.get("username"))) from exc

    async def by_name(self, username: str, *, with_hash: bool = False) -> Document | None:
        return await self._users.find_one({"username": username}, None if with_hash else NO_HASH)

    async def page(self, after: str | None, limit: int) -> list[Document]:
        query: Document = {} if after is None else {"username": {"$gt": after}}
        cursor = self._users.find(query, NO_HASH).sort("username", ASCENDING).limit(limit)
        return [user async for user in cursor]

    async def set_fields(self, username: str, fields: Mapping[str, Any]) -> bool:
        result = await self._users.update_one({"username": username}, {"$set": dict(fields)})
        return result.matched_count == 1


class ConsoleSessionRepository:
    def __init__(self, database: Database) -> None:
        self._sessions = database.collection("console_sessions")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._sessions, SESSION_INDEXES)

    async def insert(self, session: Mapping[str, Any]) -> None:
        await self._sessions.insert_one(dict(session))

    async def get(self, session_hash: str) -> Document | None:
        return await self._sessions.find_one({"_id": session_hash})

    async def touch(self, session_hash: str, fields: Mapping[str, Any]) -> None:
        await self._sessions.update_one({"_id": session_hash}, {"$set": dict(fields)})

    async def delete(self, session_hash: str) -> None:
        await self._sessions.delete_one({"_id": session_hash})

    async def delete_for_user(self, username: str) -> int:
        result = await self._sessions.delete_many({"username": username})
        return result.deleted_count

    async def count_for_user(self, username: str, now: datetime) -> int:
        """Live sessions of one user (by the ``username`` equality; expired ones are pruned by a job)."""
        return await self._sessions.count_documents({"username": username, "expires_at": {"$gt": now}})

    async def delete_expired(self, now: datetime) -> int:
        result = await self._sessions.delete_many({"expires_at": {"$lte": now}})
        return result.deleted_count
