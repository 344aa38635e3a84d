"""Pure next-step suggestions for line 2, from what is known about one device."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Health reason check -> what line 2 should do about a critical finding.
CRITICAL_ACTION = {
    "rx": "fibre problem, send a technician",
    "tx": "the ONT's laser is weak: replace the ONT",
    "temperature": "the device overheats: check its ventilation, replace it if this persists",
    "PON": "the ONT is not ranged on the OLT: check the fibre and the OLT port",
    "WAN": "check the PPP/DHCP credentials and the BRAS session",
    "reboots": "check the power supply; replace the device if it keeps rebooting",
}


@dataclass(frozen=True)
class DeviceState:
    online: bool
    offline_since: datetime | None = None
    health: Mapping[str, Any] | None = None  # the device's ``health`` summary
    incidents: Sequence[Mapping[str, Any]] = ()  # open incidents the device belongs to
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
        return CRITICAL_ACTION["rx"]
    if message.startswith("optical TX"):
        return CRITICAL_ACTION["tx"]
    for key in ("temperature", "PON", "WAN", "reboots"):
        if key in message:
            return CRITICAL_ACTION[key]
    return "check the device"


def _reboot_advice(message: str, state: DeviceState) -> str:
    if state.last_reboot_reason and "download" in state.last_reboot_reason:
        return f"{message} since a download: firmware suspected, roll back or upgrade the firmware"
    return f"{message}: {CRITICAL_ACTION['reboots']}"


def _failed_read(health: Mapping[str, Any]) -> list[str]:
    """A failed read says nothing about the line: never "healthy"; say what the last good read said."""
    if health.get("status") != "unknown":
        return []
    failed = next((str(reason.get("message")) for reason in health.get("reasons") or []), "health read failed")
    last = health.get("last_definite")
    if last is None:
        return [f"{failed}: tag the device 'watch' to read it again"]
    reasons = "; ".join(str(reason.get("message")) for reason in last.get("reasons") or [])
    said = f"{last.get('status')} ({reasons})" if reasons else str(last.get("status"))
    return [f"{failed}; the last successful read said {said}: tag the device 'watch' to read it again"]


def next_steps(state: DeviceState) -> list[str]:
    steps = [f"part of incident #{incident['_id']}: {incident['title']}; no action on this device"
             for incident in state.incidents if incident.get("status") == "open"]
    if not state.online and not steps:
        since = f" since {state.offline_since:%Y-%m-%d %H:%M} UTC" if state.offline_since else ""
        steps.append(f"device offline{since} (missed its periodic informs): check power and fibre with the "
                     "subscriber; a red LOS light means a fibre problem, send a technician")
    for reason in (state.health or {}).get("reasons") or []:
        message = str(reason.get("message"))
        if reason.get("level") == "critical" and not state.incidents:
            steps.append(_reboot_advice(message, state) if "reboots" in message else
                         f"{message}: {_action_for(message)}")
        elif reason.get("level") == "warn":
            steps.append(f"{message}: tag the device 'watch' and re-check in a few hours")
    steps += _failed_read(state.health or {})
    if state.failed_tasks:
        steps.append(f"{state.failed_tasks} task(s) failed recently: see failed_tasks and their faults")
    if state.online and (state.health is None or state.health_stale):
        steps.append("no recent health result: tag the device 'watch' to read it now")
    if not steps:
        steps.append("no problem found on the access line: the device is online and healthy; look inside the "
                      "home (Wi-Fi, LAN, the subscriber's own equipment)")
    return steps
