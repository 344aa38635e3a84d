"""What console handlers share: the context, login and role checks, CSRF, audit, replies.

Every console handler is wrapped by :func:`guard`: no session -> the login page (pages) or 401
(JSON); a role too low -> 403; a state-changing method without the session's CSRF token -> 403.
Console actions are audited with the same fields as API writes (``acs.api.routes.record_audit``),
the user appearing as ``user:<name>`` where a token appears by its name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from acs.api.context import Api
from acs.console.accounts import Accounts, ConsoleUser, csrf_ok
from acs.console.render import SECURITY_HEADERS, Renderer, words_for
from schemas.api import Role

log = logging.getLogger("acs.console")
SESSION_COOKIE = "acs_console"
LOGIN_CSRF_COOKIE = "acs_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Console:
    api: Api
    accounts: Accounts
    renderer: Renderer
    secure_cookies: bool
    panels: frozenset[str] = frozenset()  # optional backends present: "incidents", "diagnosis"


CONSOLE = web.AppKey("console", Console)
USER = web.RequestKey("console_user", ConsoleUser)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def user_of(request: web.Request) -> ConsoleUser:
    return request[USER]


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "") or request.path.endswith(".json")


def json_reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=SECURITY_HEADERS, dumps=_dumps)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def device_url(device_id: str, tail: str = "") -> str:
    return f"/devices/{quote(device_id, safe='')}{tail}"


def refuse(request: web.Request, status: int, message_key: str, **params: Any) -> web.StreamResponse:
    """A refusal in the user's language: a page for a browser, JSON (code + sentence) for the page's script."""
    console = console_of(request)
    user = request.get(USER)
    if wants_json(request):
        message = words_for(user).t(message_key, **params)
        return json_reply({"error": {"code": message_key.removeprefix("err_"), "message": message}}, status)
    return console.renderer.page("error.html", user, status=status, message_key=message_key, params=params)


def guard(role: Role) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            console = console_of(request)
            user = await console.accounts.user_for(request.cookies.get(SESSION_COOKIE))
            if user is None:
                if wants_json(request):
                    message = words_for(None, _language_of(request)).t("session_expired")
                    return json_reply({"error": {"code": "unauthorized", "message": message}}, 401)
                if request.method in STATE_CHANGING:
                    # A form sent after the session ended: say so (the page's script keeps typed text).
                    back = request.headers.get("Referer", "/")
                    raise web.HTTPSeeOther(f"/login?expired=1&next={quote(_local_path(back), safe='')}")
                raise web.HTTPSeeOther(f"/login?next={quote(request.rel_url.raw_path_qs, safe='')}")
            request[USER] = user
            if request.method in STATE_CHANGING and not await _csrf_passes(request, user):
                log.warning("console: CSRF token missing or wrong for %s %s by %s", request.method, request.path,
                            user.username)
                return refuse(request, 403, "csrf_failed")
            if not user.can(role):
                return refuse(request, 403, "forbidden")
            return await handler(request)

        handle.__name__ = handler.__name__
        return handle

    return wrap


def _language_of(request: web.Request) -> str:
    accepted = request.headers.get("Accept-Language", "")
    return "ru" if accepted.lower().startswith("ru") else "en"


def _local_path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


async def unknown_page(request: web.Request) -> web.StreamResponse:
    """A console URL that does not exist: a page in the user's language (API paths keep their JSON 404)."""
    if request.path.startswith("/api/") or wants_json(request):
        raise web.HTTPNotFound()
    console = console_of(request)
    user = await console.accounts.user_for(request.cookies.get(SESSION_COOKIE))
    return console.renderer.page("error.html", user, status=404, message_key="page_not_found", params={},
                                 language=_language_of(request))


async def _csrf_passes(request: web.Request, user: ConsoleUser) -> bool:
    offered = request.headers.get(CSRF_HEADER)
    if offered is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        field = form.get("csrf")
        offered = field if isinstance(field, str) else None
    return csrf_ok(user.csrf, offered)


async def form_of(request: web.Request) -> dict[str, str]:
    """Form fields (or a JSON object) as strings."""
    if request.content_type == "application/json":
        body = await request.json()
        return {str(key): str(value) for key, value in body.items()} if isinstance(body, dict) else {}
    form = await request.post()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def audit(request: web.Request, summary: str, status: int, **targets: Any) -> None:
    """One audit entry, shaped like the API's, for a console action."""
    console = console_of(request)
    user = user_of(request)
    entry: dict[str, Any] = {
        "at": console.api.services.clock(),
        "token_id": None,
        "token_name": user.who,
        "user": user.username,
        "via": "console",
        "role": user.role.value,
        "method": request.method,
        "path": request.path,
        "route": request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched",
        "summary": summary,
        "remote": request.remote,
        "status": status,
        "device_id": None,
        "task_id": None,
        **targets,
    }
    try:
        await console.api.services.repositories.audit.record(entry)
    except Exception:  # the action happened; a lost audit entry must not turn it into an error
        log.exception("could not record the audit entry of %s by %s", request.path, user.username)
