"""Pure: failed tasks grouped by fault code and message (the console's faults page).

A task failed with a CPE fault (TR-069 A.5: ``fault.code``, ``fault.string``) groups under that
code and message; one failed without a fault (unanswered, refused by a later Inform, could not be
built) groups under its reason. A group's key is a hash of the two, so it can name the group in a
URL and in ``fault_clears``. Failures finished at or before the group's clear are left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NEVER = datetime.min.replace(tzinfo=UTC)
DEVICES_KEPT = 200  # device ids kept per group (the count covers them all)


def group_of(task: Mapping[str, Any]) -> tuple[str, str]:
    """(code, message): the CPE fault's, else ("", the reason)."""
    fault = task.get("fault") or {}
    if fault.get("code") is not None:
        return str(fault["code"]), str(fault.get("string") or "")
    return "", str(task.get("reason") or "")


def group_key(code: str, message: str) -> str:
    return hashlib.sha256(f"{code}\x00{message}".encode()).hexdigest()[:24]


@dataclass
class FaultGroup:
    key: str
    code: str
    message: str
    failures: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    kinds: set[str] = field(default_factory=set)
    devices: dict[str, str] = field(default_factory=dict)  # device id -> its newest failed task of the group
    device_count: int = 0
    _newest: dict[str, datetime] = field(default_factory=dict)

    def add(self, task: Mapping[str, Any]) -> None:
        when = task.get("finished_at") or task.get("created_at")
        self.failures += 1
        if when is not None:
            self.first_seen = when if self.first_seen is None else min(self.first_seen, when)
            self.last_seen = when if self.last_seen is None else max(self.last_seen, when)
        self.kinds.add(str(task.get("kind")))
        device_id = str(task.get("device_id"))
        if device_id not in self._newest:
            self.device_count += 1
        newest = self._newest.get(device_id)
        if newest is None or (when is not None and when > newest):
            self._newest[device_id] = when or NEVER
            if device_id in self.devices or len(self.devices) < DEVICES_KEPT:
                self.devices[device_id] = str(task["_id"])


def group(tasks: Iterable[Mapping[str, Any]], cleared: Mapping[str, datetime]) -> list[FaultGroup]:
    """The groups, most recent first; failures finished at or before their group's clear left out."""
    groups: dict[str, FaultGroup] = {}
    for task in tasks:
        code, message = group_of(task)
        key = group_key(code, message)
        when = task.get("finished_at") or task.get("created_at")
        if key in cleared and (when is None or when <= cleared[key]):
            continue
        if key not in groups:
            groups[key] = FaultGroup(key, code, message)
        groups[key].add(task)
    return sorted(groups.values(), key=lambda g: (g.last_seen or NEVER, g.failures), reverse=True)
