"""Routes of the operator API application."""

from __future__ import annotations

from aiohttp import web

from acs.services import Services


def setup_api(app: web.Application, services: Services) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        if await services.database.ping():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "reason": "MongoDB unreachable"}, status=503)

    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
