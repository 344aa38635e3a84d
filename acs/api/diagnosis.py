"""What line 2 opens first when a call comes in: one device's state, health, incidents, next steps."""

from __future__ import annotations

from acs.api.devices import device_or_404
from acs.api.routes import Call, Reply, Route
from schemas.api import Role
from schemas.monitoring import Diagnosis
from tasks.device_diagnosis import diagnose


async def diagnosis(call: Call) -> Reply:
    services = call.api.services
    device = await device_or_404(call, call.path("device_id"))
    return Reply(await diagnose(services.repositories, device, services.clock(), services.settings.health_interval))


ROUTES = [
    Route("GET", "/api/v1/devices/{device_id}/diagnosis", diagnosis,
          "One device at a glance: online state, health, WAN, reboots, failures, incidents, next steps",
          Role.VIEWER, "devices", response=Diagnosis, other_statuses=(404,)),
]
