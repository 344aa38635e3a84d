"""Is a value valid for a TR-069 parameter type? One check for the API, the console and the queue.

TR-069 A.3.2.1 (SetParameterValues) sends each value with its ``xsi:type``; TR-106 3.2 defines
the types' ranges. A value the type cannot hold is refused before a task is stored, with the
reason, instead of being sent and answered by fault 9007.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

INTEGER_RANGES = {
    "xsd:int": (-(2**31), 2**31 - 1),
    "xsd:unsignedInt": (0, 2**32 - 1),
    "xsd:long": (-(2**63), 2**63 - 1),
    "xsd:unsignedLong": (0, 2**64 - 1),
}
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # XML Schema 3.2.2 lexical forms
INTEGER = re.compile(r"[+-]?\d+")
HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class InvalidValue(ValueError):
    """The value cannot be of the parameter's type; the message says why, for an operator."""


def checked_value(value: str | int | bool, value_type: str) -> str | int | bool:
    """The value as the type holds it (an int, a bool, else the text), or :class:`InvalidValue`."""
    if value_type in INTEGER_RANGES:
        return _integer(value, value_type)
    if value_type == "xsd:boolean":
        return _boolean(value)
    text = value if isinstance(value, str) else _shown(value) if isinstance(value, bool) else str(value)
    if value_type == "xsd:dateTime":
        _date_time(text)
    elif value_type == "xsd:base64Binary":
        _base64(text)
    elif value_type == "xsd:hexBinary" and not HEX.fullmatch(text):
        raise InvalidValue(f"{_shown(value)} is not hexadecimal bytes ({value_type})")
    return value


def _shown(value: str | int | bool) -> str:
    return "true" if value is True else "false" if value is False else repr(value)


def _integer(value: str | int | bool, value_type: str) -> int | str:
    low, high = INTEGER_RANGES[value_type]
    if isinstance(value, bool) or (isinstance(value, str) and not INTEGER.fullmatch(value.strip())):
        raise InvalidValue(f"{_shown(value)} is not an integer in {low}..{high} ({value_type})")
    number = int(value)
    if not low <= number <= high:
        raise InvalidValue(f"{number} is outside {low}..{high} ({value_type})")
    return number if number < 2**63 else str(number)  # an unsignedLong past int64 travels as text


def _boolean(value: str | int | bool) -> bool:
    if isinstance(value, bool):
        return value
    found = BOOLEANS.get(str(value).strip().lower())
    if found is None:
        raise InvalidValue(f"{_shown(value)} is not a boolean (true, false, 1 or 0) (xsd:boolean)")
    return found


def _date_time(text: str) -> None:
    try:
        datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(f"{text!r} is not an ISO 8601 date and time (xsd:dateTime)") from None


def _base64(text: str) -> None:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"{text!r} is not base64 (xsd:base64Binary)") from None
