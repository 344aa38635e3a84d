"""Job: the drift report. Which devices differ from their effective configuration, per profile.

It reads the fleet's selector facts in one streamed pass (closed before any other read: an open
cursor holds one of FerretDB's PostgreSQL connections), then, for each device some profile
selects, the cached values its configuration names (one read, the same as a session's): nothing
is written to the devices, nothing is sent to them. A device counts against each profile whose
value (or object) differs; at most ``LISTED`` device ids are kept per profile.

With no profile enabled only the devices with overrides can differ: they are read by their marker
(``DeviceRepository.with_overrides``, one indexed equality) once every device has it (the search
fields' backfill), instead of the whole fleet (63-118 s a run at 200,000 devices, every hour, to
check none). The report is the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tasks.profiles.engine import STATE, ProfileEngine
from tasks.profiles.selector import DeviceFacts, matches_device
from tasks.store.devices import OVERRIDES, DeviceRepository
from tasks.store.drift import DriftRepository

LISTED = 100
FACT_FIELDS = ("oui", "product_class", "serial_number", "software_version", "tags", "root", STATE, OVERRIDES)


def _sources(evaluation: Any) -> set[str]:
    result = evaluation.drift
    sources = {change.desired.source.label for change in [*result.changes, *result.refused]}
    objects = evaluation.configuration.objects
    for table in [*result.refresh, *(table for table, _ in result.adds)]:
        if table in objects:
            sources.add(objects[table].source.label)
    for path in result.deletes:
        table = path.rstrip(".").rpartition(".")[0] + "."
        if table in objects:
            sources.add(objects[table].source.label)
    sources.update(w.source.label for w in result.watch)
    return sources


class DriftReporter:
    def __init__(
        self,
        engine: ProfileEngine,
        devices: DeviceRepository,
        reports: DriftRepository,
        clock: Callable[[], datetime],
        max_devices: int,
    ) -> None:
        self.engine = engine
        self.devices = devices
        self.reports = reports
        self.clock = clock
        self.max_devices = max_devices

    async def run(self) -> dict[str, Any]:
        started = self.clock()
        profiles = await self.engine.catalog.load()
        selected: list[dict[str, Any]] = []
        skipped = 0
        projection = dict.fromkeys(FACT_FIELDS, 1)
        by_marker = not any(p.spec.enabled for p in profiles) and await self.devices.overrides_marked()
        if by_marker:
            candidates = self.devices.with_overrides(projection, 500)
        else:
            candidates = self.devices.scan({}, projection, 500)
        async with contextlib.aclosing(candidates) as fleet:
            async for device in fleet:
                facts = DeviceFacts.of(device)
                if not device.get(OVERRIDES) and not any(
                    p.spec.enabled and matches_device(p.spec.selector, facts) for p in profiles
                ):
                    continue
                if len(selected) >= self.max_devices:
                    skipped += 1
                    continue
                selected.append(device)
        per_profile: dict[str, dict[str, Any]] = {
            p.name: {"version": p.version, "devices": 0, "out_of_sync": 0, "listed": []} for p in profiles
        }
        out_of_sync = 0
        for device in selected:
            evaluation = await self.engine.evaluate(device, profiles)
            for profile in evaluation.profiles:
                per_profile[profile.name]["devices"] += 1
            if evaluation.drift.in_sync and not evaluation.drift.refused:
                continue
            out_of_sync += 1
            for label in _sources(evaluation):
                name = label.partition("@")[0]
                entry = per_profile.get(name)
                if entry is None:
                    continue  # a device override ("override")
                entry["out_of_sync"] += 1
                if len(entry["listed"]) < LISTED:
                    entry["listed"].append(device["_id"])
        report = {
            "at": started,
            "finished_at": self.clock(),
            "devices_checked": len(selected),
            "devices_out_of_sync": out_of_sync,
            "devices_not_checked": skipped,
            "profiles": [{"name": name, **entry} for name, entry in sorted(per_profile.items())],
        }
        await self.reports.save(report)
        return {"checked": len(selected), "out_of_sync": out_of_sync, "not_checked": skipped,
                "read": "overrides" if by_marker else "fleet"}


async def latest_report(reports: DriftRepository) -> dict[str, Any] | None:
    return await reports.latest()
