"""The route registry: one record per endpoint feeding both aiohttp routing and openapi.json.

A :class:`Route` names its method, path, summary, role, query/body/response models and status.
:func:`endpoint` wraps the handler: authenticate and authorize, parse the query and body into
their models (422 on a problem), call the handler, render its reply, and audit every write.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from acs.api.auth import Principal
from acs.api.context import API, Api
from acs.api.errors import ApiError, as_api_error, route_label
from schemas.api import Role

log = logging.getLogger("acs.api")
M = TypeVar("M", bound=BaseModel)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Reply:
    body: BaseModel | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # a non-JSON body, of the route's content_type
    stream: web.StreamResponse | None = None  # already sent by the handler (a file's content)


@dataclass
class Call:
    """One request as a handler sees it, with its parsed inputs."""

    request: web.Request
    api: Api
    principal: Principal | None
    parsed_query: BaseModel | None = None
    parsed_body: BaseModel | None = None
    audit: dict[str, Any] = field(default_factory=dict)  # targets a handler adds to the audit entry

    def query(self, model: type[M]) -> M:
        assert isinstance(self.parsed_query, model), f"route declares no {model.__name__} query"
        return self.parsed_query

    def body(self, model: type[M]) -> M:
        assert isinstance(self.parsed_body, model), f"route declares no {model.__name__} body"
        return self.parsed_body

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    @property
    def who(self) -> str:
        return self.principal.name if self.principal is not None else "anonymous"


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    role: Role | None
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    other_statuses: tuple[int, ...] = ()  # besides 401/403/422, which follow from the rest
    content_type: str = "application/json"
    raw_body: str | None = None  # media type of a request body the handler streams itself (no body model)

    @property
    def audited(self) -> bool:
        return self.method in WRITE_METHODS and self.role is not None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")


class RouteTable:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        if any(r.method == route.method and r.path == route.path for r in self.routes):
            raise ValueError(f"{route.method} {route.path} registered twice")
        self.routes.append(route)

    def extend(self, routes: list[Route]) -> None:
        for route in routes:
            self.add(route)

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, endpoint(route))


def endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        api = request.app[API]
        principal = None
        if route.role is not None:
            principal = await api.auth.authorize(request.headers.get("Authorization"), route.role)
        call = Call(request, api, principal)
        if not route.audited:
            return render(route, await _run(route, call))
        try:
            reply = await _run(route, call)
        except Exception as exc:
            known = as_api_error(exc)
            await record_audit(route, call, known.status if known is not None else 500)
            raise
        await record_audit(route, call, reply.status)
        return render(route, reply)

    handle.__name__ = route.operation_id
    return handle


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def _refuse_nul(where: str, value: Any) -> None:
    # No TR-069 value can hold NUL (CWMP is XML), and MongoDB-compatible stores differ on it
    # (PostgreSQL's jsonb refuses it): say so instead of failing deeper down.
    if _has_nul(value):
        raise ApiError(400, "invalid_text", f"{where} contains a NUL character (U+0000), which is not allowed")


async def _run(route: Route, call: Call) -> Reply:
    _refuse_nul("the path", dict(call.request.match_info))
    _refuse_nul("the query", dict(call.request.query))
    if route.query is not None:
        call.parsed_query = parse_query(route.query, call.request)
    if route.body is not None:
        call.parsed_body = await parse_body(route.body, call.request)
    return await route.handler(call)


def parse_query(model: type[M], request: web.Request) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        known = as_api_error(exc, "query")
        assert known is not None
        raise known from exc


async def parse_body(model: type[M], request: web.Request) -> M:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(422, "validation_error", "a JSON request body is required")
    parsed = model.model_validate_json(raw)
    _refuse_nul("the body", parsed.model_dump())
    return parsed


def render(route: Route, reply: Reply) -> web.StreamResponse:
    if reply.stream is not None:
        return reply.stream
    if reply.text is not None:
        content_type, _, _ = route.content_type.partition(";")
        return web.Response(status=reply.status, text=reply.text, content_type=content_type, headers=reply.headers)
    if reply.body is None:
        return web.Response(status=reply.status, headers=reply.headers)
    return web.Response(
        status=reply.status,
        body=reply.body.model_dump_json(),
        content_type="application/json",
        headers=reply.headers,
    )


async def record_audit(route: Route, call: Call, status: int) -> None:
    principal = call.principal
    if principal is None:
        return
    request = call.request
    match_info = request.match_info
    entry: dict[str, Any] = {
        "at": call.api.services.clock(),
        "token_id": principal.token_id,
        "token_name": principal.name,
        "role": principal.role.value,
        "method": request.method,
        "path": request.path,
        "route": route_label(request),
        "summary": route.summary,
        "remote": request.remote,
        "status": status,
        "device_id": match_info.get("device_id"),
        "task_id": match_info.get("task_id"),
        **call.audit,
    }
    try:
        await call.api.services.repositories.audit.record(entry)
    except Exception:  # the write happened; a lost audit entry must not turn it into a 500
        log.exception("could not record the audit entry of %s %s by %s", request.method, request.path,
                      principal.name)
