"""What line 2 opens first when a call comes in: one device's state, health, incidents, next steps."""

from __future__ import annotations

from datetime import timedelta

from acs.api.devices import device_or_404, is_online
from acs.api.incidents import summary_of
from acs.api.routes import Call, Reply, Route
from schemas.api import Role
from schemas.monitoring import Diagnosis, FailedTask, HealthView, WanView
from tasks.health import advice
from tasks.store import device_events
from tasks.store.db import Document

RECENT = timedelta(hours=24)


async def diagnosis(call: Call) -> Reply:
    services = call.api.services
    repositories = services.repositories
    device = await device_or_404(call, call.path("device_id"))
    device_id, now = device["_id"], services.clock()
    boots = await repositories.events.for_device(device_id, now, 50, [device_events.BOOT])
    reboots = [boot for boot in boots if boot["at"] >= now - RECENT]
    failed = [task for task in await repositories.tasks.for_device(device_id, None, 10, "failed")
              if task.get("finished_at") and task["finished_at"] >= now - RECENT]
    incidents = await repositories.incidents.for_device(device_id)
    session = await repositories.sessions.last_for_device(device_id)
    health: Document | None = device.get("health")
    values = (health or {}).get("values") or {}
    state = advice.DeviceState(
        online=is_online(device, now),
        offline_since=device.get("offline_since"),
        health=health,
        incidents=[incident for incident in incidents if incident["status"] == "open"],
        reboots_24h=len(reboots),
        last_reboot_reason=advice.reboot_reason(boots[0]["detail"].get("events") or []) if boots else None,
        failed_tasks=len(failed),
        health_stale=bool(health and health["at"] < now - timedelta(seconds=2 * services.settings.health_interval
                                                                     or 86400)),
    )
    return Reply(Diagnosis(
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
        recent_faults=(session or {}).get("faults") or [],
        failed_tasks=[FailedTask(id=task["_id"], kind=task["kind"], finished_at=task.get("finished_at"),
                                 reason=task.get("reason"), fault=task.get("fault")) for task in failed],
        incidents=[summary_of(incident) for incident in incidents],
        next_steps=advice.next_steps(state),
    ))


ROUTES = [
    Route("GET", "/api/v1/devices/{device_id}/diagnosis", diagnosis,
          "One device at a glance: online state, health, WAN, reboots, failures, incidents, next steps",
          Role.VIEWER, "devices", response=Diagnosis, other_statuses=(404,)),
]
