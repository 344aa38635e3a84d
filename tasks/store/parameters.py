"""The ``parameters`` collection: the cached parameter tree of a device, one document per device.

The tree is stored nested, one MongoDB field per path segment, so a subtree is one field:
reading a prefix is a projection, deleting an object is one ``$unset``, and an update touches
only the leaves it names. Leaf attributes use keys starting with ``~``, which no TR-069 name
segment can contain (TR-106 3.1: names are letters, digits, ``_`` and ``-``).

Secret values (passwords, Wi-Fi keys, URLs with a password: ``tasks.secret_values``) are stored
sealed (``{"sealed": <Fernet token>}``) when the repository has the secret box; reads show them as
``***`` and only :meth:`ParameterRepository.reveal` opens one.

Large writes are linear: FerretDB 1.24 applies a ``$set`` of N dotted paths in time quadratic in
N (3,000 paths of one GetParameterValues answer took 82 s). Past ``MANY_PATHS`` paths the tree is
read, merged here and written back as the one field ``p``. Only the session holding the device's
lease writes its tree (the Inform, then the answers of that session's tasks), so the read and the
write see no other writer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from pymongo.errors import DuplicateKeyError

from tasks.secret_values import REDACTED, is_secret, shown
from tasks.secretbox import SecretBox
from tasks.store.db import Database, Document, flush_updates
from tasks.store.group_commit import Insert, Update

VALUE = "~v"
TYPE = "~t"
WRITABLE = "~w"
UPDATED = "~u"
LEAF = "~l"  # a parameter (not an object) known only by name: GetParameterNames gave no value or type
ATTRIBUTE_KEYS = frozenset({VALUE, TYPE, WRITABLE, UPDATED, LEAF})
ROOT = "p"
SEALED = "sealed"
# Above this many dotted paths one $set costs more on FerretDB than reading and rewriting the tree.
MANY_PATHS = 300


@dataclass(frozen=True)
class CachedParameter:
    name: str
    value: str | None
    type: str | None
    writable: bool | None
    updated_at: datetime | None

    def as_api(self) -> dict[str, Any]:
        return {"value": self.value, "type": self.type, "writable": self.writable, "updated_at": self.updated_at}


_NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")  # the alphabet above: nothing to encode


def _segment(part: str) -> str:
    # Real firmware sends odd names (a leading dot: ".ExternalIPAddress", Thomson 780); keep them
    # storable: percent-encode anything outside the TR-106 name alphabet, and empty segments.
    if _PLAIN_SEGMENT.fullmatch(part):
        return part  # nearly every segment: skip quote()'s per-character work
    return quote(part, safe=_NAME_ALPHABET) or "%"


def field_path(name: str) -> str:
    """``A.B.1.C`` -> ``p.A.B.1.C``; an object path ``A.B.`` -> ``p.A.B``."""
    parts = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return ".".join([ROOT, *(_segment(part) for part in parts)])


def _name(segments: list[str]) -> str:
    return ".".join("" if segment == "%" else unquote(segment) for segment in segments)


def _shown_value(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        return REDACTED if SEALED in value else None
    return shown(name, value)  # a secret cached before sealing existed is not shown either


def _walk(node: Document, segments: list[str]) -> Iterable[CachedParameter]:
    if VALUE in node or TYPE in node or LEAF in node:
        name = _name(segments)
        value = _shown_value(name, node.get(VALUE))
        yield CachedParameter(name, value, node.get(TYPE), node.get(WRITABLE), node.get(UPDATED))
    elif WRITABLE in node and segments:
        yield CachedParameter(_name(segments) + ".", None, "object", node[WRITABLE], node.get(UPDATED))
    # Children are walked under a leaf too: some firmware reports both ``X.A`` and ``X.A.B`` (an
    # Inform or a GetParameterValues answer naming a parameter and a deeper one under the same path).
    for key, child in node.items():
        if key not in ATTRIBUTE_KEYS and isinstance(child, dict):
            yield from _walk(child, [*segments, key])


class ParameterRepository:
    def __init__(self, database: Database, box: SecretBox | None = None) -> None:
        self._parameters = database.collection("parameters")
        self._writer = database.writer("parameters")  # an Inform's values, an answer's: group commit
        self._box = box

    def _stored(self, name: str, value: Any) -> Any:
        if self._box is not None and is_secret(name, value) and value not in ("", None):
            return {SEALED: self._box.encrypt(str(value))}
        return value

    async def reveal(self, device_id: str, name: str) -> str | None:
        """The clear value of one cached parameter (for an admin who asks on purpose), or None."""
        document = await self._parameters.find_one({"_id": device_id}, {field_path(name): 1})
        node: Any = document
        for segment in field_path(name).split("."):
            node = node.get(segment) if isinstance(node, dict) else None
        value = node.get(VALUE) if isinstance(node, dict) else None
        if isinstance(value, dict) and SEALED in value and self._box is not None:
            return self._box.decrypt(value[SEALED])
        return None if value is None or isinstance(value, dict) else str(value)

    async def ensure_indexes(self) -> None:
        """Every query is by ``_id`` (the device_id): the default index serves it."""

    async def set_values(
        self, device_id: str, values: Iterable[tuple[str, str, str]], now: datetime, *, replace: bool = False
    ) -> None:
        """Store (name, value, xsi type) triples reported by the device.

        ``replace`` drops the rest of the cached tree in the same write (after BOOTSTRAP).
        """
        update = self._value_paths(values, now)
        if replace:
            await self._writer.write(Update({"_id": device_id}, {"$set": {ROOT: _nest(update)}}, upsert=True))
        else:
            await self._set(device_id, update)

    async def set_first_values(self, device_id: str, values: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """The first tree of a device just stored (its first Inform): one insert, which FerretDB 1.24
        runs as one PostgreSQL transaction shared by every document of the group-committed command
        (an upsert is two of its own: docs/performance.md). A tree that exists after all (left by a
        device deleted and informing again) is replaced as at BOOTSTRAP."""
        update = self._value_paths(values, now)
        try:
            await self._writer.write(Insert({"_id": device_id, ROOT: _nest(update)}))
        except DuplicateKeyError:
            await self._writer.write(Update({"_id": device_id}, {"$set": {ROOT: _nest(update)}}, upsert=True))

    async def put_back(
        self, device_id: str, stamp: str, at: datetime, reported: Iterable[Sequence[str]], names: Iterable[str]
    ) -> None:
        """Values cached before a device accepted them (a BOOTSTRAP's provisioning, written with the
        Inform's tree) put back as the Inform reported them (``reported``: name, value, xsi type;
        the rest of ``names`` dropped), in one write, only while ``stamp``'s entry is still the one
        written at ``at``: a later tree (a new BOOTSTRAP's) or a read of it since is left alone."""
        triples = [(str(name), str(value), str(value_type)) for name, value, value_type in reported]
        update: Document = {"$set": self._value_paths(triples, at)} if triples else {}
        kept = {name for name, _, _ in triples}
        dropped = {field_path(name): "" for name in names if name not in kept}
        if dropped:
            update["$unset"] = dropped
        if update:
            condition = {"_id": device_id, f"{field_path(stamp)}.{UPDATED}": at}
            await self._writer.write(Update(condition, update))

    def _value_paths(self, values: Iterable[tuple[str, str, str]], now: datetime) -> Document:
        """``$set`` paths of (name, value, xsi type) triples; objects (a trailing dot) skipped."""
        update: Document = {}
        for name, value, value_type in values:
            if name.endswith("."):
                continue
            path = field_path(name)
            update[f"{path}.{VALUE}"] = self._stored(name, value)
            update[f"{path}.{TYPE}"] = value_type
            update[f"{path}.{UPDATED}"] = now
        return update

    async def set_names(self, device_id: str, names: Iterable[tuple[str, bool]], now: datetime) -> None:
        """Store (name, writable) pairs from GetParameterNames; objects end with a dot.

        A parameter is marked as one (TR-069 A.3.2.3: its name has no trailing dot) so that it
        is shown as a parameter before any value of it was read, never as an object.
        """
        update: Document = {}
        for name, writable in names:
            path = field_path(name)
            update[f"{path}.{WRITABLE}"] = writable
            if name.endswith("."):
                update[f"{path}.{UPDATED}"] = now
            else:
                update[f"{path}.{LEAF}"] = True
        await self._set(device_id, update)

    async def _set(self, device_id: str, update: Document) -> None:
        """``$set`` of dotted paths; many of them are merged into the stored tree here instead."""
        if not update:
            return
        if len(update) <= MANY_PATHS:
            await self._writer.write(Update({"_id": device_id}, {"$set": update}, upsert=True))
            return
        document = await self._parameters.find_one({"_id": device_id}, {ROOT: 1})
        tree = _nest(update, (document or {}).get(ROOT))
        await self._parameters.update_one({"_id": device_id}, {"$set": {ROOT: tree}}, upsert=True)

    async def delete_subtree(self, device_id: str, object_name: str) -> None:
        await self._writer.write(Update({"_id": device_id}, {"$unset": {field_path(object_name): ""}}))

    async def get(self, device_id: str, prefix: str = "") -> dict[str, CachedParameter]:
        projection = {field_path(prefix) if prefix else ROOT: 1}
        document = await self._parameters.find_one({"_id": device_id}, projection)
        return {} if document is None else _subtree(document, prefix)

    async def get_many(self, device_id: str, prefixes: Iterable[str]) -> dict[str, CachedParameter]:
        """Several subtrees in one query (one round trip, one document read on the server)."""
        wanted = list(prefixes)
        document = await self._parameters.find_one({"_id": device_id}, {field_path(prefix): 1 for prefix in wanted})
        found: dict[str, CachedParameter] = {}
        if document is not None:
            for prefix in wanted:
                found.update(_subtree(document, prefix))
        return found

    async def seal_clear_secrets(self, batch: int, budget: Callable[[], bool]) -> tuple[int, bool]:
        """Secret values cached in clear (before sealing existed) get sealed: one streamed pass over
        the collection, written ``batch`` updates at a time while ``budget()`` allows; how many values
        were sealed, and whether the pass reached the end. Each update names the clear value it read,
        so a value the device's session changed meanwhile is left to that session's own write."""
        if self._box is None:
            return 0, True
        sealed, complete = 0, True
        pending: list[Update] = []
        cursor = self._parameters.find({}, {ROOT: 1}, batch_size=batch)
        try:
            async for document in cursor:
                for path, value in _clear_secrets(document.get(ROOT), [ROOT]):
                    pending.append(Update({"_id": document["_id"], path: value},
                                          {"$set": {path: {SEALED: self._box.encrypt(value)}}}))
                if len(pending) >= batch:
                    sealed += await flush_updates(self._parameters, pending)
                    if not budget():
                        complete = False
                        break
        finally:
            await cursor.close()  # an open cursor holds one of FerretDB's PostgreSQL connections
        return sealed + await flush_updates(self._parameters, pending), complete

    async def exists(self, device_id: str) -> bool:
        return await self._parameters.count_documents({"_id": device_id}, limit=1) == 1


def _nest(dotted: Document, tree: Document | None = None) -> Document:
    """``{"p.A.B.~v": 1}`` -> ``{"A": {"B": {"~v": 1}}}``: the tree under ``p`` as one value.

    Given a stored ``tree``, the paths are set into it as ``$set`` would (a non-object on the way
    is replaced by an object).
    """
    tree = {} if not isinstance(tree, dict) else tree
    for path, value in dotted.items():
        *parents, leaf = path.split(".")[1:]
        node = tree
        for segment in parents:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = node[segment] = {}
            node = child
        node[leaf] = value
    return tree


def _clear_secrets(node: Any, path: list[str]) -> Iterator[tuple[str, str]]:
    """(stored path of the value, clear value) of every secret leaf not sealed yet under ``node``."""
    if not isinstance(node, dict):
        return
    value = node.get(VALUE)
    if isinstance(value, str) and value and is_secret(_name(path[1:]), value):
        yield ".".join([*path, VALUE]), value
    for key, child in node.items():
        if key not in ATTRIBUTE_KEYS:
            yield from _clear_secrets(child, [*path, key])


def _subtree(document: Document, prefix: str) -> dict[str, CachedParameter]:
    node: Any = document.get(ROOT, {})
    segments: list[str] = []
    if prefix:
        for segment in field_path(prefix).split(".")[1:]:
            node = node.get(segment) if isinstance(node, dict) else None
            segments.append(segment)
        if not isinstance(node, dict):
            return {}
    # A prefix naming a leaf yields that parameter; naming an object (with or without the
    # trailing dot) yields its subtree.
    return {parameter.name: parameter for parameter in _walk(node, segments)}
