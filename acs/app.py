"""The two aiohttp applications of one ACS process: the CWMP endpoint, and the operator API with the console."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from pymongo.errors import PyMongoError

from acs.api import setup_api
from acs.console import setup_console
from acs.cwmp_server.auth import CpeAuthenticator
from acs.cwmp_server.capture import SoapCapture
from acs.cwmp_server.files import TransferEndpoint, transfer_routes
from acs.cwmp_server.handler import CwmpHandler, cwmp_routes
from acs.cwmp_server.proxy import forwarded_middleware, trusted_networks
from acs.listener import limits_middleware
from acs.services import Services
from tasks.stopping import cancel_and_wait

SERVICES = web.AppKey("services", Services)
CAPTURE = web.AppKey("soap_capture", SoapCapture)


async def no_sniffing(_request: web.Request, response: web.StreamResponse) -> None:
    """Every response (static files, JSON errors, device files) is read as the type it declares."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def create_cwmp_app(services: Services) -> web.Application:
    settings = services.settings
    # A little above the parser's own limit so the parser, not aiohttp, names the problem.
    middlewares = [limits_middleware()]
    if settings.cwmp_trusted_proxies:
        middlewares.append(forwarded_middleware(trusted_networks(settings.cwmp_trusted_proxies)))
    app = web.Application(client_max_size=settings.max_body_bytes + 1, middlewares=middlewares)
    app[SERVICES] = services
    authenticator = CpeAuthenticator.from_settings(settings, services)
    capture = SoapCapture(services.repositories.soap_captures, services.repositories.sessions, services.clock,
                          settings.soap_capture_refresh)
    handler = CwmpHandler(
        services.cwmp,
        authenticator,
        secure_cookie=settings.cwmp_tls_cert is not None,
        max_requests=settings.cwmp_max_requests,
        db_timeout=settings.cwmp_db_timeout,
        capture=capture,
    )
    app.add_routes(transfer_routes(TransferEndpoint(services)))
    app.add_routes(cwmp_routes(handler))
    app.on_response_prepare.append(no_sniffing)
    app.cleanup_ctx.append(_profiles_kept_fresh)

    async def capture_switches(_app: web.Application) -> AsyncIterator[None]:
        await capture.start()
        yield
        await capture.stop()

    app[CAPTURE] = capture
    app.cleanup_ctx.append(capture_switches)
    app.cleanup_ctx.append(_lazy_sessions_kept)
    return app


async def _lazy_sessions_kept(app: web.Application) -> AsyncIterator[None]:
    """Lazy sessions (``acs/cwmp_server/service.py``): written out when their connection closes,
    ended past their expiry; at shutdown every one left is written out for another worker."""
    service = app[SERVICES].cwmp
    sweeper = asyncio.create_task(service.keep_lazy_sessions())
    yield
    await cancel_and_wait(sweeper, "the lazy sessions' sweep")
    await service.sweep_lazy(write_out_all=True)  # a failure is logged, session by session


async def _profiles_kept_fresh(app: web.Application) -> AsyncIterator[None]:
    """Issue 14: sessions read the profiles from memory; this loop re-reads them in the background."""
    catalog = app[SERVICES].profiles.catalog
    with contextlib.suppress(PyMongoError):  # the database may come up later: the first session reads them
        await catalog.refresh()
    refresher = asyncio.create_task(catalog.keep_fresh())
    yield
    await cancel_and_wait(refresher, "the health catalog's refresher")


def create_api_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SERVICES] = services
    setup_api(app, services)
    app.middlewares.append(limits_middleware())  # inside the API's error middleware
    setup_console(app)
    app.on_response_prepare.append(no_sniffing)
    return app
