"""Pure incident logic: what each device shares, which groups are affected beyond their baseline.

A device is *affected* when it is offline, critical (by its last definite health read: a failed
read is not a recovery), or failed a task; the signal is *fresh* when it began within the
detection window. Devices are grouped by what they share, most specific
cause first: PON port, OLT, software version, product class, region tag, IP subnet. A group is a
candidate when at least ``min_devices`` of it are freshly affected and the fresh share exceeds
the group's own baseline (its usual share, a moving average) by ``min_share``.

One problem must give one incident: candidates are taken largest first (ties: the larger share,
then the more specific dimension), and the devices a chosen group explains no longer count for
the others, nor do the members of incidents already open: a firmware incident does not become an
OLT one as well when its devices grow to a third of their OLT. A PON port's incident is keyed by
its OLT, so several dark PONs of one OLT make one incident.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasks.health.evaluate import definite_of

DIMENSIONS = ("pon", "olt", "software_version", "product_class", "region", "subnet")
OFFLINE, CRITICAL, FAILING = "offline", "critical", "failing_tasks"
TAG_DIMENSIONS = {"olt:": "olt", "pon:": "pon", "region:": "region"}


@dataclass(frozen=True)
class DeviceFacts:
    device_id: str
    groups: dict[str, str]  # dimension -> value
    fresh: frozenset[str] = frozenset()  # signals that began within the window
    current: frozenset[str] = frozenset()  # signals true now, whenever they began

    @property
    def affected(self) -> bool:
        return bool(self.current)


@dataclass(frozen=True)
class Config:
    window: timedelta = timedelta(minutes=15)
    min_devices: int = 5
    min_share: float = 0.3
    resolve_share: float = 0.1
    alpha: float = 0.05


@dataclass
class Candidate:
    dimension: str
    value: str
    size: int
    fresh: set[str]
    baseline: float
    signals: Counter[str] = field(default_factory=Counter)

    @property
    def group_key(self) -> str:
        return f"{self.dimension}:{self.value}"

    @property
    def incident_key(self) -> str:
        """PON ports roll up to their OLT: one incident per OLT however many PONs went dark."""
        if self.dimension == "pon":
            return "olt:" + self.value.split(" ", 1)[0]
        return self.group_key

    @property
    def share(self) -> float:
        return len(self.fresh) / self.size if self.size else 0.0


# -- facts -----------------------------------------------------------------------------------------


def subnet_of(address: Any) -> str | None:
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return None
    if ip.version != 4 or ip.is_loopback:
        return None
    return str(ipaddress.ip_network(f"{ip}/24", strict=False))


def groups_of(device: Mapping[str, Any]) -> dict[str, str]:
    groups: dict[str, str] = {}
    for tag in device.get("tags") or []:
        for prefix, dimension in TAG_DIMENSIONS.items():
            if tag.startswith(prefix) and len(tag) > len(prefix):
                groups[dimension] = tag[len(prefix):]
    olt = device.get("olt_id") or groups.get("olt")
    if olt:
        groups["olt"] = str(olt)
        pon = device.get("pon_port") or groups.get("pon")
        if pon:
            groups["pon"] = f"{olt} {pon}"
    else:
        groups.pop("pon", None)  # a PON port means nothing without its OLT
    if device.get("software_version"):
        groups["software_version"] = f"{device.get('product_class')} {device['software_version']}"
    if device.get("product_class"):
        groups["product_class"] = str(device["product_class"])
    subnet = subnet_of(device.get("wan_ip")) or subnet_of(device.get("remote_ip"))
    if subnet:
        groups["subnet"] = subnet
    return groups


def facts_of(device: Mapping[str, Any], now: datetime, window: timedelta, failing: int) -> DeviceFacts:
    since = now - window
    fresh: set[str] = set()
    current: set[str] = set()
    offline_after = device.get("offline_after")
    if device.get("presence") == "offline" or (offline_after is not None and offline_after <= now):
        current.add(OFFLINE)
        went = device.get("offline_since") or offline_after
        if went is not None and went >= since:
            fresh.add(OFFLINE)
    # The last definite read, not ``health.status``: a critical device whose next read failed
    # (``unknown``: crash-looping, unreachable) has not recovered, and must not resolve its incident.
    health = definite_of(device.get("health") or {}) or {}
    if health.get("status") == "critical":
        current.add(CRITICAL)
        if (health.get("since") or now) >= since:
            fresh.add(CRITICAL)
    if failing:
        current.add(FAILING)
        fresh.add(FAILING)
    return DeviceFacts(str(device["_id"]), groups_of(device), frozenset(fresh), frozenset(current))


# -- detection ---------------------------------------------------------------------------------------


def census(devices: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many devices each group has (``dimension:value`` -> size), over the whole fleet."""
    sizes: Counter[str] = Counter()
    for device in devices:
        sizes.update(f"{dimension}:{value}" for dimension, value in groups_of(device).items())
    return sizes


def group_stats(
    facts: Iterable[DeviceFacts], baselines: Mapping[str, float], sizes: Mapping[str, int] | None = None
) -> dict[str, Candidate]:
    """Each group's size, its freshly affected devices and its baseline.

    Without ``sizes``, ``facts`` is the whole fleet and sizes are counted from it. With ``sizes``
    (a census), ``facts`` may be just the affected devices: a group is never smaller than what
    ``facts`` shows of it, and every group with a baseline is listed, so that its baseline decays.
    """
    groups: dict[str, Candidate] = {}
    for device in facts:
        for dimension, value in device.groups.items():
            key = f"{dimension}:{value}"
            group = groups.get(key)
            if group is None:
                group = groups[key] = Candidate(dimension, value, 0, set(), baselines.get(key, 0.0))
            group.size += 1
            if device.fresh:
                group.fresh.add(device.device_id)
                group.signals.update(device.fresh)
    if sizes is None:
        return groups
    for key, group in groups.items():
        group.size = max(group.size, sizes.get(key, 0))
    for key, baseline in baselines.items():
        dimension, _, value = key.partition(":")
        if key not in groups and dimension in DIMENSIONS:
            groups[key] = Candidate(dimension, value, sizes.get(key, 0), set(), baseline)
    return groups


def qualifies(affected: int, size: int, baseline: float, config: Config) -> bool:
    return affected >= config.min_devices and size > 0 and affected / size - baseline >= config.min_share


def near_candidates(groups: Mapping[str, Candidate], config: Config) -> list[Candidate]:
    """Groups whose size must be counted exactly before ``detect`` judges them.

    A census is minutes old: a group may have grown since (a batch re-homed to a new OLT, a firmware
    rolled out), which would inflate its share, or shrunk, which would hide one. Every group that
    qualifies, or would at half the share, is counted again; that is a handful in a normal run.
    """
    relaxed = Config(config.window, config.min_devices, config.min_share / 2, config.resolve_share, config.alpha)
    return [group for group in groups.values()
            if len(group.fresh) >= config.min_devices
            and (group.size <= len(group.fresh) or qualifies(len(group.fresh), group.size, group.baseline, relaxed))]


def detect(groups: Mapping[str, Candidate], config: Config, explained: Iterable[str] = ()) -> list[Candidate]:
    """The groups that best explain the fresh trouble, one per problem.

    ``explained``: devices an open incident already explains (its members); they open no other.
    Equal in size, the group the trouble fills more wins (a bad firmware filling its version's
    group, not the third of an OLT those same devices are), then the more specific dimension.
    """
    ranked = sorted(
        (group for group in groups.values() if qualifies(len(group.fresh), group.size, group.baseline, config)),
        key=lambda group: (-len(group.fresh), -group.share, DIMENSIONS.index(group.dimension), group.value),
    )
    explained = set(explained)
    chosen: list[Candidate] = []
    for group in ranked:
        if qualifies(len(group.fresh - explained), group.size, group.baseline, config):
            chosen.append(group)
            explained |= group.fresh
    return chosen


def next_baseline(previous: float, share: float, alpha: float) -> float:
    return round(previous + alpha * (share - previous), 6)


# -- an open incident --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    added: list[str]
    affected_now: int
    peak: int
    resolved: bool


def progress(
    members: list[str], selector: list[str], facts: Mapping[str, DeviceFacts], groups: Mapping[str, Candidate],
    peak: int, config: Config,
) -> Progress:
    """Growth (fresh devices of the incident's groups join it) and recovery of an open incident."""
    known = set(members)
    added = sorted({device for key in selector if key in groups for device in groups[key].fresh} - known)
    affected_now = sum(1 for device in [*members, *added] if device in facts and facts[device].affected)
    peak = max(peak, affected_now)
    return Progress(added, affected_now, peak, affected_now <= int(config.resolve_share * peak))


# -- words ---------------------------------------------------------------------------------------------

SIGNAL_WORDS = {OFFLINE: "offline", CRITICAL: "in critical health", FAILING: "failing tasks"}


def describe(candidate: Candidate) -> tuple[str, str]:
    """(title, suspected shared cause) of a new incident."""
    signal = candidate.signals.most_common(1)[0][0] if candidate.signals else OFFLINE
    return describe_group(candidate.dimension, candidate.value, signal, len(candidate.fresh), candidate.size)


def describe_group(dimension: str, value: str, signal: str, affected: int, size: int) -> tuple[str, str]:
    """(title, suspected shared cause) of an incident over one group, with its counts as they are now."""
    count = f"{affected} of {size} devices {SIGNAL_WORDS.get(signal, SIGNAL_WORDS[OFFLINE])}"
    match dimension:
        case "pon":
            olt, _, pon = value.partition(" ")
            what = "Outage" if signal == OFFLINE else "Trouble"
            return f"{what} on OLT {olt} (PON {pon}): {count}", f"shared OLT {olt}, PON port {pon}"
        case "olt":
            what = "Outage" if signal == OFFLINE else "Trouble"
            return f"{what} on OLT {value}: {count}", f"shared OLT {value}"
        case "software_version":
            product_class, _, version = value.partition(" ")
            return (f"Software version {version} ({product_class}): {count}",
                    f"software version {version} of {product_class} (suspected bad firmware)")
        case "product_class":
            return f"Product class {value}: {count}", f"product class {value}"
        case "region":
            return f"Region {value}: {count}", f"region {value}"
    return f"IP subnet {value}: {count}", f"IP subnet {value} (access network or BRAS)"


def scope_of(dimension: str, value: str, selector: Iterable[str]) -> tuple[str, str]:
    """An open incident's scope now, from the groups it has taken in (its selector).

    A PON incident is keyed by its OLT, so a second dark PON of that OLT, or the OLT's own group,
    joins it: from then on it is the OLT's outage, not the first PON's that tripped.
    """
    if dimension != "pon":
        return dimension, value
    olt = value.split(" ", 1)[0]
    pons = {key for key in selector if key.startswith("pon:")}
    if len(pons) > 1 or f"olt:{olt}" in selector:
        return "olt", olt
    return dimension, value
