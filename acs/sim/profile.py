"""Vendor profiles: the immutable, shared part of every simulated device of one model.

A profile is loaded once per process from `acs/sim/profiles/<name>.json` (built by
`python -m acs.sim.profiles.build`) and shared by all its devices, which keep only their own
overrides (see tree.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_NAMES: tuple[str, ...] = ("huawei-hg8245", "zte-f660", "tr181-gateway")
INDEX = re.compile(r"\.\d+(?=\.|$)")
INTEGER_TYPES = frozenset({"int", "unsignedInt", "long", "unsignedLong"})


@cache
def generic_name(name: str) -> str:
    """ "A.LANDevice.1.Hosts.Host.3.IPAddress" -> "A.LANDevice.{i}.Hosts.Host.{i}.IPAddress"."""
    return INDEX.sub(".{i}", name)


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Data-model order: instance numbers numerically, an object before everything below it."""
    return [(0, int(part)) if part.isdigit() else (1, part) if part else (-1, "") for part in name.split(".")]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    type: str  # wire type without "xsd:"
    writable: bool
    default: str
    enumeration: frozenset[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    is_list: bool = False

    @property
    def xsd_type(self) -> str:
        return "xsd:" + self.type


@dataclass(frozen=True, slots=True)
class Identity:
    manufacturer: str
    ouis: tuple[str, ...]
    product_class: str
    model_name: str
    hardware_version: str
    software_versions: tuple[str, ...]
    bad_firmware: str
    serial_format: str
    ssid_prefix: str
    user_agent: str


class Profile:
    """One vendor model: data-model subset, factory values, and which values are computed live."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.name: str = document["name"]
        self.description: str = document["description"]
        self.root: str = document["root"]
        identity = document["identity"]
        self.identity = Identity(
            manufacturer=identity["manufacturer"],
            ouis=tuple(identity["ouis"]),
            product_class=identity["product_class"],
            model_name=identity["model_name"],
            hardware_version=identity["hardware_version"],
            software_versions=tuple(identity["software_versions"]),
            bad_firmware=identity["bad_firmware"],
            serial_format=identity["serial_format"],
            ssid_prefix=identity["ssid_prefix"],
            user_agent=identity["user_agent"],
        )
        self.roles: MappingProxyType[str, str] = MappingProxyType(dict(document["roles"]))
        # generic object path -> AddObject/DeleteObject allowed (multi-instance tables end ".{i}.")
        self.objects: MappingProxyType[str, bool] = MappingProxyType(
            {name: bool(flag) for name, flag in document["objects"].items()}
        )
        self.specs: MappingProxyType[str, ParamSpec] = MappingProxyType(
            {name: _spec(entry) for name, entry in document["parameters"].items()}
        )
        self.dynamic: MappingProxyType[str, str] = MappingProxyType(dict(document["dynamic"]))
        self.inform_parameters: tuple[str, ...] = tuple(document["inform_parameters"])
        self.diagnostics: MappingProxyType[str, str] = MappingProxyType(dict(document["diagnostics"]))
        self.base = BaseTree(
            self, [row[0] for row in document["tree"]], {row[0]: row[1] for row in document["tree"] if len(row) > 1}
        )

    def spec(self, name: str) -> ParamSpec | None:
        return self.specs.get(generic_name(name))

    def table_writable(self, table: str) -> bool:
        """Whether AddObject is allowed on a table path such as "...WANPPPConnection."."""
        return self.objects.get(generic_name(table) + "{i}.", False)

    def is_table(self, path: str) -> bool:
        return generic_name(path) + "{i}." in self.objects

    def child_template(self, table: str) -> list[tuple[str, str]]:
        """Relative names and defaults of a new instance of `table` (params and nested objects)."""
        prefix = generic_name(table) + "{i}."
        rows: list[tuple[str, str]] = []
        for obj in self.objects:
            if obj.startswith(prefix) and obj != prefix and "{i}" not in obj[len(prefix) : -len("{i}.")]:
                relative = obj[len(prefix) :]
                rows.append((relative.removesuffix("{i}."), ""))
        for name, spec in self.specs.items():
            relative = name[len(prefix) :]
            if name.startswith(prefix) and "{i}" not in relative:
                rows.append((relative, spec.default))
        return rows


def _spec(entry: list[Any]) -> ParamSpec:
    constraints: dict[str, Any] = entry[3] if len(entry) > 3 else {}
    enum = constraints.get("enum")
    return ParamSpec(
        type=entry[0],
        writable=bool(entry[1]),
        default=entry[2],
        enumeration=frozenset(enum) if enum else None,
        minimum=constraints.get("min"),
        maximum=constraints.get("max"),
        max_length=constraints.get("len"),
        is_list=bool(constraints.get("list", False)),
    )


class BaseTree:
    """The factory parameter tree of a profile: names in data-model order, values, subtree ranges."""

    def __init__(self, profile: Profile, names: list[str], values: dict[str, str]) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.position: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.values: dict[str, str] = {}
        for name in self.names:
            if not name.endswith("."):
                spec = profile.spec(name)
                self.values[name] = values.get(name, spec.default if spec else "")
        self.subtree_end: dict[str, int] = _subtree_ends(self.names)

    def subtree(self, path: str) -> tuple[str, ...]:
        """`path` itself (an object, ending with ".") and everything below it, in order."""
        start = self.position.get(path)
        if start is None:
            return ()
        return self.names[start : self.subtree_end[path]]


def _subtree_ends(names: tuple[str, ...]) -> dict[str, int]:
    ends: dict[str, int] = {}
    open_objects: list[str] = []
    for i, name in enumerate(names):
        while open_objects and not name.startswith(open_objects[-1]):
            ends[open_objects.pop()] = i
        if name.endswith("."):
            open_objects.append(name)
    for obj in open_objects:
        ends[obj] = len(names)
    return ends


@cache
def load_profile(name: str) -> Profile:
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILE_NAMES)})")
    with (PROFILE_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        return Profile(json.load(handle))
