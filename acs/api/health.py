"""Unauthenticated endpoints: liveness, readiness (MongoDB reachable), Prometheus metrics."""

from __future__ import annotations

from acs.api.routes import Call, Reply, Route
from schemas.api import Health


async def healthz(call: Call) -> Reply:
    return Reply(Health(status="ok"))


async def readyz(call: Call) -> Reply:
    if await call.api.services.database.ping():
        return Reply(Health(status="ready"))
    return Reply(Health(status="not ready", reason="MongoDB unreachable"), status=503)


async def metrics(call: Call) -> Reply:
    return Reply(None, text=call.api.metrics.render())


ROUTES = [
    Route("GET", "/healthz", healthz, "Process alive", None, "health", response=Health),
    Route("GET", "/readyz", readyz, "MongoDB reachable", None, "health", response=Health, other_statuses=(503,)),
    Route("GET", "/metrics", metrics, "Prometheus metrics of this process", None, "health",
          content_type="text/plain; version=0.0.4"),
]
