"""Accounts beyond create/disable (admins): change a user's role, reset a password, end a user's
sessions; and the audit page of the whole fleet, filtered by user and by action.

Every change is audited as the admin (``user:<name>``). An admin cannot change their own role or
end their own sessions here (log out does that), so the console is never left without the admin
who is using it. The audit page reads ``audit`` newest first by top-level equalities
(``token_name``; ``route`` + ``method``), 100 a page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from aiohttp import web

from acs.api.pagination import encode_cursor, time_id_before
from acs.console.web import STATE_CHANGING, audit, console_of, form_of, guard, user_of
from schemas.api import Role

AUDIT_PAGE = 100


@dataclass(frozen=True)
class Refusal:
    """Why an action on a user was not done: the Users page shows ``key`` with ``status``."""

    key: str
    status: int


NOT_FOUND = Refusal("not_found", 404)
# An action on the user named in the path: what the audit says was done, or why it was not.
UserChange = Callable[[web.Request, str], Awaitable[str | Refusal]]


async def _act_on_user(request: web.Request, done: str, change: UserChange) -> web.StreamResponse:
    """The shape of every account action: ``change`` acts on the path's user; done, it is audited
    as done to that user and the Users page says ``done``; refused, the Users page says why."""
    from acs.console.pages import users_with_error

    username = request.match_info["username"]
    outcome = await change(request, username)
    if isinstance(outcome, Refusal):
        return await users_with_error(request, outcome.key, outcome.status)
    await audit(request, outcome, 200, user_changed=username)
    raise web.HTTPSeeOther(f"/users?done={done}")


@guard(Role.ADMIN)
async def change_role(request: web.Request) -> web.StreamResponse:
    return await _act_on_user(request, "role", _change_role)


@guard(Role.ADMIN)
async def reset_password(request: web.Request) -> web.StreamResponse:
    return await _act_on_user(request, "password", _reset_password)


@guard(Role.ADMIN)
async def end_sessions(request: web.Request) -> web.StreamResponse:
    return await _act_on_user(request, "sessions", _end_sessions)


async def _change_role(request: web.Request, username: str) -> str | Refusal:
    accounts = console_of(request).accounts
    role = (await form_of(request)).get("role", "")
    if role not in {r.value for r in Role}:
        return Refusal("user_invalid", 422)
    if username == user_of(request).username:
        return Refusal("cannot_change_own_role", 409)
    before = await accounts.users.by_name(username)
    if before is None or not await accounts.set_role(username, Role(role)):
        return NOT_FOUND
    return f"Change the role of console user {username}: {before.get('role')} -> {role}"


async def _reset_password(request: web.Request, username: str) -> str | Refusal:
    password = (await form_of(request)).get("password", "")
    try:
        changed = await console_of(request).accounts.reset_password(username, password)
    except ValueError:
        return Refusal("password_short", 422)
    if not changed:
        return NOT_FOUND
    return f"Reset the password of console user {username} (their sessions ended)"


async def _end_sessions(request: web.Request, username: str) -> str | Refusal:
    accounts = console_of(request).accounts
    if username == user_of(request).username:
        return Refusal("cannot_end_own_sessions", 409)
    if await accounts.users.by_name(username) is None:
        return NOT_FOUND
    return f"End the sessions of console user {username} ({await accounts.end_sessions(username)})"


def _actions(app: web.Application) -> list[tuple[str, str]]:
    """(method, route) of every state-changing route of the API and the console: the action filter."""
    found = set()
    for route in app.router.routes():
        if route.method in STATE_CHANGING and route.resource is not None:
            found.add((route.method, route.resource.canonical))
    return sorted(found, key=lambda action: (action[1], action[0]))


@guard(Role.ADMIN)
async def audit_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    query = {key: value for key, value in request.query.items() if isinstance(value, str)}
    who = query.get("who", "").strip()
    action = query.get("action", "").strip()
    equal: dict[str, str] = {}
    if who:
        equal["token_name"] = who  # a console user as user:<name>, an API token by its name
    if action:
        method, _, route = action.partition(" ")
        equal["method"], equal["route"] = method, route
    before = time_id_before(query.get("cursor"))
    entries = await console.api.services.repositories.audit.page(before, AUDIT_PAGE + 1, equal)
    next_query = None
    if len(entries) > AUDIT_PAGE:
        last = entries[AUDIT_PAGE - 1]
        next_query = urlencode({**{k: v for k, v in (("who", who), ("action", action)) if v},
                                "cursor": encode_cursor({"at": last["at"], "id": last["_id"]})})
    return console.renderer.page("audit.html", user_of(request), entries=entries[:AUDIT_PAGE], who=who,
                                 action=action, actions=_actions(request.app), next_query=next_query, quote=quote)


ROUTES = [
    web.post("/users/{username}/role", change_role),
    web.post("/users/{username}/password", reset_password),
    web.post("/users/{username}/sessions/end", end_sessions),
    web.get("/audit", audit_page),
]
