"""Pure: the device fields that let the local database find devices by equality alone.

FerretDB 1.24 pushes down to PostgreSQL only a top-level equality (membership in a top-level
array included) and scans for anything else (``$regex``, ``$or``, ranges, sorts, counts). So the
registry writes, with each device:

- ``search``: normalized search tokens, lowercase: the device id, serial number, connection and
  WAN IP addresses, WAN MAC and tags, each whole and by prefix (from ``MIN_PREFIX`` characters; a
  MAC's prefixes by its digits), the serial number's suffixes (line 2 reads the last digits off
  the label), and the words of the device id and tags by prefix. A search is ``{search: token}``.
- ``search_of``: a digest of the facts (and ``VERSION``) the other fields were computed from, written
  with them: a stored device whose digest is its facts' has current fields, told without computing
  them (``stale``), so an Inform of a known device computes no tokens.
- ``page_bucket`` (0..``BUCKETS``-1, a hash of the device id), ``page_block``
  (``page_bucket // BLOCK_SIZE``) and ``page_group`` (``page_bucket // GROUP_SIZE``): large
  listings are read one partition at a time by equality instead of sorting the whole match set
  (``DeviceRepository.search_page``), at the level whose partitions are about a page or less.
- ``last_inform_slices``: the last inform's slices of time at three widths (hour, ten minutes,
  minute), written in the Inform's own ``$set`` beside ``last_inform``: the list sorted by last
  inform, newest first, reads them newest first (``tasks/store/newest_informs.py``) instead of
  reading and sorting every match.
- ``olt_inform_slices``: the same slices named by the device's OLT (``OLT-0195|h499033``, ...),
  and for the devices of the sample group (``page_group`` 0) the hour's and ten minutes' again as
  samples (``OLT-0195|s|h499033``): one equality reads exactly one OLT's devices of one slice (one
  index posting list; PostgreSQL has no plan to choose between the OLT's index and the slice's).

On MongoDB the same fields are served by ordinary multikey and single-field indexes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

# Of the tokens: a new version makes the backfill job pass over every device again
# (2: a whole IP address is no longer a prefix token of a longer one; the LAN MAC is a token;
# 3: ``page_block``; 4: ``last_inform_slices``, which the pass writes beside them; 5:
# ``olt_inform_slices``, likewise; 6: ``has_overrides``, the drift report's key to the devices with
# configuration overrides, likewise; 7: ``search_of``, which tells current fields without computing them).
VERSION = 7
OVERRIDES_SINCE = 6
BUCKETS = 4096
GROUP_SIZE = 64  # buckets per group: 64 groups
GROUPS = BUCKETS // GROUP_SIZE
BLOCK_SIZE = 8  # buckets per block: 512 blocks, 8 to a group
BLOCKS = BUCKETS // BLOCK_SIZE
MIN_PREFIX = 3
MIN_SUFFIX = 4
MAX_TOKEN = 64  # longer values are matched by their first 64 characters
WORD = re.compile(r"[^\W_]+")
MAC = re.compile(r"^[0-9A-Fa-f]{2}(?:[:-]?[0-9A-Fa-f]{2}){5}$")
PARTIAL_MAC = re.compile(r"^[0-9a-f]{2}(?:[:-][0-9a-f]{2}){1,4}[:-]?(?:[0-9a-f]{1,2})?$")
# Fields a search looks at; a device read with this projection is enough for search_fields().
FACTS = ("serial_number", "remote_ip", "wan_ip", "wan_mac", "lan_mac", "tags")
SEARCH_FIELDS = ("search", "page_bucket", "page_block", "page_group", "search_of")


# The last inform's slices: (name, seconds), each width a whole number of the next one's.
INFORM_SLICES = (("h", 3600), ("t", 600), ("m", 60))
INFORM_SLICES_FIELD = "last_inform_slices"


def inform_slice(level: int, epoch_seconds: int) -> str:
    """The slice of width ``INFORM_SLICES[level]`` holding that second: ``h493920`` (an hour), ..."""
    name, width = INFORM_SLICES[level]
    return f"{name}{epoch_seconds // width}"


def inform_slices(moment: datetime) -> dict[str, list[str]]:
    """``last_inform_slices`` for a last inform at ``moment`` (aware): one equality finds each slice."""
    seconds = int(moment.timestamp())
    return {INFORM_SLICES_FIELD: [inform_slice(level, seconds) for level in range(len(INFORM_SLICES))]}


OLT_SLICES_FIELD = "olt_inform_slices"
SAMPLE_GROUP = 0  # the devices of this ``page_group`` carry the samples' tokens too


def olt_slice(olt: str, level: int, number: int, *, sample: bool = False) -> str:
    """The token of one OLT's devices in one slice: ``OLT-0195|h499033``; its sample (the devices of
    ``SAMPLE_GROUP``, 1/64 of any OLT's): ``OLT-0195|s|h499033``."""
    return f"{olt}|{'s|' if sample else ''}{INFORM_SLICES[level][0]}{number}"


def olt_inform_slices(device_id: str, olt: Any, moment: Any) -> dict[str, list[str]]:
    """``olt_inform_slices`` of a device on OLT ``olt`` last informed at ``moment`` (aware): none
    without either. Minutes have no sample (the walk reads them whole)."""
    if not isinstance(olt, str) or not olt or not isinstance(moment, datetime):
        return {OLT_SLICES_FIELD: []}
    seconds = int(moment.timestamp())
    tokens = [olt_slice(olt, level, seconds // width) for level, (_, width) in enumerate(INFORM_SLICES)]
    if page_bucket(device_id) // GROUP_SIZE == SAMPLE_GROUP:
        tokens += [olt_slice(olt, level, seconds // INFORM_SLICES[level][1], sample=True)
                   for level in range(len(INFORM_SLICES) - 1)]
    return {OLT_SLICES_FIELD: tokens}


def normal_mac(text: str) -> str | None:
    """``AA:BB:CC:DD:EE:FF`` from any usual spelling; None for anything else or the all-zero MAC."""
    text = text.strip()
    if not MAC.fullmatch(text):
        return None
    digits = re.sub(r"[:-]", "", text).upper()
    return None if digits == "0" * 12 else ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normal_query(text: str) -> str:
    """What a search term is looked up as: lowercase, trimmed, a MAC in its stored spelling."""
    text = text.strip()
    mac = normal_mac(text)
    if mac is not None:
        return mac.lower()
    text = text.lower()[:MAX_TOKEN]
    if PARTIAL_MAC.fullmatch(text):  # the start of a MAC with separators: its digits
        return re.sub(r"[:-]", "", text)
    return text


def page_bucket(device_id: str) -> int:
    """A stable hash of the device id in 0..BUCKETS-1 (not Python's hash(): it differs per process)."""
    return int.from_bytes(hashlib.blake2b(device_id.encode(), digest_size=4).digest(), "big") % BUCKETS


def _prefixes(value: str) -> Iterable[str]:
    value = value[:MAX_TOKEN]
    yield value
    yield from (value[:n] for n in range(MIN_PREFIX, len(value)))


WHOLE_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")


def _address_prefixes(address: str) -> Iterable[str]:
    """An IP address by prefix, except prefixes that are whole addresses themselves: 10.64.1.1 finds
    10.64.1.1, not 10.64.1.10..199 (10.64.1. still finds them all)."""
    return (prefix for prefix in _prefixes(address) if prefix == address or not WHOLE_IPV4.fullmatch(prefix))


def search_tokens(device_id: str, facts: Mapping[str, Any]) -> list[str]:
    """Every token a search for this device may be typed as (sorted, unique)."""
    tokens: set[str] = set()

    def whole_and_words(value: str) -> None:
        value = value.strip().lower()
        if not value:
            return
        tokens.update(_prefixes(value))
        for word in WORD.findall(value):
            tokens.update(_prefixes(word))

    # The device id whole, and its words (OUI, product class, serial) by prefix: its own prefixes
    # would only repeat the OUI's.
    tokens.add(device_id.strip().lower()[:MAX_TOKEN])
    for word in WORD.findall(device_id.lower()):
        tokens.update(_prefixes(word))
    for tag in facts.get("tags") or []:
        if isinstance(tag, str):
            whole_and_words(tag)
    serial = facts.get("serial_number")
    if isinstance(serial, str) and serial.strip():
        serial = serial.strip().lower()[:MAX_TOKEN]
        tokens.update(_prefixes(serial))
        tokens.update(serial[-n:] for n in range(MIN_SUFFIX, len(serial)))
    for field in ("remote_ip", "wan_ip"):
        address = facts.get(field)
        if isinstance(address, str) and address.strip():
            tokens.update(_address_prefixes(address.strip().lower()))
    for field in ("wan_mac", "lan_mac"):
        mac = facts.get(field)
        if isinstance(mac, str) and (normal := normal_mac(mac)):
            tokens.add(normal.lower())  # typed with separators: whole (a partial one is looked up by its digits)
            tokens.update(_prefixes(normal.replace(":", "").lower()))
    return sorted(tokens)


def search_fields(device_id: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The four fields above for one device, from its facts (an Inform's, or the stored device), and
    ``search_of``: which facts they were computed from (``facts_digest``)."""
    bucket = page_bucket(device_id)
    return {"search": search_tokens(device_id, facts), "page_bucket": bucket, "page_block": bucket // BLOCK_SIZE,
            "page_group": bucket // GROUP_SIZE, "search_of": facts_digest(device_id, facts)}


def facts_digest(device_id: str, facts: Mapping[str, Any]) -> str:
    """A short hash of what ``search_fields`` reads of ``facts``, and of this code's ``VERSION``: a stored
    device whose ``search_of`` equals its facts' has current fields, told in 2 µs where computing them
    takes 25 (each Inform checks)."""
    return hashlib.blake2b(repr((VERSION, facts_key(device_id, facts))).encode(), digest_size=8).hexdigest()


def facts_key(device_id: str, facts: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything of ``facts`` that search_fields() reads: equal keys give equal fields."""
    return (device_id, *(facts.get(name) for name in FACTS if name != "tags"), tuple(facts.get("tags") or ()))


def stale(device: Mapping[str, Any], computed: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The search fields to write when a stored device's are not those of its facts; None when current.

    ``computed``: ``search_fields`` of facts the device may have (a BOOTSTRAP computes them for its
    upsert's insert), used when their ``search_of`` says they are the device's facts'.
    """
    device_id = device["_id"]
    digest = facts_digest(device_id, device)
    if device.get("search_of") == digest and all(name in device for name in SEARCH_FIELDS):
        # Current: the fields are always written together with their ``search_of``, so a stored set
        # whose digest is that of the device's facts now was computed from the same facts.
        return None
    # Otherwise the stored ``search_of`` (or a field) differs from what the facts give: all are written.
    return computed if computed is not None and computed["search_of"] == digest else search_fields(device_id, device)
