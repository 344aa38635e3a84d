"""The ACS-wide device identifier built from the Inform's DeviceId (SPEC section 2).

`OUI-ProductClass-SerialNumber`, the ProductClass part omitted when empty, each part
percent-encoded keeping only RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~).

Known ambiguity: "-" is unreserved, so it is not encoded and a "-" inside a part looks like the
separator. OUI "00147F", ProductClass "A-B", serial "C" gives "00147F-A-B-C", the same string as
ProductClass "A", serial "B-C". The OUI never holds "-" (six hex digits), so the string always
starts unambiguously, and for a given OUI a collision needs two devices whose ProductClass and
SerialNumber split the same text differently, which real vendors do not do. We keep the SPEC's
format (operators read and type these ids) instead of also encoding "-"; the device registry
stores the identity fields and refuses a second device whose id collides with a stored one
(``tasks.store.devices.IdentityCollision``), so it cannot take over the first device's record.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# quote() keeps A-Z a-z 0-9 and "_.-~" when safe is empty: exactly RFC 3986 unreserved.
_UNRESERVED_ONLY = ""


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def encode_part(part: str) -> str:
    if _UNRESERVED.fullmatch(part):
        return part  # the usual OUI, product class and serial: nothing to encode
    return quote(part, safe=_UNRESERVED_ONLY, encoding="utf-8")


def make_device_id(oui: str, product_class: str, serial_number: str) -> str:
    parts = [oui, product_class, serial_number] if product_class else [oui, serial_number]
    return "-".join(encode_part(part) for part in parts)


# TR-069 Table 35 (DeviceIdStruct): OUI string(6), ProductClass string(64), SerialNumber string(64).
# OUI and SerialNumber identify the device, so neither may be empty.
IDENTITY_LIMITS = {"OUI": 6, "ProductClass": 64, "SerialNumber": 64}


def identity_problem(oui: str, product_class: str, serial_number: str) -> str | None:
    """Why this DeviceId cannot name a device, or None when it can."""
    values = {"OUI": oui, "ProductClass": product_class, "SerialNumber": serial_number}
    for name, limit in IDENTITY_LIMITS.items():
        if len(values[name]) > limit:
            return f"DeviceId {name} is {len(values[name])} characters long; TR-069 allows at most {limit}"
    for name in ("OUI", "SerialNumber"):
        if not values[name].strip():
            return f"DeviceId {name} is empty"
    return None
