"""The line-2 web console, served by ``acs serve`` on the API listener under ``/``.

Server-rendered pages (Jinja2) and one small script for live updates; every asset comes from
this package (no CDN). Modules: ``accounts`` (passwords, sessions, CSRF, lock-out), ``web``
(guards, audit), ``render`` (templates, languages, time zones), ``pages`` (login, search,
settings, users), ``fleet`` (the fleet overview, OLT -> PON), ``devices_list`` (the device list,
saved filters, CSV), ``tasks_pages`` (task queue, faults), ``bulk`` (bulk actions), ``admin``
(roles, passwords, sessions, the audit page), ``device``
(device page, parameter tree, history), ``actions`` (tasks and other device actions), ``incidents``
(when the incident service is present), ``trends`` (charts).
With incidents come ``alerts`` (new ones pushed live, the webhook's outbox); ``line3``: notes, diff,
configuration backup and restore; ``lan_panel``: the slow-internet panel; ``campaigns``: firmware
campaigns.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path

from aiohttp import web

from acs.api.context import API
from acs.console import (
    actions,
    admin,
    bulk,
    campaigns,
    device,
    devices_list,
    fleet,
    incidents,
    lan_panel,
    line3,
    pages,
    tasks_pages,
    trends,
)
from acs.console.accounts import Accounts
from acs.console.alerts import setup_alerts
from acs.console.render import Renderer
from acs.console.web import CONSOLE, Console, unknown_page
from tasks.store.saved_filters import SavedFilterRepository
from tasks.store.users import ConsoleSessionRepository, UserRepository

STATIC = Path(str(files("acs.console").joinpath("static")))


def setup_console(app: web.Application) -> None:
    """Add the console's routes to the API application (after ``setup_api``)."""
    api = app[API]
    services = api.services
    users = UserRepository(services.database)
    sessions = ConsoleSessionRepository(services.database)
    console = Console(
        api=api,
        accounts=Accounts(users, sessions, services.clock),
        renderer=Renderer(),
        secure_cookies=services.settings.api_tls_cert is not None,
        panels=optional_panels(),
    )
    console.renderer.env.globals["panels"] = console.panels
    app[CONSOLE] = console
    for module in (pages, device, actions, trends, fleet, devices_list, tasks_pages, admin, line3, lan_panel,
                   campaigns):
        app.router.add_routes(module.ROUTES)
    bulk.setup(app)
    if "incidents" in console.panels:
        app.router.add_routes(incidents.ROUTES)
        setup_alerts(app, services.repositories.incidents)
    app.router.add_static("/static/console/", STATIC, name="console_static")
    app.router.add_get("/{tail:.*}", unknown_page)  # last: only what no other route matched

    async def indexes(_app: web.Application) -> None:
        await users.ensure_indexes()
        await sessions.ensure_indexes()
        await console.accounts.attempts.ensure_indexes()
        await SavedFilterRepository(services.database).ensure_indexes()

    app.on_startup.append(indexes)


BACKENDS = {"incidents": "tasks.incidents.service", "diagnosis": "tasks.device_diagnosis"}


def optional_panels() -> frozenset[str]:
    """Panels whose backend exists in this build (the incident and diagnosis services)."""
    return frozenset(panel for panel, module in BACKENDS.items() if find_spec(module) is not None)
