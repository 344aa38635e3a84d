"""The API's one error type and the middleware that renders every failure as JSON.

``{"error": {"code": "...", "message": "..."}}`` for everything under the API: errors raised by
handlers (:class:`ApiError`), task-state conflicts from the queue, pydantic validation (422 with
the field path), unknown routes (404) and methods (405). Anything else is a 500 with a generic
message; the log has the traceback and the request id, which the response carries in
``X-Request-Id`` so an operator can find it.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, OperationFailure

from acs.metrics import Counter, Metrics
from schemas.api import ErrorBody, ErrorDetail
from tasks.campaigns.service import CampaignError
from tasks.queue import TaskError
from tasks.store.db import database_unavailable

log = logging.getLogger("acs.api")
Found = TypeVar("Found")
REQUEST_ID = web.RequestKey("request_id", str)
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
TASK_ERROR_STATUS = {"not_found": 404, "conflict": 409, "idempotency_conflict": 409}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A request the API refuses, and why; rendered by :func:`error_middleware`."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def not_found(cls, what: str) -> ApiError:
        return cls(404, "not_found", f"no {what}")


def found_or_404(found: Found | None, what: str) -> Found:
    """What a lookup by id found, or a 404 that names ``what`` was looked for."""
    if found is None:
        raise ApiError.not_found(what)
    return found


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return web.Response(
        status=status, body=body.model_dump_json(exclude_none=True), content_type="application/json", headers=headers
    )


def validation_details(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    return [
        {"loc": ".".join([where, *(str(part) for part in error["loc"])]), "reason": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def as_api_error(exc: BaseException, where: str = "body") -> ApiError | None:
    """The ApiError a known failure stands for; None for an unexpected one (a 500)."""
    match exc:
        case ApiError():
            return exc
        case CampaignError():
            return ApiError(exc.status, exc.code, exc.message)
        case TaskError():
            return ApiError(TASK_ERROR_STATUS.get(exc.code, 409), exc.code, exc.message)
        case ValidationError():
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                return ApiError(400, "invalid_json", "the request body is not valid JSON")
            details = validation_details(exc, where)
            text = "; ".join(f"{detail['loc']}: {detail['reason']}" for detail in details[:5])
            return ApiError(422, "validation_error", text, details)
        case ConnectionFailure() | OperationFailure() if database_unavailable(exc):
            # The database is down or restarting: nothing was accepted, the client may retry.
            log.warning("database unavailable: %s", exc)
            return ApiError(503, "database_unavailable", "the database is unavailable; retry shortly")
    return None


def _http_error(exc: web.HTTPException) -> web.Response:
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "http_error")
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    message = exc.reason if exc.status != 404 else "no such endpoint"
    return error_response(exc.status, code, message, headers=headers)


def route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


def request_id_of(request: web.Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _SAFE_REQUEST_ID.match(offered) else secrets.token_hex(8)


def error_middleware(metrics: Metrics) -> Middleware:
    requests = metrics.counter("acs_api_requests_total", "Operator API requests", ("route", "method", "status"))
    seconds = metrics.counter("acs_api_request_seconds_total", "Time spent answering API requests", ("route",))

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request_id_of(request)
        request[REQUEST_ID] = request_id
        started = time.perf_counter()
        response = await _answer(request, handler, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        _count(requests, seconds, request, response.status, time.perf_counter() - started)
        return response

    return middleware


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except Exception as exc:
        known = as_api_error(exc)
        if known is not None:
            return error_response(known.status, known.code, known.message, known.details)
        log.exception("request %s %s %s failed", request_id, request.method, request.path)
        return error_response(500, "internal_error", f"internal error (request id {request_id})")


def _count(requests: Counter, seconds: Counter, request: web.Request, status: int, elapsed: float) -> None:
    route = route_label(request)
    requests.inc(route=route, method=request.method, status=str(status))
    seconds.inc(elapsed, route=route)
