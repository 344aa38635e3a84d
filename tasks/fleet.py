"""The fleet at a glance: one streamed pass over the devices, counted, kept as one document.

The console's landing page shows devices online, offline, critical, and the fleet by model,
software version, OLT (with its PON ports) and region. Counting those on every page view would
read the whole fleet each time (FerretDB 1.24 answers a count or a ``$group`` by reading every
row), so the ``fleet_census`` job reads the grouping fields of every device once per interval
(``DeviceRepository.scan``: bounded batches, the cursor closed at the end) and stores the counts
(``tasks/store/fleet.py``). Every number links to a list whose filter is a top-level equality
(``presence``, ``health_definite``, ``product_class``, ``software_version``, ``olt_id`` and
``pon_port``, the ``region:`` tag), so the list it counts is itself an indexed query.

``count`` is pure; ``FleetCensus`` is the job.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any

from tasks.store.db import Document
from tasks.store.devices import DeviceRepository
from tasks.store.fleet import FleetSummaryRepository

FIELDS = ("presence", "health_definite", "product_class", "software_version", "olt_id", "pon_port", "tags")
BATCH = 5000
REGION_TAG = "region:"  # the region is a tag (tasks/incidents/grouping.py TAG_DIMENSIONS)
STATES = ("online", "offline", "ok", "warn", "critical")
KEPT = 500  # rows kept per breakdown (the largest groups): the summary stays one bounded document
OLTS_KEPT = 2000


def states_of(device: Mapping[str, Any]) -> list[str]:
    """The counters one device adds to: its presence and its last definite health."""
    found = []
    if device.get("presence") in ("online", "offline"):
        found.append(str(device["presence"]))
    if device.get("health_definite") in ("ok", "warn", "critical"):
        found.append(str(device["health_definite"]))
    return found


def level_status(row: Mapping[str, Any]) -> str:
    """An OLT's or PON's status from its devices: down (none online), degraded (some offline or
    critical), ok; unknown with no device that said its presence."""
    online, offline = int(row.get("online", 0)), int(row.get("offline", 0))
    if online + offline == 0:
        return "unknown"
    if online == 0:
        return "down"
    if offline or row.get("critical"):
        return "degraded"
    return "ok"


class _Tally:
    def __init__(self) -> None:
        self.total = 0
        self.states: Counter[str] = Counter()

    def add(self, states: Iterable[str]) -> None:
        self.total += 1
        self.states.update(states)

    def row(self, **keys: str) -> Document:
        return {**keys, "total": self.total, **{state: self.states[state] for state in STATES}}


def _largest(tallies: Mapping[tuple[str, ...], _Tally], names: tuple[str, ...], kept: int) -> list[Document]:
    ordered = sorted(tallies.items(), key=lambda item: (-item[1].total, item[0]))[:kept]
    return [tally.row(**dict(zip(names, key, strict=True))) for key, tally in ordered]


class FleetCount:
    """Counters fed one device at a time (a census of 200,000 devices keeps only these)."""

    def __init__(self) -> None:
        self.fleet = _Tally()
        self.models: dict[tuple[str, ...], _Tally] = defaultdict(_Tally)
        self.versions: dict[tuple[str, ...], _Tally] = defaultdict(_Tally)
        self.regions: dict[tuple[str, ...], _Tally] = defaultdict(_Tally)
        self.olts: dict[tuple[str, ...], _Tally] = defaultdict(_Tally)
        self.pons: dict[tuple[str, ...], _Tally] = defaultdict(_Tally)

    def add(self, device: Mapping[str, Any]) -> None:
        states = states_of(device)
        self.fleet.add(states)
        model = device.get("product_class")
        if model:
            self.models[(str(model),)].add(states)
            if device.get("software_version"):
                self.versions[(str(model), str(device["software_version"]))].add(states)
        for tag in device.get("tags") or []:
            if isinstance(tag, str) and tag.startswith(REGION_TAG) and len(tag) > len(REGION_TAG):
                self.regions[(tag[len(REGION_TAG):],)].add(states)
        olt = device.get("olt_id")
        if olt:
            self.olts[(str(olt),)].add(states)
            self.pons[(str(olt), str(device.get("pon_port") or ""))].add(states)

    def summary(self) -> Document:
        """Totals and breakdowns; each OLT row counts its PON ports (``pons`` has their rows)."""
        pons = self.pons_by_olt()
        olt_rows = _largest(self.olts, ("olt",), OLTS_KEPT)
        for row in olt_rows:
            ports = pons.get(row["olt"], [])
            row["pon_count"] = len(ports)
            row["pons_down"] = sum(1 for port in ports if level_status(port) == "down")
        return {
            **self.fleet.row(),
            "by_model": _largest(self.models, ("model",), KEPT),
            "by_version": _largest(self.versions, ("model", "version"), KEPT),
            "by_region": _largest(self.regions, ("region",), KEPT),
            "by_olt": olt_rows,
            "olts": len(self.olts),
        }

    def pons_by_olt(self) -> dict[str, list[Document]]:
        """Each OLT's PON ports (stored one document per OLT: the landing page never reads them)."""
        by_olt: dict[str, list[Document]] = defaultdict(list)
        for (olt, pon), tally in sorted(self.pons.items()):
            by_olt[olt].append(tally.row(pon=pon))
        return dict(by_olt)


def count(devices: Iterable[Mapping[str, Any]]) -> Document:
    """The summary of these devices (each with ``FIELDS``): totals and the breakdowns."""
    counting = FleetCount()
    for device in devices:
        counting.add(device)
    return counting.summary()


class FleetCensus:
    """The job: count the fleet and store the summary (``taken_at``, how long the pass took)."""

    def __init__(self, devices: DeviceRepository, summaries: FleetSummaryRepository,
                 clock: Callable[[], datetime]) -> None:
        self.devices = devices
        self.summaries = summaries
        self.clock = clock

    async def run(self) -> dict[str, Any]:
        started = self.clock()
        counting = FleetCount()
        async with aclosing(self.devices.scan({}, dict.fromkeys(FIELDS, 1), BATCH)) as fleet:
            async for device in fleet:
                counting.add(device)
        summary = counting.summary()
        finished = self.clock()
        await self.summaries.save({**summary, "taken_at": finished,
                                   "seconds": round((finished - started).total_seconds(), 3)},
                                  counting.pons_by_olt())
        return {"devices": summary["total"], "olts": summary["olts"]}
