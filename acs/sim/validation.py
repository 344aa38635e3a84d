"""Does a value fit a parameter's data-model type? (TR-069 A.2.1 types, TR-106 constraints)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from acs.sim.profile import ParamSpec

INTEGER_RANGES = {
    "int": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsignedLong": (0, 2**64 - 1),
}
BOOLEANS = {"true": "true", "1": "true", "false": "false", "0": "false"}
HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")
# Declared xsi:types a CPE accepts for each parameter type. Most ACSs send xsd:string for
# everything, and real CPEs accept that, so "string" is always allowed.
COMPATIBLE = {
    "int": {"int"},
    "unsignedInt": {"unsignedInt", "int"},
    "long": {"long", "int"},
    "unsignedLong": {"unsignedLong", "unsignedInt"},
}


def type_accepted(spec: ParamSpec, declared: str) -> bool:
    """False when the ACS declared an xsi:type that cannot be this parameter's (fault 9006)."""
    wire = declared.removeprefix("xsd:")
    return wire in {"", "string", "anySimpleType", spec.type} or wire in COMPATIBLE.get(spec.type, set())


def normalize(spec: ParamSpec, value: str) -> str | None:
    """The value as the device stores it, or None when it is invalid for the type (fault 9007)."""
    text = value.strip() if spec.type != "string" else value
    checker = {
        "boolean": _boolean,
        "dateTime": _date_time,
        "base64": _base64,
        "hexBinary": _hex,
        "decimal": _decimal,
    }.get(spec.type)
    if spec.type in INTEGER_RANGES:
        return _integer(spec, text)
    if checker is not None:
        return checker(text)
    return _string(spec, text)


def _integer(spec: ParamSpec, text: str) -> str | None:
    if not re.fullmatch(r"[+-]?\d+", text):
        return None
    number = int(text)
    low, high = INTEGER_RANGES[spec.type]
    low = spec.minimum if spec.minimum is not None else low
    high = spec.maximum if spec.maximum is not None else high
    return str(number) if low <= number <= high else None


def _boolean(text: str) -> str | None:
    return BOOLEANS.get(text.lower())


def _date_time(text: str) -> str | None:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return text


def _base64(text: str) -> str | None:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return text


def _hex(text: str) -> str | None:
    return text if HEX.match(text) else None


def _decimal(text: str) -> str | None:
    return text if re.fullmatch(r"[+-]?\d+(\.\d+)?", text) else None


def _string(spec: ParamSpec, text: str) -> str | None:
    if spec.max_length is not None and len(text) > spec.max_length:
        return None
    if spec.enumeration is not None and text not in spec.enumeration:
        return None
    return text
