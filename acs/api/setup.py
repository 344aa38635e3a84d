"""Wiring of the operator API application: the route registry, middleware, shared helpers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from pydantic import RootModel

from acs.api import (
    bulk,
    campaigns,
    devices,
    diagnosis,
    files,
    health,
    history,
    incidents,
    profiles,
    subscribers,
    tasks,
    tokens,
)
from acs.api.auth import TokenAuthority
from acs.api.bulk import BulkRunner
from acs.api.context import API, Api
from acs.api.errors import error_middleware
from acs.api.openapi import build_openapi
from acs.api.routes import Call, Reply, Route, RouteTable
from acs.connreq_followup import FollowingRequester
from acs.services import Services

ROUTES = web.AppKey("api_routes", RouteTable)


class OpenApiDocument(RootModel[dict[str, Any]]):
    """The OpenAPI 3.1 document of this API."""


def _version() -> str:
    try:
        return version("acs")
    except PackageNotFoundError:  # running from a source tree
        return "0"


def route_table() -> RouteTable:
    table = RouteTable()
    # Bulk before tasks: /api/v1/tasks/bulk/{batch_id} is more specific than /api/v1/tasks/{task_id}.
    for module in (health, devices, diagnosis, bulk, tasks, history, tokens, files, incidents, campaigns,
                   profiles, subscribers):
        table.extend(module.ROUTES)
    document: dict[str, Any] = {}

    async def openapi(call: Call) -> Reply:
        if not document:
            document.update(build_openapi(table.routes, _version()))
        return Reply(OpenApiDocument(document))

    table.add(Route("GET", "/api/v1/openapi.json", openapi, "This document", None, "meta",
                    response=OpenApiDocument))
    return table


def setup_api(app: web.Application, services: Services) -> None:
    settings = services.settings
    # An answered request no Inform followed is sent again (a CPE may ignore one during a session).
    connreq = FollowingRequester(services.box, settings.connection_request_timeout,
                                 settings.connection_request_attempts, services.repositories.devices, services.clock)
    api = Api(
        services=services,
        auth=TokenAuthority(services.repositories.tokens, services.clock),
        connreq=connreq,
        metrics=services.metrics,
        bulk=BulkRunner(services, connreq),
    )
    app[API] = api
    table = route_table()
    app[ROUTES] = table
    app.middlewares.append(error_middleware(services.metrics))
    table.install(app)

    async def close(_app: web.Application) -> None:
        await api.bulk.close()
        await connreq.close()

    app.on_cleanup.append(close)
