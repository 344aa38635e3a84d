"""The incident detection job: read the affected devices, open, grow and resolve incidents.

Runs under its scheduler lease (one process at a time). Each run reads only the devices that are
affected now (offline, critical, or that failed tasks within the window), the open
incidents and the baselines; group sizes come from a census of the fleet (``sizes``), read a
bounded slice further each run, with the groups near a decision counted exactly. The decisions
are ``grouping``'s pure functions.

With ``census_in_run=False`` (``acs serve``) a run reads no census: a job of its own,
``incident_census``, calls :meth:`IncidentDetector.advance_census` a few times per detection
interval with the same share of it, so the census is read at the same rate in smaller bursts (a
run's census read was a second of the database's full attention every 30 s at 5,000 devices,
which queued the sessions behind it: docs/performance.md). Only that job moves the pass, so two
runs never read the same partition.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tasks.incidents import grouping
from tasks.incidents.affected import AffectedReader
from tasks.incidents.grouping import Candidate, Config, DeviceFacts
from tasks.incidents.marks import MemberMarks
from tasks.incidents.service import RESOLVED_BY_JOB
from tasks.incidents.sizes import GROUP_FIELDS, GroupSizes, Step
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.incidents import IncidentRepository

log = logging.getLogger("acs.incidents")
FACT_FIELDS = (*GROUP_FIELDS, "presence", "offline_after", "offline_since", "health.status", "health.since",
               "health.last_definite.status", "health.last_definite.since")
MAX_AFFECTED = 1_000_000
FAILING_READS = 20  # devices that failed tasks, read by id this many at a time
DEFAULT_CENSUS_INTERVAL = timedelta(minutes=5)
MAX_MEMBERS = 20_000  # bounded document; member_count keeps the true number
MAX_TIMELINE = 200
HOLD_RUNS = 4  # runs in a row that judge no group (devices left unread, no census yet)


@dataclass
class RunCounts:
    devices: int = 0  # the fleet, by the census judged against (0 before a first pass completed)
    affected: int = 0  # devices read this run
    events: int = 0  # with ``by_changes``: the window's offline, health and online events
    event_reads: int = 0  # with ``by_changes``: (type, minute) slices of them read from the database
    read: int = 0  # with ``by_changes``: devices read by id (the rest judged by this process's copy)
    deferred: int = 0  # with ``by_changes``: devices the window's events name, left to the next runs
    held: bool = False  # no group judged: devices left unread, or no census yet (acs serve)
    exact_counts: int = 0  # groups counted again before a decision
    census_taken: bool = False  # a census pass completed in this run
    census_read: int = 0  # devices the census pass read in this run
    census_partitions_left: int = 0
    candidates: int = 0
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    marked: int = 0  # devices given an open incident's mark (tasks/incidents/marks.py)
    unmarked: int = 0  # devices whose mark of a resolved incident was removed
    marks_left: int = 0  # members of open incidents not marked yet (past the mark budget)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class IncidentDetector:
    def __init__(
        self,
        devices: DeviceRepository,
        events: DeviceEventRepository,
        incidents: IncidentRepository,
        config: Config,
        clock: Callable[[], datetime],
        census_interval: timedelta = DEFAULT_CENSUS_INTERVAL,
        census_budget: float = math.inf,
        *,
        census: IncidentCensusRepository,
        monotonic: Callable[[], float] = time.monotonic,
        census_in_run: bool = True,
        by_changes: bool = False,
        read_budget: float = math.inf,
        mark_budget: float = math.inf,
    ) -> None:
        self.devices = devices
        self.events = events
        self.incidents = incidents
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.sizes = GroupSizes(devices, census, census_interval, clock, census_budget, monotonic)
        self.census_in_run = census_in_run
        # ``acs serve``: a run reads the window's changes and follows the open incidents' members
        # (tasks/incidents/affected.py), not every affected device.
        self.changes = AffectedReader(devices, events, dict.fromkeys(FACT_FIELDS, 1), read_budget,
                                      monotonic) if by_changes else None
        self.marks = MemberMarks(devices, incidents, mark_budget, monotonic)
        self._held = 0  # runs in a row that judged no group
        self.hooks: list[Callable[[str, Document], None]] = []  # ("opened" | "resolved", incident)

    async def run(self) -> dict[str, Any]:
        began = self.monotonic()
        now = self.clock()
        counts = RunCounts()
        failing = await self.events.devices_with(device_events.TASK_FAILED, now - self.config.window)
        open_by_key = {incident["key"]: incident for incident in await self.incidents.open_incidents()}
        recent = await self.incidents.recently_resolved(now - self.config.window)
        if self.changes is not None:
            resolved_by_hand = [incident for incident in recent if incident.get("resolved_by") != RESOLVED_BY_JOB
                                and not incident.get("followed_by")]
            followed = [device for incident in [*open_by_key.values(), *resolved_by_hand]
                        for device in incident.get("members") or []]
            documents = await self.changes.read(now, self.config.window, [*followed, *failing])
            counts.events, counts.read = self.changes.last.events, self.changes.last.devices
            counts.deferred, counts.event_reads = self.changes.last.deferred, self.changes.last.slices
        else:
            documents = await self._affected(now, list(failing))
        facts = {d["_id"]: grouping.facts_of(d, now, self.config.window, failing.get(d["_id"], 0)) for d in documents}
        facts = {device_id: fact for device_id, fact in facts.items() if fact.affected}
        counts.affected = len(facts)
        # The census reads for what is left of the run's budget after the affected devices (2,000
        # offline of 200,000 take about 0.8 s on FerretDB): many affected devices slow the pass, never the run.
        if self.census_in_run:
            census, step = await self.sizes.current(self.monotonic() - began)
        else:
            census, step = await self.sizes.published(), Step()
        counts.devices, counts.census_taken = census.devices, step.published
        counts.census_read, counts.census_partitions_left = step.read, step.partitions_left
        groups = grouping.group_stats(facts.values(), await self.incidents.baselines(), census.sizes)
        # A run judges no group (opens none, counts none exactly, moves no baseline; open incidents
        # still grow and resolve), for at most HOLD_RUNS runs in a row, while
        # - devices the window's events name are left unread (past the read budget): a new incident
        #   now could be one part of the problem, the rest another incident next run;
        # - (acs serve) no census was published and the census job has no estimate yet (its first
        #   runs after a start on a database without one): every group with 5 fresh devices would be
        #   counted exactly, a product class of 100,000 devices taking 30 s on FerretDB.
        unsized = not self.census_in_run and census.taken_at is None and not census.sizes
        self._held = self._held + 1 if (counts.deferred or unsized) and self._held < HOLD_RUNS else 0
        counts.held = bool(self._held)
        exact = set() if self._held else await self._count_exactly(groups, {d["_id"]: d for d in documents})
        counts.exact_counts = len(exact)
        # Before a first census, a group's size is a lower bound (the affected devices it shows):
        # its share would push its baseline up. Only the groups counted exactly move theirs.
        sized = None if census.taken_at is not None else exact
        # A group the devices left (resolved by the job) opens no new incident within the window (flapping);
        # one resolved by hand while its devices are still affected is followed by a new incident now.
        blocked = {str(incident["key"]) for incident in recent if incident.get("resolved_by") == RESOLVED_BY_JOB}
        for by_hand in recent:
            if by_hand.get("resolved_by") != RESOLVED_BY_JOB and not by_hand.get("followed_by") \
                    and by_hand["key"] not in open_by_key:
                follow_up = await self._follow(by_hand, facts, groups, now)
                if follow_up is not None:
                    open_by_key[follow_up["key"]] = follow_up
                    counts.opened += 1
        members = {device for incident in open_by_key.values() for device in incident.get("members") or []}
        chosen = [] if self._held else grouping.detect(groups, self.config, members)
        counts.candidates = len(chosen)
        for candidate in chosen:
            if candidate.incident_key in open_by_key:
                _extend_selector(open_by_key[candidate.incident_key], candidate)
            elif candidate.incident_key not in blocked:
                opened = await self._open(candidate, now)
                if opened is not None:
                    open_by_key[candidate.incident_key] = opened
                    counts.opened += 1
        for incident in open_by_key.values():
            changed, resolved = await self._progress(incident, facts, groups, now)
            counts.updated += changed
            counts.resolved += resolved
        if not self._held:
            await self._save_baselines(groups, open_by_key, now, sized)
        marks = await self.marks.run(incident for incident in open_by_key.values() if incident.get("status") == "open")
        counts.marked, counts.unmarked, counts.marks_left = marks.marked, marks.unmarked, marks.left
        return counts.as_dict()

    async def advance_census(self) -> dict[str, Any]:
        """The ``incident_census`` job: the census pass read a budget's worth further (or a new pass
        begun once the census is ``census_interval`` old)."""
        _census, step = await self.sizes.current()
        return {"census_read": step.read, "census_partitions_left": step.partitions_left,
                "census_taken": step.published}

    async def _affected(self, now: datetime, failing: list[str]) -> list[Document]:
        """The devices that may be affected; ``facts_of`` decides.

        Offline devices (marked by the offline job within its interval of missing the margin),
        critical ones by their last definite read, and those that failed tasks: each read by a
        top-level equality (an index on MongoDB; pushed down by FerretDB, where an ``$or`` or a
        range would be a scan of the fleet).
        """
        projection = dict.fromkeys(FACT_FIELDS, 1)
        found: dict[str, Document] = {}
        for query in ({"presence": "offline"}, {"health_definite": "critical"}):
            for device in await self.devices.find(query, projection, MAX_AFFECTED):
                found[device["_id"]] = device
        missing = [device_id for device_id in failing if device_id not in found]
        slots = asyncio.Semaphore(FAILING_READS)

        async def one(device_id: str) -> Document | None:
            async with slots:
                return await self.devices.get(device_id, projection)

        for read in await asyncio.gather(*(one(device_id) for device_id in missing)):
            if read is not None:
                found[read["_id"]] = read
        return list(found.values())

    async def _count_exactly(self, groups: dict[str, Candidate], documents: dict[str, Document]) -> set[str]:
        """Replace the census size of each group near a decision by its size now; returns their keys."""
        near = grouping.near_candidates(groups, self.config)
        for group in near:
            member = documents[min(group.fresh)]
            group.size = max(len(group.fresh), await self.sizes.exact_size(group.dimension, group.value, member))
        return {group.group_key for group in near}

    async def _open(self, candidate: Candidate, now: datetime) -> Document | None:
        incident = new_incident(candidate, now)
        number = await self.incidents.open(incident, now)
        if number is None:
            return None
        incident.update(_id=number, status="open")
        log.warning("incident %d opened: %s", number, incident["title"])
        for hook in self.hooks:
            hook("opened", incident)
        return incident

    async def _follow(self, resolved: Document, facts: dict[str, DeviceFacts], groups: dict[str, Candidate],
                      now: datetime) -> Document | None:
        """A new incident for the members of one resolved by hand that are still affected (None if too few).

        Resolving by hand says the problem is over; if its devices say otherwise at the next run, line 2
        must see it again: the new incident ``follows`` the old one, which is marked ``followed_by``.
        """
        still = sorted(device for device in resolved.get("members") or [] if device in facts)
        peak = int(resolved.get("peak") or len(still))
        if len(still) < self.config.min_devices or len(still) <= int(self.config.resolve_share * peak):
            return None
        signals = Counter(signal for device in still for signal in facts[device].current)
        incident: Document = {
            "key": resolved["key"], "dimension": resolved["dimension"], "value": resolved["value"],
            "selector": list(resolved.get("selector") or []), "signals": dict(signals), "group_size":
            resolved.get("group_size"), "follows": resolved["_id"],
        }
        incident.update(_described(incident, len(still), groups))
        who, reason = resolved.get("resolved_by"), resolved.get("resolve_reason") or "no reason given"
        detail = f"{len(still)} devices still affected after #{resolved['_id']} was resolved by {who} ({reason})"
        incident.update({
            "opened_at": now, "updated_at": now, "members": still[:MAX_MEMBERS], "member_count": len(still),
            "affected_now": len(still), "peak": len(still), "baseline": resolved.get("baseline", 0.0),
            "acknowledged": None, "comments": [],
            "timeline": [{"at": now, "event": "opened", "affected": len(still), "detail": detail}],
        })
        number = await self.incidents.open(incident, now)
        if number is None:
            return None
        await self.incidents.update(resolved["_id"], {"followed_by": number})
        incident.update(_id=number, status="open")
        log.warning("incident %d opened: %s (follows #%d, resolved by hand)", number, incident["title"],
                    resolved["_id"])
        for hook in self.hooks:
            hook("opened", incident)
        return incident

    async def _progress(
        self, incident: Document, facts: dict[str, DeviceFacts], groups: dict[str, Candidate], now: datetime
    ) -> tuple[int, int]:
        members: list[str] = incident.get("members") or []
        step = grouping.progress(members, incident.get("selector") or [], facts, groups, int(incident.get("peak") or 0),
                                 self.config)
        timeline: list[Document] = list(incident.get("timeline") or [])
        fields: Document = {"affected_now": step.affected_now, "peak": step.peak, "selector": incident["selector"]}
        if step.added:
            members = [*members, *step.added][:MAX_MEMBERS]
            fields.update(members=members, member_count=int(incident.get("member_count") or 0)
                          + len(step.added), updated_at=now)
            incident["members"] = members  # marked after this (tasks/incidents/marks.py)
            timeline.append({"at": now, "event": "grew", "affected": step.affected_now,
                             "detail": f"{len(step.added)} more devices"})
        elif step.affected_now != incident.get("affected_now"):
            timeline.append({"at": now, "event": "changed", "affected": step.affected_now,
                             "detail": f"{step.affected_now} devices still affected"})
        # A resolved incident keeps the numbers at its peak in its title; an open one says them as they are now.
        described = _described(incident, step.peak if step.resolved else step.affected_now, groups)
        if described["dimension"] != incident.get("dimension"):
            timeline.append({"at": now, "event": "scope", "affected": step.affected_now,
                             "detail": f"now {described['cause']}"})
        fields.update(described)
        fields["timeline"] = timeline[-MAX_TIMELINE:]
        if step.resolved:
            timeline.append({"at": now, "event": "resolved", "affected": step.affected_now,
                             "detail": "the devices recovered"})
            fields.update(timeline=timeline[-MAX_TIMELINE:], resolved_at=now, resolved_by=RESOLVED_BY_JOB)
            done = await self.incidents.resolve(incident["_id"], fields)
            incident["status"] = "resolved"  # its marks are removed after this, as is any resolved incident's
            if done is not None:
                log.warning("incident %d resolved: %s", incident["_id"], incident["title"])
                for hook in self.hooks:
                    hook("resolved", done)
            return 1, 1
        changed = (len(timeline) != len(incident.get("timeline") or []) or step.peak != incident.get("peak")
                   or any(incident.get(name) != described[name] for name in described))
        if changed or incident.pop("selector_changed", False):
            await self.incidents.update(incident["_id"], fields)
        return int(changed), 0

    async def _save_baselines(self, groups: dict[str, Candidate], open_by_key: dict[str, Document],
                              now: datetime, sized: set[str] | None) -> None:
        """Each group's usual share moves towards today's, except while it is part of an open incident
        or its size is not known (``sized``: the groups whose size is, when not all)."""
        frozen = {key for incident in open_by_key.values() for key in incident.get("selector") or []}
        shares: dict[str, dict[str, float]] = defaultdict(dict)
        for key, group in groups.items():
            previous = group.baseline
            if key in frozen or (sized is not None and key not in sized):
                shares[group.dimension][group.value] = previous
                continue
            share = grouping.next_baseline(previous, group.share, self.config.alpha)
            if share > 1e-4:  # a group at (nearly) zero needs no record
                shares[group.dimension][group.value] = share
        for dimension in grouping.DIMENSIONS:
            await self.incidents.save_baselines(dimension, shares.get(dimension, {}), now)


def new_incident(candidate: Candidate, now: datetime) -> Document:
    """The incident a candidate opens, as ``IncidentRepository.open`` stores it (it adds ``_id``, ``status``)."""
    title, cause = grouping.describe(candidate)
    members = sorted(candidate.fresh)
    return {
        "key": candidate.incident_key, "dimension": candidate.dimension, "value": candidate.value,
        "title": title, "cause": cause, "selector": [candidate.group_key], "opened_at": now, "updated_at": now,
        "members": members[:MAX_MEMBERS], "member_count": len(members), "affected_now": len(members),
        "peak": len(members), "group_size": candidate.size, "baseline": candidate.baseline,
        "signals": dict(candidate.signals), "acknowledged": None, "comments": [],
        "timeline": [{"at": now, "event": "opened", "affected": len(members), "detail": title}],
    }


def _described(incident: Document, affected_now: int, groups: dict[str, Candidate]) -> Document:
    """Scope, counts, title and cause of an open incident as its members are now.

    A PON incident that took in its OLT's other PONs becomes the OLT's; the title says the devices
    affected now out of the group's size now, never the numbers it opened with.
    """
    dimension, value = grouping.scope_of(str(incident["dimension"]), str(incident["value"]),
                                         incident.get("selector") or [])
    group = groups.get(f"{dimension}:{value}")
    size = max(group.size if group is not None else int(incident.get("group_size") or 0), affected_now)
    signals: dict[str, int] = incident.get("signals") or {}
    signal = max(signals, key=lambda name: signals[name]) if signals else grouping.OFFLINE
    title, cause = grouping.describe_group(dimension, value, signal, affected_now, size)
    return {"dimension": dimension, "value": value, "group_size": size, "title": title, "cause": cause}


def _extend_selector(incident: Document, candidate: Candidate) -> None:
    selector: list[str] = incident.setdefault("selector", [])
    if candidate.group_key not in selector:
        selector.append(candidate.group_key)
        incident["selector_changed"] = True
