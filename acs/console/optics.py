"""Optical levels of a PON device from its cached parameters, judged by the one threshold table.

Which parameters hold the levels, their units and the family's limits come from
``tasks/health/checks.json`` (via the health poller's catalog and settings), and the level is
judged by the same functions as a health read (``tasks.health.evaluate``): the summary and the
diagnosis cannot disagree about one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tasks.health.catalog import CheckProfile
from tasks.health.evaluate import Level, Thresholds, convert, limits_for, rx_level, tx_level
from tasks.store.parameters import CachedParameter

METRICS = ("rx_power", "tx_power")


@dataclass(frozen=True)
class OpticalLevel:
    metric: str  # rx_power or tx_power
    dbm: float | None
    level: str | None  # ok, warn, critical (None: not read)
    warn: float
    critical: float | None
    updated_at: datetime | None
    parameter: str


def parent_objects(profile: CheckProfile) -> list[str]:
    return sorted({spec.name.rsplit(".", 1)[0] + "." for metric, spec in profile.metrics.items() if metric in METRICS})


def optical_levels(profile: CheckProfile, defaults: Thresholds,
                   cached: dict[str, CachedParameter]) -> list[OpticalLevel]:
    """RX and TX as the family reports them (empty when it has no optical metrics)."""
    limits = limits_for(profile, defaults)
    levels = []
    for metric in METRICS:
        spec = profile.metrics.get(metric)
        if spec is None:
            continue
        parameter = cached.get(spec.name)
        raw = str(parameter.value) if parameter is not None and parameter.value not in (None, "") else None
        number = convert(spec, raw) if raw is not None else None
        dbm = round(float(number), 2) if isinstance(number, float | int) else None
        judged: Level | None = None
        if dbm is not None:
            judged = rx_level(dbm, limits) if metric == "rx_power" else tx_level(dbm, limits)
        if metric == "rx_power":
            warn, critical = limits.rx_warn_dbm, limits.rx_critical_dbm
        else:
            warn, critical = limits.tx_low_dbm, None
        levels.append(OpticalLevel(metric, dbm, judged.label if judged is not None else None, warn, critical,
                                   parameter.updated_at if parameter else None, spec.name))
    return levels
