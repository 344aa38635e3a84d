"""``device_notes``: what line 3 wrote about a device (one small document per note, newest shown first)."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [IndexModel([("device_id", ASCENDING)])]
NOTE_CHARS = 2000
NOTES_SHOWN = 200


class NoteRepository:
    def __init__(self, database: Database) -> None:
        self._notes = database.collection("device_notes")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._notes, INDEXES)

    async def add(self, device_id: str, author: str, text: str, at: datetime) -> str:
        note_id = str(ObjectId())
        await self._notes.insert_one({"_id": note_id, "device_id": device_id, "author": author, "text": text,
                                      "at": at})
        return note_id

    async def for_device(self, device_id: str, limit: int = NOTES_SHOWN) -> list[Document]:
        """The device's notes, newest first (found by indexed equality on ``device_id``)."""
        notes = [note async for note in self._notes.find({"device_id": device_id})]
        return sorted(notes, key=lambda note: note["at"], reverse=True)[:limit]

    async def delete(self, device_id: str, note_id: str) -> bool:
        return (await self._notes.delete_one({"_id": note_id, "device_id": device_id})).deleted_count == 1
