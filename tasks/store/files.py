"""The ``files`` GridFS bucket: firmware images and configuration files for Download, and what
devices send with Upload.

The layout is GridFS's own (``files.files`` and ``files.chunks``, chunks keyed by ``(files_id, n)``),
so ``mongofiles`` and any GridFS reader see the same files; reads and deletes go through PyMongo's
``AsyncGridFSBucket`` (which works on FerretDB 1.24 as on MongoDB). Writes go chunk by chunk
through :meth:`FileStore.put`: ``AsyncGridIn`` buffers up to 48 MB of chunks before its first
insert, and a 500 MB firmware image should cost one chunk of memory. The files document is
inserted after the last chunk, so a file is visible only once complete; an upload that fails or
grows past the limit has its chunks deleted.

Our own fields sit in the files document's ``metadata`` (file type, SHA-256, content type, who
uploaded it, the device constraints, and for a device's upload its task and device).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bson import Binary, Int64
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, DESCENDING, IndexModel

from tasks.store.db import Database, Document, ensure_indexes

BUCKET = "files"
CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size
CHUNK_INDEXES = [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)]
FILE_INDEXES = [
    IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)]),  # the index GridFS drivers expect
    IndexModel([("uploadDate", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("metadata.file_type", ASCENDING), ("uploadDate", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("metadata.device_id", ASCENDING), ("uploadDate", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("metadata.task_id", ASCENDING)]),
]


class FileTooLarge(Exception):
    """The content grew past the size limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class NewFile:
    """What is known about a file before its content arrives."""

    name: str
    file_type: str
    content_type: str
    uploaded_by: str
    oui: str | None = None
    product_class: str | None = None
    version: str | None = None
    description: str | None = None
    task_id: str | None = None  # a device's Upload: the task it answers
    device_id: str | None = None


@dataclass(frozen=True)
class FileFilter:
    file_type: str | None = None
    device_id: str | None = None
    task_id: str | None = None

    def query(self) -> Document:
        fields = {"file_type": self.file_type, "device_id": self.device_id, "task_id": self.task_id}
        return {f"metadata.{name}": value for name, value in fields.items() if value is not None}


FILE_ID = re.compile(r"[0-9a-f]{32}")


def is_file_id(text: str) -> bool:
    """Whether ``text`` can be a file id; anything else (a NUL, which PostgreSQL under FerretDB
    cannot even compare, or a stray path) names no file and needs no query."""
    return FILE_ID.fullmatch(text) is not None


def new_file_id() -> str:
    # 128 random bits: a device fetches /files/{file_id} without credentials, so the id is the
    # capability (an ObjectId's time and counter would be guessable).
    return secrets.token_hex(16)


class FileStore:
    def __init__(self, database: Database, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._files = database.collection(f"{BUCKET}.files")
        self._chunks = database.collection(f"{BUCKET}.chunks")
        self._bucket = AsyncGridFSBucket(database.db, bucket_name=BUCKET, chunk_size_bytes=chunk_bytes)
        self.chunk_bytes = chunk_bytes

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._chunks, CHUNK_INDEXES)
        await ensure_indexes(self._files, FILE_INDEXES)

    async def put(self, content: AsyncIterable[bytes], new: NewFile, now: datetime, max_bytes: int) -> Document:
        """Store ``content`` chunk by chunk; the files document last. Raises :class:`FileTooLarge`."""
        file_id = new_file_id()
        digest = hashlib.sha256()
        written = 0
        try:
            async for chunk_number, chunk in _chunks_of(content, self.chunk_bytes, max_bytes):
                digest.update(chunk)
                written += len(chunk)
                await self._chunks.insert_one({"files_id": file_id, "n": chunk_number, "data": Binary(chunk)})
            document: Document = {
                "_id": file_id,
                "filename": new.name,
                "length": Int64(written),
                "chunkSize": self.chunk_bytes,
                "uploadDate": now.replace(microsecond=now.microsecond // 1000 * 1000),  # BSON keeps ms
                "metadata": {**asdict(new), "sha256": digest.hexdigest()},
            }
            await self._files.insert_one(document)
        except BaseException:
            await self._chunks.delete_many({"files_id": file_id})
            raise
        return document

    async def get(self, file_id: str) -> Document | None:
        if not is_file_id(file_id):
            return None
        return await self._files.find_one({"_id": file_id})

    async def page(self, where: FileFilter, before: tuple[datetime, str] | None, limit: int) -> list[Document]:
        """Newest first, keyset-paginated on ``(uploadDate, _id)``."""
        query = where.query()
        if before is not None:
            uploaded_at, file_id = before
            query["$or"] = [
                {"uploadDate": {"$lt": uploaded_at}},
                {"uploadDate": uploaded_at, "_id": {"$lt": file_id}},
            ]
        cursor = self._files.find(query).sort([("uploadDate", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [found async for found in cursor]

    async def for_task(self, task_id: str) -> list[Document]:
        return [found async for found in self._files.find({"metadata.task_id": task_id})]

    async def read(self, file_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of the file, one chunk at a time."""
        stream = await self._bucket.open_download_stream(file_id)
        try:
            await stream.seek(start)
            remaining = end - start
            while remaining > 0:
                piece = await stream.read(min(remaining, self.chunk_bytes))
                if not piece:
                    return
                remaining -= len(piece)
                yield piece
        finally:
            await stream.close()

    async def delete(self, file_id: str) -> bool:
        """Remove the files document, then the chunks; False when there was no such file."""
        try:
            await self._bucket.delete(file_id)
        except NoFile:
            return False
        return True


async def _chunks_of(content: AsyncIterable[bytes], size: int, limit: int) -> AsyncIterator[tuple[int, bytes]]:
    """Re-cut arbitrary pieces into numbered chunks of ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    number = 0
    total = 0
    async for piece in content:
        total += len(piece)
        if total > limit:
            raise FileTooLarge(limit)
        buffer += piece
        while len(buffer) >= size:
            yield number, bytes(buffer[:size])
            del buffer[:size]
            number += 1
    if buffer:
        yield number, bytes(buffer)


def metadata(document: Document) -> dict[str, Any]:
    found = document.get("metadata")
    return found if isinstance(found, dict) else {}
