"""Does a profile's selector take this device (and its subscriber record)? Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from schemas.profiles import Selector


@dataclass(frozen=True)
class DeviceFacts:
    """What selectors and templates read of a device (its stored document)."""

    device_id: str
    oui: str
    product_class: str
    serial_number: str
    software_version: str
    tags: frozenset[str]
    root: str

    @classmethod
    def of(cls, device: Mapping[str, Any]) -> DeviceFacts:
        return cls(
            device_id=str(device["_id"]),
            oui=str(device.get("oui") or ""),
            product_class=str(device.get("product_class") or ""),
            serial_number=str(device.get("serial_number") or ""),
            software_version=str(device.get("software_version") or ""),
            tags=frozenset(device.get("tags") or ()),
            root=str(device.get("root") or "InternetGatewayDevice."),
        )


def matches_device(selector: Selector, device: DeviceFacts) -> bool:
    """The criteria that need no subscriber record."""
    if selector.oui and device.oui.upper() not in {oui.upper() for oui in selector.oui}:
        return False
    if selector.product_class and device.product_class not in selector.product_class:
        return False
    if selector.software_version and not any(
        fnmatchcase(device.software_version, pattern) for pattern in selector.software_version
    ):
        return False
    return set(selector.tags) <= device.tags


def matches_subscriber(selector: Selector, subscriber: Mapping[str, Any] | None) -> bool:
    if selector.has_subscriber is not None and selector.has_subscriber != (subscriber is not None):
        return False
    for field, wanted in selector.subscriber.items():
        if subscriber is None:
            return False
        value = subscriber.get(field)
        present = value not in (None, "")
        if wanted == "*" and not present:
            return False
        if wanted != "*" and str(value if value is not None else "") != wanted:
            return False
    return True


def matches(selector: Selector, device: DeviceFacts, subscriber: Mapping[str, Any] | None) -> bool:
    return matches_device(selector, device) and matches_subscriber(selector, subscriber)
