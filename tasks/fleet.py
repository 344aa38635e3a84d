"""The fleet at a glance: a census of the devices, counted in slices, kept as one document.

The console's landing page shows devices online, offline, critical, and the fleet by model,
software version, OLT (with its PON ports) and region. Counting those on every page view would
read the whole fleet each time (FerretDB 1.24 answers a count or a ``$group`` by reading every
row), so the ``fleet_census`` job counts the grouping fields of the devices and stores the counts
(``tasks/store/fleet.py``). Every number links to a list whose filter is a top-level equality
(``presence``, ``health_definite``, ``product_class``, ``software_version``, ``olt_id`` and
``pon_port``, the ``region:`` tag), so the list it counts is itself an indexed query.

One pass over 200,000 devices reads for minutes on FerretDB (522 s on a loaded 2-core box), more
than any one run of a job may take (issue 13: under 5% of its interval). So a pass is spread over
runs: each run reads partitions (``page_group``, or ``page_bucket`` past ``GROUP_READ_MAX``
devices: ``tasks/partitions.py``), each one an indexed equality, until its time budget is spent, and
keeps the pass's counts so far in the database (any process may hold the job's lease next). The
summary is published when a pass has read every partition; it says when the pass started and
ended.

``count`` is pure; ``FleetCensus`` is the job.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from tasks import partitions
from tasks.store.db import Document
from tasks.store.devices import DeviceRepository
from tasks.store.fleet import FleetSummaryRepository

FIELDS = ("presence", "health_definite", "product_class", "software_version", "olt_id", "pon_port", "tags")
GROUP_READ_MAX, SIZE_BUCKET = partitions.GROUP_READ_MAX, partitions.SIZE_BUCKET  # how a pass reads
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

    def numbers(self) -> list[int]:
        return [self.total, *(self.states[state] for state in STATES)]

    def restore(self, numbers: list[int]) -> None:
        self.total = int(numbers[0])
        self.states = Counter({state: int(n) for state, n in zip(STATES, numbers[1:], strict=True) if n})


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

    def _tables(self) -> dict[str, dict[tuple[str, ...], _Tally]]:
        return {"fleet": {(): self.fleet}, "model": self.models, "version": self.versions,
                "region": self.regions, "olt": self.olts, "pon": self.pons}

    def rows(self) -> list[Document]:
        """Every counter as ``{t: table, k: [keys], n: [total, online, offline, ok, warn, critical]}``:
        what a pass in progress keeps in the database between runs (keys in a list, not as field
        names: OLT ids may hold dots; no nested arrays: FerretDB 1.24 refuses them)."""
        return [{"t": table, "k": list(key), "n": tally.numbers()} for table, tallies in self._tables().items()
                for key, tally in tallies.items()]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> FleetCount:
        counting = cls()
        tables = counting._tables()
        for row in rows:
            if row["t"] == "fleet":
                counting.fleet.restore(row["n"])
            elif row["t"] in tables:
                tables[row["t"]][tuple(str(part) for part in row["k"])].restore(row["n"])
        return counting

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
    """The job: go on with the pass in progress for ``budget_seconds``; publish it once complete.

    At least one partition is read per run, so every pass ends (without a budget, one run is a
    whole pass). The pass in progress is saved after
    each run (``FleetSummaryRepository.save_progress``); this process keeps its own copy and reads
    the saved counts back only when another process ran the job meanwhile.
    """

    def __init__(self, devices: DeviceRepository, summaries: FleetSummaryRepository,
                 clock: Callable[[], datetime], budget_seconds: float = math.inf,
                 monotonic: Callable[[], float] = time.monotonic, period_seconds: float = 0.0) -> None:
        self.devices = devices
        self.summaries = summaries
        self.clock = clock
        self.budget_seconds = budget_seconds
        self.monotonic = monotonic
        # A new pass begins this long after the last one began, at the soonest: a fleet read in less
        # is not read again at once (5,000 devices are read in about 8 runs, 2 minutes).
        self.period_seconds = period_seconds
        self._mine: tuple[str, int, FleetCount] | None = None  # (pass, next bucket, counts) as last saved

    async def _resume(self) -> tuple[Document, FleetCount] | float:
        """The pass in progress (this process's copy when it saved last), or a new one; or the
        seconds until a new one may begin (``period_seconds``)."""
        progress = await self.summaries.progress()
        if progress is not None and progress.get("pass") is not None:
            if self._mine is not None and self._mine[:2] == (progress["pass"], progress["next"]):
                return progress, self._mine[2]
            rows = await self.summaries.progress_rows()
            return progress, FleetCount.from_rows(rows)
        last_began = None if progress is None else progress.get("last_started_at")
        if isinstance(last_began, datetime):
            wait = self.period_seconds - (self.clock() - last_began).total_seconds()
            if wait > 0:
                return wait
        if progress is not None and "last_total" in progress:
            last_total = int(progress["last_total"] or 0)
        else:
            last_total = await partitions.guess_total(self.devices)
        step = partitions.step_for(last_total)
        fresh = {"pass": uuid.uuid4().hex, "next": 0, "step": step, "started_at": self.clock(),
                 "read_seconds": 0.0, "last_total": last_total}
        return fresh, FleetCount()

    async def run(self) -> dict[str, Any]:
        began = self.monotonic()
        resumed = await self._resume()
        if not isinstance(resumed, tuple):
            return {"devices_read": 0, "next_pass_in": round(resumed, 1)}
        progress, counting = resumed
        step = int(progress["step"])
        stop = await partitions.read_partitions(self.devices, int(progress["next"]), step, FIELDS,
                                                self.budget_seconds, counting.add, self.monotonic)
        read_seconds = float(progress["read_seconds"]) + self.monotonic() - began
        if not stop.complete:
            saved = {**progress, "next": stop.position, "step": stop.step, "read_seconds": round(read_seconds, 3)}
            await self.summaries.save_progress(saved, counting.rows())
            self._mine = (str(progress["pass"]), stop.position, counting)
            return {"devices_read": stop.read, "partitions_left": stop.left(stop.step)}
        summary = counting.summary()
        finished = self.clock()
        await self.summaries.save({**summary, "taken_at": finished, "started_at": progress["started_at"],
                                   "seconds": round((finished - progress["started_at"]).total_seconds(), 3),
                                   "read_seconds": round(read_seconds, 3)},
                                  counting.pons_by_olt())
        await self.summaries.save_progress(
            {"pass": None, "last_total": summary["total"], "last_started_at": progress["started_at"]}, [])
        self._mine = None
        return {"devices_read": stop.read, "published": summary["total"], "olts": summary["olts"]}
