"""Pure campaign arithmetic: wave sizes and membership, maintenance windows, stop rules, estimates.

No clock and no database: callers pass the time and the counts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

FAILED_SHARE = "failed_share"
HEALTH_REGRESSION = "health_regression"


def wave_sizes(waves: Sequence[Mapping[str, Any]], total: int) -> list[int]:
    """How many devices each wave takes out of ``total``.

    ``{"devices": n}`` is a fixed count (a canary); ``{"percent": p}`` brings the target to p % of
    ``total`` (cumulative, rounded up) by the wave's end. Whatever is left after the last wave joins
    it, so every device belongs to a wave. A wave left with nothing to do (a share reached already)
    keeps its place with size 0, so wave numbers stay those the operator gave.
    """
    sizes: list[int] = []
    assigned = 0
    for wave in waves:
        if wave.get("devices") is not None:
            size = min(int(wave["devices"]), total - assigned)
        else:
            size = max(0, min(total, math.ceil(float(wave["percent"]) * total / 100)) - assigned)
        sizes.append(max(0, size))
        assigned += max(0, size)
    if assigned < total:
        sizes[-1] += total - assigned
    return sizes


def spread_order(campaign_id: str, device_id: str) -> str:
    """A stable pseudo-random order, so the canary is spread over OLTs and versions, not the first ids."""
    return hashlib.sha256(f"{campaign_id}/{device_id}".encode()).hexdigest()


def assign_waves(campaign_id: str, device_ids: Iterable[str], sizes: Sequence[int]) -> dict[str, int]:
    """Each device's wave number (0 is the first)."""
    ordered = sorted(device_ids, key=lambda device_id: spread_order(campaign_id, device_id))
    waves: dict[str, int] = {}
    start = 0
    for number, size in enumerate(sizes):
        for device_id in ordered[start:start + size]:
            waves[device_id] = number
        start += size
    return waves


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_window(windows: Sequence[Mapping[str, str]], zone: str, now: datetime) -> bool:
    """Whether ``now`` (aware) falls in one of the daily windows, read in ``zone``; no windows: always."""
    if not windows:
        return True
    local = now.astimezone(ZoneInfo(zone)).time().replace(second=0, microsecond=0, tzinfo=None)
    for window in windows:
        start, end = _clock(window["start"]), _clock(window["end"])
        if start < end and start <= local < end:
            return True
        if start > end and (local >= start or local < end):  # across midnight, e.g. 23:00-02:00
            return True
    return False


def next_window_start(windows: Sequence[Mapping[str, str]], zone: str, now: datetime) -> datetime | None:
    """When the next window opens (now if one is open); None without windows."""
    if not windows:
        return None
    if in_window(windows, zone, now):
        return now
    local = now.astimezone(ZoneInfo(zone))
    starts = []
    for window in windows:
        start = _clock(window["start"])
        candidate = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        starts.append(candidate)
    return min(starts)


@dataclass(frozen=True)
class Tally:
    """What the stop rules look at, counted by the job."""

    upgraded: int = 0  # on the new version (judged or not)
    failed: int = 0  # Download / TransferComplete fault, not back in time, version unchanged
    judged: int = 0  # upgraded devices whose health after the upgrade is known
    critical_after: int = 0  # ... of which critical now
    critical_before: int = 0  # ... of which were critical before their upgrade
    control: int = 0  # not-yet-upgraded devices of the campaign with a health status, same models
    control_critical: int = 0  # ... of which critical now


@dataclass(frozen=True)
class Trip:
    rule: str
    numbers: dict[str, float]
    reason: str

    def as_document(self) -> dict[str, Any]:
        return {"rule": self.rule, "numbers": self.numbers, "reason": self.reason}


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def check_stop_rules(tally: Tally, rules: Mapping[str, Any]) -> Trip | None:
    """The first rule the tally breaks, with its numbers; None when the campaign may go on."""
    minimum = int(rules["min_devices"])
    finished = tally.upgraded + tally.failed
    failed_share = share(tally.failed, finished)
    if tally.failed >= minimum and failed_share > float(rules["max_failed_share"]):
        return Trip(FAILED_SHARE, {"failed": tally.failed, "finished": finished, "share": round(failed_share, 4),
                                   "limit": float(rules["max_failed_share"])},
                    f"{tally.failed} of {finished} finished upgrades failed ({failed_share:.0%}, limit "
                    f"{float(rules['max_failed_share']):.0%})")
    after = share(tally.critical_after, tally.judged)
    before = share(tally.critical_before, tally.judged)
    control = share(tally.control_critical, tally.control)
    regression = after - max(before, control)
    if tally.critical_after >= minimum and regression > float(rules["max_health_regression"]):
        numbers = {"critical_after": tally.critical_after, "judged": tally.judged, "share_after": round(after, 4),
                   "share_before": round(before, 4), "control_critical": tally.control_critical,
                   "control": tally.control, "share_control": round(control, 4),
                   "limit": float(rules["max_health_regression"])}
        return Trip(HEALTH_REGRESSION, numbers,
                    f"{tally.critical_after} of {tally.judged} upgraded devices are in critical health ({after:.0%}); "
                    f"the same devices before: {before:.0%}; not yet upgraded devices of the same models: "
                    f"{tally.control_critical} of {tally.control} ({control:.0%})")
    return None


def estimate_end(remaining: int, finished_last_hour: int, now: datetime) -> datetime | None:
    """At the rate of the last hour; None when nothing finished in it (or nothing remains)."""
    if remaining <= 0 or finished_last_hour <= 0:
        return None
    return now + timedelta(hours=remaining / finished_last_hour)
