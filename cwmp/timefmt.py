"""xsd:dateTime as CWMP uses it (TR-069 A.2.1: "Unknown Time" is 0001-01-01T00:00:00Z)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

UNKNOWN_TIME = "0001-01-01T00:00:00Z"
_UNKNOWN = datetime(1, 1, 1)

# xs:dateTime lexical form (years 0001-9999, optional fraction and zone). Python's
# fromisoformat alone also accepts forms the XSD does not (week dates, "T24:00").
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?$")


def parse_time(text: str) -> datetime | None:
    """A CWMP time, or None for Unknown Time and for values a device got wrong.

    Firmware quirks tolerated: no zone (taken as UTC; Cisco femto, AVM), the impossible
    0000-00-00T00:00:00 (Thomson SpeedTouch 780) and year-1 dates with or without "Z".
    """
    text = text.strip()
    if not _DATETIME.match(text):
        return None
    try:
        value = datetime.fromisoformat(_trim_fraction(text.replace("Z", "+00:00")))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return None if value.replace(tzinfo=None) == _UNKNOWN else value


_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def _trim_fraction(text: str) -> str:
    # fromisoformat wants at most 6 fractional digits; devices may send more.
    return _LONG_FRACTION.sub(r"\1", text) if "." in text else text


def format_time(value: datetime | None) -> str:
    """Wire form: Unknown Time for None, "Z" for UTC, the offset otherwise."""
    if value is None:
        return UNKNOWN_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
