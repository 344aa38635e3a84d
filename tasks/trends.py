"""Trends: a device's (and an OLT's or PON's) health over days, downsampled to one point an hour.

Written as reads happen: every stored health read folds into its hour (``TrendRecorder``, a hook
of the health poller); the ``fold_boots`` job counts each hour's boots from ``device_events``; the
``prune_trends`` job drops days past ``TREND_DAYS``. Read by the console's charts
(``acs/console/trends.py``) through :func:`hourly_points`, pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository, hour_of
from tasks.store.devices import DeviceRepository
from tasks.store.trends import TrendRepository, day_of, topology_fields

TREND_DAYS = 30  # kept per device
METRICS = ("rx_power", "tx_power", "temperature")  # optical levels (dBm) and transceiver temperature (C)
# Worst health status of an hour: a failed read (unknown) says nothing and never hides a definite one.
STATUS_RANK = {"unknown": 0, "ok": 1, "warn": 2, "critical": 3}
RANK_STATUS = {rank: status for status, rank in STATUS_RANK.items()}
BOOTS_LOOKBACK = timedelta(hours=3)  # each fold_boots run recounts whole hours this far back
PRUNE_SPAN = 60  # days past the retention each prune run looks at (by equality, one day each)


def hour_key(at: datetime) -> str:
    return f"{at.astimezone(UTC).hour:02d}"


def health_update(values: Mapping[str, Any], status: str, at: datetime) -> Document:
    """The ``trend_days`` update one health read makes to its hour."""
    prefix = f"hours.{hour_key(at)}"
    low: Document = {}
    high: Document = {}
    added: Document = {}
    for metric in METRICS:
        value = values.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            low[f"{prefix}.{metric}_min"] = float(value)
            high[f"{prefix}.{metric}_max"] = float(value)
            added[f"{prefix}.{metric}_sum"] = float(value)
            added[f"{prefix}.{metric}_n"] = 1
    high[f"{prefix}.status"] = STATUS_RANK.get(status, 0)
    added[f"{prefix}.reads"] = 1
    return {"$min": low, "$max": high, "$inc": added}


class TrendRecorder:
    """Hook of the health poller: each stored read goes into its device's day."""

    def __init__(self, trends: TrendRepository) -> None:
        self.trends = trends

    async def on_health(self, device: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        await self.trends.fold(*_fold_of(device, result))

    async def on_health_many(self, stored: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """The poller's hook (``HealthPoller.stored_hooks``): one read (a session's answer) folded by
        itself, many (the health reads an expiry run ended, one a device) in capped commands."""
        if len(stored) == 1:
            await self.on_health(*stored[0])
        elif stored:
            await self.trends.fold_many([_fold_of(device, result) for device, result in stored])


def _fold_of(device: Mapping[str, Any], result: Mapping[str, Any]) -> tuple[str, str, Document, Document]:
    """What one stored read folds into its device's day: (device id, day, update, topology)."""
    at: datetime = result["at"]
    values = result.get("values") or {}
    day = day_of(at.astimezone(UTC))
    olt = values.get("olt_id") or device.get("olt_id")
    pon = values.get("pon_port") or device.get("pon_port")
    topology = topology_fields(str(olt) if olt else None, str(pon) if pon else None, day)
    return str(device["_id"]), day, health_update(values, str(result.get("status")), at), topology


class BootFolding:
    """Job: each hour's boots (reboots; a first contact is not one) counted into the device's day.

    A run recounts the whole hours of the last ``BOOTS_LOOKBACK`` and sets them (``$set``, so a
    run repeated or overlapping counts nothing twice); it runs well within that span. Each hour's
    boots are found by equality on the event's ``hour`` and ``type`` (what FerretDB serves from an
    index), so a run reads those few hours' boots, never the 30 days of them.
    """

    def __init__(self, events: DeviceEventRepository, devices: DeviceRepository, trends: TrendRepository,
                 clock: Callable[[], datetime]) -> None:
        self.events = events
        self.devices = devices
        self.trends = trends
        self.clock = clock

    async def run(self) -> dict[str, Any]:
        now = self.clock().astimezone(UTC)
        counts: dict[tuple[str, str, str], int] = {}
        hours = int(BOOTS_LOOKBACK / timedelta(hours=1))
        for back in range(hours + 1):  # each hour's boots by equality on (hour, type): no scan of all boots
            moment = now - timedelta(hours=back)
            for event in await self.events.in_hour(device_events.BOOT, hour_of(moment)):
                if (event.get("detail") or {}).get("first_contact"):
                    continue
                key = (event["device_id"], day_of(moment), hour_key(moment))
                counts[key] = counts.get(key, 0) + 1
        for (device_id, day, hour), n in counts.items():
            device = await self.devices.get(device_id) or {}
            topology = topology_fields(device.get("olt_id"), device.get("pon_port"), day)
            await self.trends.fold(device_id, day, {"$set": {f"hours.{hour}.boots": n}}, topology)
        return {"hours_counted": len(counts), "boots": sum(counts.values())}


def days_back(now: datetime, days: int) -> list[str]:
    """The UTC days of the last ``days`` days, oldest first, today included."""
    today = now.astimezone(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def expired_days(now: datetime, kept: int = TREND_DAYS) -> list[str]:
    """The days just past the retention (``PRUNE_SPAN`` of them): what ``prune_trends`` deletes."""
    first_gone = now.astimezone(UTC).date() - timedelta(days=kept)
    return [(first_gone - timedelta(days=n)).isoformat() for n in range(PRUNE_SPAN)]


@dataclass
class Point:
    """One hour of a device (or of a group: min of the minima, max of the maxima, mean of all reads)."""

    at: datetime
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    status: int = 0  # a device: its worst status rank in the hour
    statuses: dict[str, int] = field(default_factory=dict)  # a group: devices by worst status
    boots: int = 0

    def mean(self, metric: str) -> float | None:
        n = self.count.get(metric, 0)
        return round(self.total[metric] / n, 2) if n else None


def _hour_at(day: str, hour: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=int(hour), tzinfo=UTC)


def _add(point: Point, slot: Mapping[str, Any]) -> None:
    for metric in METRICS:
        n = int(slot.get(f"{metric}_n") or 0)
        if not n:
            continue
        low, high = float(slot[f"{metric}_min"]), float(slot[f"{metric}_max"])
        point.low[metric] = min(point.low.get(metric, low), low)
        point.high[metric] = max(point.high.get(metric, high), high)
        point.total[metric] = point.total.get(metric, 0.0) + float(slot.get(f"{metric}_sum") or 0.0)
        point.count[metric] = point.count.get(metric, 0) + n
    rank = int(slot.get("status") or 0)
    point.status = max(point.status, rank)
    if slot.get("reads"):
        status = RANK_STATUS.get(rank, "unknown")
        point.statuses[status] = point.statuses.get(status, 0) + 1
    point.boots += int(slot.get("boots") or 0)


def hourly_points(docs: list[Document]) -> list[Point]:
    """Hours, oldest first, from ``trend_days`` documents: one device's, or an OLT's or PON's members' added up
    (then ``statuses`` counts the devices by their worst status of the hour)."""
    points: dict[datetime, Point] = {}
    for doc in docs:
        for hour, slot in sorted((doc.get("hours") or {}).items()):
            if not isinstance(slot, Mapping) or not hour.isdigit():
                continue
            at = _hour_at(doc["day"], hour)
            _add(points.setdefault(at, Point(at)), slot)
    return [points[at] for at in sorted(points)]


def boots_by_day(points: list[Point]) -> list[tuple[str, int]]:
    per_day: dict[str, int] = {}
    for point in points:
        day = point.at.date().isoformat()
        per_day[day] = per_day.get(day, 0) + point.boots
    return sorted(per_day.items())
