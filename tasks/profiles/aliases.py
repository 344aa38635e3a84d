"""Data-model aliases: ``wifi.ssid`` -> the TR-098 or TR-181 path of a device (``aliases.json``).

A name that is not an alias must be a full path under the device's own root; a path of the
other data model, or an alias with no mapping for the device, is *not mapped* (reported, never
guessed). Vendor entries replace a path for the OUIs they list (a vendor's WAN layout or X_ field).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

TR098_ROOT = "InternetGatewayDevice."
TR181_ROOT = "Device."


def model_of(root: str) -> str:
    """``tr098`` or ``tr181`` from the data-model root the device informs with."""
    return "tr181" if root == TR181_ROOT else "tr098"


class NotMapped(ValueError):
    """A setting that has no path on this device (its data model or vendor lacks it)."""


@dataclass(frozen=True)
class Field:
    path: str
    type: str | None


@dataclass(frozen=True)
class Resolved:
    path: str  # full parameter path, or object table path ending in "."
    type: str | None = None
    alias: str | None = None
    fields: dict[str, Field] = field(default_factory=dict)  # an aliased table's relative names


@dataclass(frozen=True)
class AliasTable:
    aliases: dict[str, dict[str, Any]]
    vendors: list[dict[str, Any]]

    @classmethod
    def default(cls) -> AliasTable:
        text = resources.files("tasks.profiles").joinpath("aliases.json").read_text(encoding="utf-8")
        return cls.from_document(json.loads(text))

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> AliasTable:
        return cls(dict(document.get("aliases") or {}), list(document.get("vendors") or []))

    def is_alias(self, name: str) -> bool:
        return name in self.aliases

    def resolve(self, name: str, root: str, oui: str = "") -> Resolved:
        """The path of ``name`` on a device of this root and OUI; NotMapped when it has none."""
        entry = self.aliases.get(name)
        if entry is None:
            if not name.startswith(root):
                other = TR181_ROOT if root == TR098_ROOT else TR098_ROOT
                why = "a path of the other data model" if name.startswith(other) else "not an alias"
                raise NotMapped(f"{name}: {why} (device root {root})")
            return Resolved(name)
        model = model_of(root)
        path = self._vendor_path(name, oui) or entry.get(model)
        if not path:
            raise NotMapped(f"{name}: no {model.upper().replace('TR', 'TR-')} path for this device")
        fields = {
            key: Field(str(spec.get(model) or spec.get("path")), spec.get("type"))
            for key, spec in (entry.get("fields") or {}).items()
            if spec.get(model) or spec.get("path")
        }
        return Resolved(str(path), entry.get("type"), name, fields)

    def _vendor_path(self, name: str, oui: str) -> str | None:
        for vendor in self.vendors:
            if oui.upper() in (o.upper() for o in vendor.get("oui") or []):
                path = (vendor.get("paths") or {}).get(name)
                if path:
                    return str(path)
        return None

    def names(self) -> list[str]:
        return sorted(self.aliases)
