"""Pure next-step suggestions for line 2, from what is known about one device."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Health reason check -> what line 2 should do about a critical finding (the action's key).
CRITICAL_ACTION = {
    "rx": "fibre problem, send a technician",
    "tx": "the ONT's laser is weak: replace the ONT",
    "temperature": "the device overheats: check its ventilation, replace it if this persists",
    "PON": "the ONT is not ranged on the OLT: check the fibre and the OLT port",
    "WAN": "check the PPP/DHCP credentials and the BRAS session",
    "reboots": "check the power supply; replace the device if it keeps rebooting",
    "other": "check the device",
}

# Each step's English sentence; the console has the same keys (``step_*``) in its catalogs.
ENGLISH = {
    "incident": "part of incident #{id}: {title}; no action on this device",
    "incident_resolved": "incident #{id} ({title}) was resolved by {by} ({reason_given}), but this device is still "
                         "affected: the next detection run reopens it if the problem persists; no action on this "
                         "device",
    "offline": "device offline (missed its periodic informs): check power and fibre with the subscriber; "
               "a red LOS light means a fibre problem, send a technician",
    "offline_since": "device offline since {since:%Y-%m-%d %H:%M} UTC (missed its periodic informs): check power "
                     "and fibre with the subscriber; a red LOS light means a fibre problem, send a technician",
    "critical": "{reason}: {action}",
    "reboots_download": "{reason} since a download: firmware suspected, roll back or upgrade the firmware",
    "warn": "{reason}: tag the device 'watch' and re-check in a few hours",
    "read_failed": "{failed}: tag the device 'watch' to read it again",
    "read_failed_last": "{failed}; the last successful read said {said}: tag the device 'watch' to read it again",
    "failed_tasks": "{n} task(s) failed recently: see failed_tasks and their faults",
    "no_health": "no recent health result: tag the device 'watch' to read it now",
    "healthy": "no problem found on the access line: the device is online and healthy; look inside the "
               "home (Wi-Fi, LAN, the subscriber's own equipment)",
}


@dataclass(frozen=True)
class Step:
    """One next step: a key and its values (health reasons as documents, the action as a key)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        values = dict(self.params)
        for name in ("reason", "failed"):
            if isinstance(values.get(name), Mapping):
                values[name] = str(values[name].get("message"))
        if "action" in values:
            values["action"] = CRITICAL_ACTION[values["action"]]
        if "said" in values:
            said = values["said"]
            reasons = "; ".join(str(reason.get("message")) for reason in said.get("reasons") or [])
            values["said"] = f"{said.get('status')} ({reasons})" if reasons else str(said.get("status"))
        return ENGLISH[self.key].format(**values)


@dataclass(frozen=True)
class DeviceState:
    online: bool
    offline_since: datetime | None = None
    health: Mapping[str, Any] | None = None  # the device's ``health`` summary
    incidents: Sequence[Mapping[str, Any]] = ()  # open incidents the device belongs to
    # Its incidents resolved by hand moments ago and not yet followed by a new one: the next
    # detection run opens that if the device is still affected, so its own advice waits too.
    resolved_by_hand: Sequence[Mapping[str, Any]] = ()
    reboots_24h: int = 0
    last_reboot_reason: str | None = None
    failed_tasks: int = 0
    wan_status: str | None = None
    health_stale: bool = False
    notes: list[str] = field(default_factory=list)


def reboot_reason(events: Sequence[str]) -> str:
    """Why the device last booted, from the events of its ``1 BOOT`` Inform (TR-069 3.7.1.5)."""
    codes = {event.split(" ", 1)[-1] if event.startswith("M ") else event for event in events}
    if any(event.startswith("M Reboot") for event in events):
        return "reboot requested by the ACS"
    if "7 TRANSFER COMPLETE" in events or any(event.startswith("M Download") for event in events):
        return "restart after a firmware or configuration download"
    if "0 BOOTSTRAP" in codes:
        return "first boot or factory reset"
    return "power loss or crash (no reboot was requested)"


def _action_for(message: str) -> str:
    if message.startswith("optical RX"):
        return "rx"
    if message.startswith("optical TX"):
        return "tx"
    for key in ("temperature", "PON", "WAN", "reboots"):
        if key in message:
            return key
    return "other"


def _reason(reason: Mapping[str, Any]) -> dict[str, Any]:
    return {key: reason.get(key) for key in ("check", "level", "message", "code", "params") if key in reason}


def _failed_read(health: Mapping[str, Any]) -> list[Step]:
    """A failed read says nothing about the line: never "healthy"; say what the last good read said."""
    if health.get("status") != "unknown":
        return []
    failed = next((_reason(reason) for reason in health.get("reasons") or []),
                  {"message": "health read failed", "code": "read_failed", "params": {}})
    last = health.get("last_definite")
    if last is None:
        return [Step("read_failed", {"failed": failed})]
    said = {"status": last.get("status"), "reasons": [_reason(reason) for reason in last.get("reasons") or []]}
    return [Step("read_failed_last", {"failed": failed, "said": said})]


def _still_affected(state: DeviceState) -> bool:
    return not state.online or (state.health or {}).get("status") == "critical"


def steps(state: DeviceState) -> list[Step]:
    """The next steps as keys and values, for the console to say them in the user's language."""
    found = [Step("incident", {"id": incident["_id"], "title": incident["title"],
                               "incident": {key: incident.get(key) for key in INCIDENT_FIELDS}})
             for incident in state.incidents if incident.get("status") == "open"]
    if not found and _still_affected(state):
        found = [Step("incident_resolved", {
            "id": incident["_id"], "title": incident["title"], "by": incident.get("resolved_by"),
            "reason_given": incident.get("resolve_reason") or "-",
            "incident": {key: incident.get(key) for key in INCIDENT_FIELDS}}) for incident in state.resolved_by_hand]
    shared = bool(found)  # the device is part of a shared problem: nothing to do on it alone
    if not state.online and not found:
        found.append(Step("offline_since", {"since": state.offline_since}) if state.offline_since else Step("offline"))
    for reason in (state.health or {}).get("reasons") or []:
        message = str(reason.get("message"))
        if reason.get("level") == "critical" and not shared:
            if "reboots" in message and state.last_reboot_reason and "download" in state.last_reboot_reason:
                found.append(Step("reboots_download", {"reason": _reason(reason)}))
            else:
                found.append(Step("critical", {"reason": _reason(reason), "action": _action_for(message)}))
        elif reason.get("level") == "warn":
            found.append(Step("warn", {"reason": _reason(reason)}))
    found += _failed_read(state.health or {})
    if state.failed_tasks:
        found.append(Step("failed_tasks", {"n": state.failed_tasks}))
    if state.online and (state.health is None or state.health_stale):
        found.append(Step("no_health"))
    if not found:
        found.append(Step("healthy"))
    return found


# What the console needs of an incident to word it itself (tasks/incidents: these fields).
INCIDENT_FIELDS = ("_id", "dimension", "value", "signals", "affected_now", "member_count", "group_size", "status")


def next_steps(state: DeviceState) -> list[str]:
    return [step.english() for step in steps(state)]
