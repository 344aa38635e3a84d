"""Login, logout, search, the user's settings and (for admins) console accounts."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote, urlsplit

from aiohttp import web

from acs.console import devices_list, fleet
from acs.console.accounts import LANGUAGES, USERNAME_PATTERN, LoginRefused, csrf_ok
from acs.console.render import time_zones, valid_time_zone
from acs.console.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    audit,
    console_of,
    form_of,
    guard,
    user_of,
)
from schemas.api import Role
from tasks.store.users import DuplicateUserName


def _safe_next(target: str | None) -> str:
    """A path of this console, else ``/``: never a redirect to another site.

    Browsers drop tabs and newlines from a URL and read a backslash as ``/``, so ``/<TAB>/evil.example/``
    or ``/<backslash>evil.example`` would become the scheme-relative ``//evil.example/``: only
    printable ASCII without a backslash is accepted (the guard passes the still percent-encoded
    path), and what remains must parse as a bare path.
    """
    if not target or not _LOCAL_PATH.fullmatch(target) or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and parts.path.startswith("/") else "/"


_LOCAL_PATH = re.compile(r"/[\x21-\x5b\x5d-\x7e]*")  # printable ASCII but the backslash (0x5c); no space


async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request, error="session_expired" if request.query.get("expired") else None)


def _login_form(request: web.Request, error: str | None, status: int = 200) -> web.StreamResponse:
    console = console_of(request)
    token = secrets.token_urlsafe(24)
    language = request.query.get("lang", "en")
    response = console.renderer.page("login.html", None, status=status, csrf=token, error=error,
                                     next=_safe_next(request.query.get("next")), language=language)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=console.secure_cookies,
                        path="/login")
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await form_of(request)
    # Login CSRF: double-submit of a cookie set with the form (no session exists yet).
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf")):
        return _login_form(request, "csrf_failed", 403)
    try:
        token = await console.accounts.login(form.get("username", ""), form.get("password", ""), request.remote)
    except LoginRefused as refused:
        if refused.reason == "throttled":
            response = _login_form(request, "login_throttled", 429)
            response.headers["Retry-After"] = "60"
            return response
        return _login_form(request, "login_" + refused.reason, 401)
    response = web.HTTPSeeOther(_safe_next(form.get("next")))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=console.secure_cookies,
                        path="/")
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise response


@guard(Role.VIEWER)
async def logout(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    await console.accounts.logout(request.cookies.get(SESSION_COOKIE, ""))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@guard(Role.VIEWER)
async def search(request: web.Request) -> web.StreamResponse:
    """``/``: the fleet overview; with a search or a filter, the device list (one match opens its page)."""
    query = {key: value for key, value in request.query.items() if isinstance(value, str)}
    bound = await _subscriber_device(request, query)
    if bound is not None:
        raise web.HTTPSeeOther(f"/devices/{quote(bound, safe='')}")  # an account number or PPPoE login
    if devices_list.is_search(query):
        return await devices_list.device_list(request)
    return await fleet.overview(request)


async def _subscriber_device(request: web.Request, query: dict[str, str]) -> str | None:
    """Issue 14: line 2 types an account number or a PPPoE login; its bound device opens directly."""
    text = (query.get("q") or "").strip()
    if not text or set(query) - {"q"} or len(text) > 128:
        return None
    subscribers = console_of(request).api.services.repositories.subscribers
    for record in await subscribers.search(text, 2):
        if record.get("device_id") and text in (record["_id"], record.get("pppoe_login")):
            return str(record["device_id"])
    return None


@guard(Role.VIEWER)
async def save_settings(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    user = user_of(request)
    form = await form_of(request)
    fields: dict[str, str] = {}
    if form.get("language") in LANGUAGES:
        fields["language"] = form["language"]
    if form.get("time_zone") and valid_time_zone(form["time_zone"]):
        fields["time_zone"] = form["time_zone"]
    if fields:
        await console.accounts.users.set_fields(user.username, fields)
    referer = urlsplit(request.headers.get("Referer", ""))
    back = referer.path + (f"?{referer.query}" if referer.query else "")
    raise web.HTTPSeeOther(_safe_next(form.get("next") or back))


@guard(Role.VIEWER)
async def settings_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    return console.renderer.page("settings.html", user_of(request), zones=time_zones(), languages=LANGUAGES)


@guard(Role.ADMIN)
async def users_page(request: web.Request) -> web.StreamResponse:
    return await _users(request)


async def users_with_error(request: web.Request, error: str, status: int) -> web.StreamResponse:
    """The Users page with a refusal on it (the account actions of ``admin`` answer with it)."""
    return await _users(request, error, status)


async def _users(request: web.Request, error: str | None = None, status: int = 200) -> web.StreamResponse:
    console = console_of(request)
    users = await console.accounts.users.page(None, 500)
    now = console.api.services.clock()
    sessions = {user["username"]: await console.accounts.sessions.count_for_user(user["username"], now)
                for user in users}
    return console.renderer.page("users.html", user_of(request), status=status, users=users, error=error,
                                 roles=[role.value for role in Role], sessions=sessions,
                                 done=request.query.get("done"))


@guard(Role.ADMIN)
async def create_user(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await form_of(request)
    username, role = form.get("username", ""), form.get("role", "")
    if not re.fullmatch(USERNAME_PATTERN, username) or role not in {r.value for r in Role}:
        return await _users(request, "user_invalid", 422)
    try:
        await console.accounts.create(username, form.get("password", ""), Role(role), user_of(request).who)
    except ValueError:
        return await _users(request, "password_short", 422)
    except DuplicateUserName:
        return await _users(request, "user_exists", 409)
    await audit(request, f"Create console user {username} ({role})", 201, user_created=username)
    raise web.HTTPSeeOther("/users")


@guard(Role.ADMIN)
async def disable_user(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    username = request.match_info["username"]
    form = await form_of(request)
    disabled = form.get("disabled", "true") != "false"
    if username == user_of(request).username and disabled:
        return await _users(request, "cannot_disable_self", 409)
    if not await console.accounts.set_disabled(username, disabled):
        return await _users(request, "not_found", 404)
    await audit(request, f"{'Disable' if disabled else 'Enable'} console user {username}", 200,
                user_changed=username)
    raise web.HTTPSeeOther("/users")


ROUTES = [
    web.get("/login", login_page),
    web.post("/login", login),
    web.post("/logout", logout),
    web.get("/", search),
    web.get("/settings", settings_page),
    web.post("/settings", save_settings),
    web.get("/users", users_page),
    web.post("/users", create_user),
    web.post("/users/{username}/disabled", disable_user),
]
