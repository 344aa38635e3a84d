"""``firmware``: stored files (``files`` bucket) described as firmware images.

One document per image, keyed by its file's id: the version it installs, the ProductClasses it
fits, the vendor (OUI) it is for and the file's SHA-256 and size, copied when it is registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [
    IndexModel([("product_classes", ASCENDING)]),
    IndexModel([("version", ASCENDING)]),
    IndexModel([("added_at", DESCENDING), ("_id", DESCENDING)]),
]


class DuplicateImage(Exception):
    """The file is already registered as an image."""


def fits(image: Document, product_class: str, oui: str | None = None) -> bool:
    """Whether ``image`` may be installed on a device of that model (and vendor, when the image names one)."""
    vendor = image.get("vendor")
    return product_class in (image.get("product_classes") or []) and (vendor is None or oui is None or vendor == oui)


class FirmwareRepository:
    def __init__(self, database: Database) -> None:
        self._images = database.collection("firmware")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._images, INDEXES)

    async def add(self, file: Document, version: str, product_classes: Sequence[str], vendor: str | None,
                  by: str, now: datetime) -> Document:
        image: Document = {
            "_id": file["_id"], "file_id": file["_id"], "name": file["filename"], "version": version,
            "product_classes": sorted(set(product_classes)), "vendor": vendor,
            "sha256": (file.get("metadata") or {}).get("sha256", ""), "size": int(file["length"]),
            "added_at": now.replace(microsecond=now.microsecond // 1000 * 1000), "added_by": by,
        }
        try:
            await self._images.insert_one(image)
        except DuplicateKeyError as exc:
            raise DuplicateImage(file["_id"]) from exc
        return image

    async def get(self, image_id: str) -> Document | None:
        return await self._images.find_one({"_id": image_id})

    async def page(self, before: tuple[datetime, str] | None, limit: int) -> list[Document]:
        query: Document = {}
        if before is not None:
            added_at, image_id = before
            query["$or"] = [{"added_at": {"$lt": added_at}}, {"added_at": added_at, "_id": {"$lt": image_id}}]
        cursor = self._images.find(query).sort([("added_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [image async for image in cursor]

    async def for_version(self, product_class: str, version: str) -> Document | None:
        """The newest image installing ``version`` on that model (a rollback's previous image)."""
        cursor = self._images.find({"product_classes": product_class, "version": version}).sort("added_at", -1)
        async for image in cursor.limit(1):
            return image
        return None
