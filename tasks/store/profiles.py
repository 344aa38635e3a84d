"""The ``profiles`` and ``profile_versions`` collections: profiles and every version ever saved.

``profiles`` holds the current version of each profile (``_id`` = name); ``profile_versions`` holds
each saved version under ``_id = name@version`` (with who, when, the action and the diff), never
updated. The version insert is the lock: two writers saving version N+1 of one profile collide on
the unique ``_id`` and the second is refused (FerretDB 1.24's findAndModify is not atomic, an
insert is), then the current document is replaced only while it still holds version N.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes

VERSION_INDEXES = [IndexModel([("name", ASCENDING), ("version", DESCENDING)])]


class VersionConflict(Exception):
    """Another writer saved this profile meanwhile."""


def version_id(name: str, version: int) -> str:
    return f"{name}@{version}"


class ProfileRepository:
    def __init__(self, database: Database) -> None:
        self._profiles = database.collection("profiles")
        self._versions = database.collection("profile_versions")

    async def ensure_indexes(self) -> None:
        # profiles: every query is by _id or the whole (small) collection.
        await ensure_indexes(self._versions, VERSION_INDEXES)

    async def all(self) -> list[Document]:
        return [profile async for profile in self._profiles.find({}).sort("_id", ASCENDING)]

    async def get(self, name: str) -> Document | None:
        return await self._profiles.find_one({"_id": name})

    async def version(self, name: str, version: int) -> Document | None:
        return await self._versions.find_one({"_id": version_id(name, version)})

    async def versions(self, name: str, limit: int = 100) -> list[Document]:
        cursor = self._versions.find({"name": name}).sort("version", DESCENDING).limit(limit)
        return [entry async for entry in cursor]

    async def save(
        self,
        name: str,
        spec: dict[str, Any] | None,
        expected: int,
        by: str,
        at: datetime,
        action: str,
        comment: str | None,
        diff: list[Document],
    ) -> int:
        """Store version ``expected + 1`` (``spec`` None: the profile is deleted); VersionConflict
        when ``expected`` is no longer the current version."""
        version = expected + 1
        entry = {
            "_id": version_id(name, version),
            "name": name,
            "version": version,
            "spec": spec,
            "at": at,
            "by": by,
            "action": action,
            "comment": comment,
            "diff": diff,
        }
        try:
            await self._versions.insert_one(entry)
        except DuplicateKeyError:
            raise VersionConflict(name) from None
        if spec is None:
            await self._profiles.delete_one({"_id": name, "version": expected})
            return version
        document = {"version": version, "spec": spec, "updated_at": at, "updated_by": by, "comment": comment}
        if expected == 0:
            await self._profiles.replace_one({"_id": name}, document, upsert=True)
        else:
            result = await self._profiles.replace_one({"_id": name, "version": expected}, document)
            if result.matched_count == 0:
                raise VersionConflict(name)
        return version

    async def latest_version(self, name: str) -> int:
        """The highest version ever saved (a deleted profile keeps counting up when re-created)."""
        newest = await self.versions(name, 1)
        return int(newest[0]["version"]) if newest else 0
