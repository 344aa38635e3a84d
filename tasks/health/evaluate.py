"""Pure health evaluation: raw readings + thresholds -> ok / warn / critical, with the reasons.

And the device summary's last definite read, which a failed (``unknown``) read does not replace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum
from typing import Any

from tasks.health.catalog import CheckProfile, MetricSpec


class Level(IntEnum):
    UNKNOWN = -1
    OK = 0
    WARN = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


DEFINITE = frozenset(level.label for level in Level if level is not Level.UNKNOWN)


@dataclass(frozen=True)
class Thresholds:
    rx_warn_dbm: float = -25.0
    rx_critical_dbm: float = -27.0
    tx_low_dbm: float = 0.5
    temperature_warn_c: float = 70.0
    temperature_critical_c: float = 85.0
    reboots_warn: int = 3
    reboots_critical: int = 6


def limits_for(profile: CheckProfile, defaults: Thresholds) -> Thresholds:
    """The family's thresholds (``checks.json`` "thresholds") over the fleet-wide ones from the settings.

    The one threshold table: the health judgement and the console's optical levels both read it.
    """
    return replace(defaults, **profile.thresholds.model_dump(exclude_none=True))


@dataclass(frozen=True)
class Reason:
    check: str
    level: Level
    message: str  # English, for the API and logs
    code: str = ""  # the same finding for a translated sentence (the console's catalogs)
    params: dict[str, Any] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"check": self.check, "level": self.level.label, "message": self.message}
        if self.code:
            document.update(code=self.code, params=self.params)
        return document


def rx_level(rx: float, limits: Thresholds) -> Level:
    """Optical RX power judged (ok / warn / critical), the same for a health read and the console."""
    if rx < limits.rx_critical_dbm:
        return Level.CRITICAL
    return Level.WARN if rx < limits.rx_warn_dbm else Level.OK


def tx_level(tx: float, limits: Thresholds) -> Level:
    return Level.WARN if tx < limits.tx_low_dbm else Level.OK


@dataclass(frozen=True)
class HealthResult:
    level: Level
    reasons: list[Reason] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.level.label


def convert(spec: MetricSpec, raw: str) -> float | int | str | None:
    """A raw TR-069 string in the metric's unit -> the number in dBm / degC / s (None: unreadable)."""
    if spec.unit is None:
        return raw
    try:
        number = float(raw)
    except ValueError:
        return None
    if spec.unit == "dBm1000":
        return round(number / 1000.0, 3)
    if spec.unit == "s":
        return int(number)
    return number


def _fmt(number: float) -> str:
    return f"{number:g}"


def _optical(values: dict[str, Any], profile: CheckProfile, limits: Thresholds) -> list[Reason]:
    reasons: list[Reason] = []
    rx = values.get("rx_power")
    if isinstance(rx, float | int) and (level := rx_level(rx, limits)) is not Level.OK:
        limit = limits.rx_critical_dbm if level is Level.CRITICAL else limits.rx_warn_dbm
        reasons.append(Reason("optical", level, f"optical RX power {_fmt(rx)} dBm below {_fmt(limit)} dBm",
                              "rx_low", {"value": rx, "limit": limit}))
    tx = values.get("tx_power")
    if isinstance(tx, float | int) and tx_level(tx, limits) is not Level.OK:
        message = f"optical TX power {_fmt(tx)} dBm below {_fmt(limits.tx_low_dbm)} dBm"
        reasons.append(Reason("optical", Level.WARN, message, "tx_low", {"value": tx, "limit": limits.tx_low_dbm}))
    temperature = values.get("temperature")
    if isinstance(temperature, float | int):
        for level, limit in ((Level.CRITICAL, limits.temperature_critical_c), (Level.WARN, limits.temperature_warn_c)):
            if temperature > limit:
                reasons.append(Reason("optical", level, f"temperature {_fmt(temperature)} C above {_fmt(limit)} C",
                                      "temperature_high", {"value": temperature, "limit": limit}))
                break
    reasons += _state(values, profile, "pon_state", "optical", "PON state")
    return reasons


def _state(values: dict[str, Any], profile: CheckProfile, metric: str, check: str, label: str) -> list[Reason]:
    spec = profile.metrics.get(metric)
    state = values.get(metric)
    if spec is None or state is None or not spec.up or state in spec.up:
        return []
    return [Reason(check, Level.CRITICAL, f"{label} {state or '(empty)'} (healthy: {', '.join(spec.up)})",
                   f"{metric}_down", {"state": state or "", "healthy": ", ".join(spec.up)})]


def _wan(values: dict[str, Any], profile: CheckProfile) -> list[Reason]:
    reasons = _state(values, profile, "wan_status", "wan", "WAN connection")
    error = values.get("wan_last_error")
    if reasons and error and error != "ERROR_NONE":
        reasons.append(Reason("wan", Level.WARN, f"last WAN connection error {error}", "wan_error", {"error": error}))
    return reasons


def _reboots(reboots_24h: int | None, limits: Thresholds) -> list[Reason]:
    if reboots_24h is None or reboots_24h < limits.reboots_warn:
        return []
    level = Level.CRITICAL if reboots_24h >= limits.reboots_critical else Level.WARN
    return [Reason("device", level, f"{reboots_24h} reboots in the last 24 hours", "reboots", {"n": reboots_24h})]


def evaluate(
    readings: dict[str, str], profile: CheckProfile, limits: Thresholds, reboots_24h: int | None = None
) -> HealthResult:
    """Judge one health read. Metrics the device did not report are not judged."""
    limits = limits_for(profile, limits)
    values = {
        metric: convert(profile.metrics[metric], raw) for metric, raw in readings.items() if metric in profile.metrics
    }
    reasons = [*_optical(values, profile, limits), *_wan(values, profile), *_reboots(reboots_24h, limits)]
    reasons.sort(key=lambda reason: reason.level, reverse=True)
    level = max((reason.level for reason in reasons), default=Level.OK)
    if reboots_24h is not None:
        values["reboots_24h"] = reboots_24h
    return HealthResult(level, reasons, values)


# -- the device's summary (``health`` on the device) ---------------------------------------------
# A failed read (crash-looping or unreachable device) is ``unknown``: no news about the device, so
# the summary keeps the last definite read beside it, and the incident job judges that one.


def summarize(previous: Mapping[str, Any], result: HealthResult, now: datetime) -> dict[str, Any]:
    """The device's new ``health`` after ``result``; ``previous`` is its ``health`` before (or {})."""
    reasons = [reason.as_document() for reason in result.reasons]
    changed = previous.get("status") != result.status
    return {
        "status": result.status,
        "at": now,
        "reasons": reasons,
        "values": result.values,
        "since": now if changed else previous.get("since", now),
        "last_definite": last_definite(previous, result.status, reasons, now),
    }


def summary_fields(previous: Mapping[str, Any], result: HealthResult, now: datetime) -> dict[str, Any]:
    """The device fields one health read sets: ``health``, and ``health_definite``.

    ``health_definite`` repeats ``health.last_definite.status`` at the top level, where an equality
    filter is served by an index on every backend (FerretDB pushes down only top-level keys): the
    incident job finds the critical devices by it.
    """
    health = summarize(previous, result, now)
    return {"health": health, "health_definite": (health["last_definite"] or {}).get("status")}


def last_definite(
    previous: Mapping[str, Any], status: str, reasons: list[dict[str, Any]], now: datetime
) -> dict[str, Any] | None:
    """The last read that said ok / warn / critical, and since when that status holds.

    An ``unknown`` read keeps the previous one, and so does ``since`` across failed reads:
    critical, unknown, critical is one critical spell, not a fresh one for the incident job.
    """
    before = definite_of(previous)
    if status not in DEFINITE:
        return before
    since = before.get("since") if before is not None and before.get("status") == status else None
    return {"status": status, "at": now, "since": since or now, "reasons": reasons}


def definite_of(health: Mapping[str, Any]) -> dict[str, Any] | None:
    """``health.last_definite``; a summary written before that field counts when its own status is definite."""
    if "last_definite" in health:
        found: dict[str, Any] | None = health["last_definite"]
        return found
    if health.get("status") in DEFINITE:
        return {key: health.get(key) for key in ("status", "at", "since", "reasons")}
    return None
