"""What differs between a device's effective configuration and what the ACS knows of the device.
Pure.

The cache is the truth for plain values (a value not in the cache is *unknown* and is simply set:
one SetParameterValues costs the same round trip as reading it first). Object tables are different:
adding an instance blindly could create a second one, so a table the cache knows nothing about is
read first (``refresh``) and planned again. Secrets read back empty (TR-069 A.3.2.2), so a secret
is in sync when the device accepted this very value before (an HMAC kept in the device's memory,
cleared by BOOTSTRAP). A value the device refused is left out until the desired value changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schemas.profiles import Value
from tasks.profiles.layering import Configuration, Desired, Watched

INTEGER_TYPES = ("xsd:int", "xsd:unsignedInt", "xsd:long", "xsd:unsignedLong")
Digest = Callable[[str, Value], str]


class Cached(Protocol):
    @property
    def value(self) -> str | None: ...

    @property
    def type(self) -> str | None: ...


@dataclass(frozen=True)
class Memory:
    """What the ACS remembers of earlier applications to one device (its ``configuration`` state)."""

    refused: frozenset[str] = frozenset()  # digests of (name, value) the device refused
    secrets: frozenset[str] = frozenset()  # digests of (name, value) secrets the device accepted
    watch_key: str | None = None  # the notification attributes already set (their digest)


@dataclass(frozen=True)
class Change:
    name: str
    desired: Desired
    actual: str | None  # None: not in the cache
    type: str | None  # the xsi:type to send

    @property
    def known(self) -> bool:
        return self.actual is not None


@dataclass(frozen=True)
class Drift:
    changes: list[Change] = field(default_factory=list)
    adds: list[tuple[str, dict[str, Desired]]] = field(default_factory=list)  # (table, values) per instance
    deletes: list[str] = field(default_factory=list)  # instance paths
    refresh: list[str] = field(default_factory=list)  # tables to read before planning them
    watch: list[Watched] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)  # left out: refused by the device before
    missing: list[str] = field(default_factory=list)  # tables the device said it does not have (9005)
    watch_key: str | None = None

    @property
    def in_sync(self) -> bool:
        return not (self.changes or self.adds or self.deletes or self.refresh or self.watch)


def normalized(value: Value | str | None, kind: str | None) -> str | None:
    """Values as TR-069 compares them: booleans ``1``/``true``, integers without leading zeros."""
    if value is None:
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
    if kind == "xsd:boolean" or isinstance(value, bool):
        lowered = text.lower()
        return "true" if lowered in ("1", "true") else "false" if lowered in ("0", "false") else text
    if kind in INTEGER_TYPES or (isinstance(value, int) and not isinstance(value, bool)):
        return str(int(text)) if re.fullmatch(r"[+-]?\d+", text) else text
    return text


def wire_type(desired: Desired, cached: Cached | None) -> str | None:
    """The alias's type, else the cached one, else one that fits the value (strings: the dispatcher's
    cached type, else xsd:string)."""
    if desired.type:
        return desired.type
    if cached is not None and cached.type and cached.type != "object":
        return cached.type
    if isinstance(desired.value, bool):
        return "xsd:boolean"
    if isinstance(desired.value, int):
        return "xsd:unsignedInt" if desired.value >= 0 else "xsd:int"
    return None


def _in_sync(desired: Desired, cached: Cached | None, memory: Memory, digest: Digest) -> bool:
    if desired.secret:
        return digest(desired.name, desired.value) in memory.secrets
    if cached is None or cached.value is None:
        return False
    kind = desired.type or cached.type
    return normalized(cached.value, kind) == normalized(desired.value, kind)


def instances(table: str, cache: Mapping[str, Cached]) -> list[int] | None:
    """Instance numbers of ``table`` the cache knows; None when it knows nothing of the table."""
    known = False
    numbers: set[int] = set()
    for name in cache:
        if not name.startswith(table):
            continue
        known = True
        head = name[len(table) :].split(".", 1)[0]
        if head.isdigit():
            numbers.add(int(head))
    return sorted(numbers) if known else None


def table_digest(table: str, digest: Digest) -> str:
    """How a table the device does not have is remembered among the refusals."""
    return digest(table, "<table>")


def drift(
    config: Configuration,
    cache: Mapping[str, Cached],
    memory: Memory,
    digest: Digest,
    read_tables: frozenset[str] = frozenset(),
) -> Drift:
    """``read_tables``: tables just read by GetParameterNames (NextLevel true lists no instance of
    an empty table, so the cache alone cannot tell "empty" from "unknown")."""
    result = Drift(watch_key=watch_digest(config))
    for name, desired in sorted(config.parameters.items()):
        _compare(result, name, desired, cache.get(name), memory, digest)
    for table, wanted in sorted(config.objects.items()):
        if table_digest(table, digest) in memory.refused:
            result.missing.append(table)
            continue
        present = instances(table, cache)
        if present is None and table in read_tables:
            present = []
        if present is None:
            result.refresh.append(table)
            continue
        for ordinal, number in enumerate(present[: wanted.count], start=1):
            for relative, desired in wanted.values_of(ordinal).items():
                full = f"{table}{number}.{relative}"
                _compare(result, full, _named(desired, full), cache.get(full), memory, digest)
        missing = range(len(present) + 1, wanted.count + 1)
        result.adds.extend((table, wanted.values_of(ordinal)) for ordinal in missing)
        if wanted.exact:
            result.deletes.extend(f"{table}{number}." for number in present[wanted.count :])
    if config.watch and memory.watch_key != result.watch_key:
        result.watch.extend(config.watch[name] for name in sorted(config.watch))
    return result


def _named(desired: Desired, full: str) -> Desired:
    return Desired(full, desired.value, desired.type, desired.source, desired.alias)


def _compare(result: Drift, name: str, desired: Desired, cached: Cached | None, memory: Memory, digest: Digest) -> None:
    if _in_sync(desired, cached, memory, digest):
        return
    actual = None if cached is None else cached.value
    change = Change(name, desired, actual, wire_type(desired, cached))
    if digest(name, desired.value) in memory.refused:
        result.refused.append(change)
    else:
        result.changes.append(change)


def watch_digest(config: Configuration) -> str | None:
    if not config.watch:
        return None
    import hashlib

    text = ";".join(f"{name}={w.notification}" for name, w in sorted(config.watch.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
