"""One device at a glance for line 2: state, health, WAN, reboots, failures, incidents, next steps.

Shared by ``GET /api/v1/devices/{id}/diagnosis`` and the console's device page; the advice itself
is pure (``tasks/health/advice.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from schemas.monitoring import Diagnosis, FailedTask, HealthView, NextStep, WanView
from tasks.health import advice
from tasks.incidents.service import RESOLVED_BY_JOB, summary_of
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import is_online
from tasks.store.incidents import IncidentRepository
from tasks.store.sessions import SessionRepository
from tasks.store.tasks import TaskRepository

RECENT = timedelta(hours=24)
# An incident resolved by hand is judged again by the next detection run, well within its default window.
FOLLOW_UP_WINDOW = timedelta(minutes=15)


class Sources(Protocol):
    """The repositories a diagnosis reads (``acs.services.Repositories`` has them all)."""

    @property
    def events(self) -> DeviceEventRepository: ...

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def incidents(self) -> IncidentRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...


def _awaiting_follow_up(incident: Document, now: datetime) -> bool:
    """Resolved by a person within the detection window and not yet followed by a new incident."""
    resolved_at = incident.get("resolved_at")
    return (incident["status"] == "resolved" and incident.get("resolved_by") not in (None, RESOLVED_BY_JOB)
            and not incident.get("followed_by") and resolved_at is not None and resolved_at >= now - FOLLOW_UP_WINDOW)


async def diagnose(sources: Sources, device: Document, now: datetime, health_interval: int) -> Diagnosis:
    device_id = device["_id"]
    boots = await sources.events.for_device(device_id, now, 50, [device_events.BOOT])
    reboots_24h = await sources.events.reboots_since(device_id, now - RECENT)
    failed = [task for task in await sources.tasks.for_device(device_id, None, 10, "failed")
              if task.get("finished_at") and task["finished_at"] >= now - RECENT]
    incidents = await sources.incidents.for_device(device_id)
    session = await sources.sessions.last_for_device(device_id)
    health: Document | None = device.get("health")
    values = (health or {}).get("values") or {}
    state = advice.DeviceState(
        online=is_online(device, now),
        offline_since=device.get("offline_since"),
        health=health,
        incidents=[incident for incident in incidents if incident["status"] == "open"],
        resolved_by_hand=[incident for incident in incidents if _awaiting_follow_up(incident, now)],
        reboots_24h=reboots_24h,
        last_reboot_reason=advice.reboot_reason(boots[0]["detail"].get("events") or []) if boots else None,
        failed_tasks=len(failed),
        health_stale=bool(health and health["at"] < now - timedelta(seconds=2 * health_interval or 86400)),
    )
    steps = advice.steps(state)
    return Diagnosis(
        device_id=device_id,
        online=state.online,
        presence=device.get("presence"),
        last_inform=device.get("last_inform"),
        offline_since=state.offline_since,
        uptime=values.get("uptime", device.get("uptime")),
        reboots_24h=state.reboots_24h,
        last_reboot_reason=state.last_reboot_reason,
        health=HealthView.model_validate(health) if health else None,
        wan=WanView(status=values.get("wan_status"), uptime=values.get("wan_uptime"),
                    last_error=values.get("wan_last_error"), ip=device.get("wan_ip")),
        olt_id=device.get("olt_id"),
        pon_port=device.get("pon_port"),
        recent_faults=(session.get("faults") if session is not None else None) or [],
        failed_tasks=[FailedTask(id=task["_id"], kind=task["kind"], finished_at=task.get("finished_at"),
                                 reason=task.get("reason"), fault=task.get("fault")) for task in failed],
        incidents=[summary_of(incident) for incident in incidents],
        next_steps=[step.english() for step in steps],
        steps=[NextStep(key=step.key, params=step.params) for step in steps],
    )
