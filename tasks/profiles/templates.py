"""Values that are templates over the device and its subscriber record. Pure.

``{{ subscriber.pppoe_login }}``, ``{{ subscriber.voip.1.number }}``, ``{{ device.serial_number }}``
(``id``, ``oui``, ``product_class``, ``serial_number``, ``software_version``) and
``{{ parameter.<path> }}`` (the device's cached value). In an object's values, ``#`` is the instance's
ordinal (1 for the table's first instance in instance-number order), so ``{{ subscriber.voip.#.number }}``
gives each VoIP line its own number. A value that is one template keeps the
type of what it names (a VLAN stays a number); a missing field makes the value unresolved, and the
setting is left out and reported rather than sent empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.profiles import Value
from tasks.profiles.selector import DeviceFacts

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.(?:[A-Za-z0-9_\-]+|#))*)\s*\}\}")
ORDINAL = "#"


class Unresolved(ValueError):
    """A template names something the device or its subscriber record does not have."""


@dataclass(frozen=True)
class TemplateContext:
    device: DeviceFacts
    subscriber: Mapping[str, Any] | None
    cached: Mapping[str, str]  # parameter name -> cached value (for ``parameter.<path>``)
    ordinal: int | None = None  # the object instance a value is for (``#``), None outside objects

    def lookup(self, reference: str) -> Value:
        reference = self._numbered(reference)
        scope, _, rest = reference.partition(".")
        if scope == "device":
            return self._device(rest)
        if scope == "subscriber":
            return self._subscriber(rest)
        if scope == "parameter":
            value = self.cached.get(rest)
            if value is None:
                raise Unresolved(f"{{{{ {reference} }}}}: the device's value is not known")
            return value
        raise Unresolved(f"{{{{ {reference} }}}}: templates name device.*, subscriber.* or parameter.*")

    def _numbered(self, reference: str) -> str:
        parts = reference.split(".")
        if ORDINAL not in parts:
            return reference
        if self.ordinal is None:
            raise Unresolved(f"{{{{ {reference} }}}}: '#' (the instance's ordinal) is only known in an object's values")
        return ".".join(str(self.ordinal) if part == ORDINAL else part for part in parts)

    def _device(self, field: str) -> Value:
        values = {
            "id": self.device.device_id,
            "oui": self.device.oui,
            "product_class": self.device.product_class,
            "serial_number": self.device.serial_number,
            "software_version": self.device.software_version,
        }
        if field not in values:
            raise Unresolved(f"{{{{ device.{field} }}}}: known fields are {sorted(values)}")
        return values[field]

    def _subscriber(self, field: str) -> Value:
        if self.subscriber is None:
            raise Unresolved(f"{{{{ subscriber.{field} }}}}: the device has no subscriber record")
        node: Any = self.subscriber
        for part in field.split("."):
            if isinstance(node, list) and part.isdigit() and 1 <= int(part) <= len(node):
                node = node[int(part) - 1]  # voip.1 is the first line, as TR-104 numbers them
            elif isinstance(node, Mapping):
                node = node.get(part)
            else:
                node = None
            if node is None:
                break
        if node is None or node == "" or isinstance(node, Mapping | list):
            raise Unresolved(f"{{{{ subscriber.{field} }}}}: not set in the subscriber record")
        return node if isinstance(node, bool | int) else str(node)


def is_template(value: Value) -> bool:
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def uses_ordinal(value: Value) -> bool:
    """Whether the value differs per object instance (a placeholder names ``#``)."""
    return isinstance(value, str) and any(ORDINAL in ref.split(".") for ref in PLACEHOLDER.findall(value))


def render(value: Value, context: TemplateContext) -> Value:
    """The value with its placeholders filled in; raises Unresolved."""
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return context.lookup(whole.group(1))
    return PLACEHOLDER.sub(lambda match: _text(context.lookup(match.group(1))), value)


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def referenced_parameters(value: Value) -> list[str]:
    """Paths a value reads from the cache (``parameter.<path>``), to read them with the rest."""
    if not isinstance(value, str):
        return []
    return [ref.partition(".")[2] for ref in PLACEHOLDER.findall(value) if ref.startswith("parameter.")]


def needs_subscriber(value: Value) -> bool:
    return isinstance(value, str) and any(ref.startswith("subscriber.") for ref in PLACEHOLDER.findall(value))
