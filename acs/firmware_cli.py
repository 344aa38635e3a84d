"""``acs firmware add FILE --version V --product-class P`` and ``acs firmware list``.

``add`` streams the file into the file store (``files`` bucket, as ``POST /api/v1/files`` does),
then registers it as a firmware image: the version it installs, the ProductClasses it fits (the
option repeats) and optionally the vendor OUI. It prints the image id a campaign names.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from acs.config import Settings
from schemas.campaigns import FirmwareBody
from tasks.store.db import Database
from tasks.store.files import CHUNK_BYTES, FileStore, FileTooLarge, NewFile
from tasks.store.firmware import FirmwareRepository

FIRMWARE_TYPE = "1 Firmware Upgrade Image"  # TR-069 A.3.2.8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="firmware_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="store a firmware file and describe it",
                             description="Store FILE as a firmware image for campaigns; prints its id.")
    add.add_argument("file", type=Path, metavar="FILE")
    add.add_argument("--version", required=True, help="the SoftwareVersion the image installs")
    add.add_argument("--product-class", dest="product_classes", action="append", required=True,
                     metavar="P", help="a ProductClass the image fits (repeat for several)")
    add.add_argument("--vendor", default=None, help="the manufacturer OUI the image is for (default: any)")
    add.add_argument("--name", default=None, help="the file name devices see (default: FILE's name)")
    actions.add_parser("list", help="list firmware images", description="List firmware images, newest first.")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from acs.serve import run_with_database  # starts the local development database when no URI is set

    return await run_with_database(settings, lambda database: _run(args, settings, database))


async def _run(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    images = FirmwareRepository(database)
    await images.ensure_indexes()
    if args.firmware_action == "list":
        return await _list(images)
    try:
        body = FirmwareBody(file_id="0" * 32, version=args.version, product_classes=args.product_classes,
                            vendor=args.vendor)
    except ValidationError as exc:
        print(f"acs firmware: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    path: Path = args.file
    if not await asyncio.to_thread(path.is_file):
        print(f"acs firmware: no file {path}", file=sys.stderr)
        return 1
    files = FileStore(database)
    await files.ensure_indexes()
    new = NewFile(name=args.name or path.name, file_type=FIRMWARE_TYPE, content_type="application/octet-stream",
                  uploaded_by="cli", oui=args.vendor, version=args.version)
    now = datetime.now(UTC)
    try:
        stored = await files.put(_read(path), new, now, settings.max_file_bytes)
    except FileTooLarge as exc:
        print(f"acs firmware: {exc} (max_file_bytes)", file=sys.stderr)
        return 1
    image = await images.add(stored, body.version, body.product_classes, body.vendor, "cli", now)
    print(f"firmware image {image['_id']}: {image['name']} installs {image['version']} on "
          f"{', '.join(image['product_classes'])} ({image['size']} bytes, sha256 {image['sha256']})", file=sys.stderr)
    print(image["_id"])
    return 0


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(CHUNK_BYTES):
            yield piece


async def _list(images: FirmwareRepository) -> int:
    print(f"{'ID':32}  {'VERSION':20}  {'PRODUCT CLASSES':30}  {'SIZE':>10}  NAME")
    for image in await images.page(None, 500):
        print(f"{image['_id']:32}  {image['version']:20}  {','.join(image['product_classes']):30}  "
              f"{image['size']:>10}  {image['name']}")
    return 0
