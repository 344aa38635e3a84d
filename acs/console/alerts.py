"""Alerts: new incidents pushed live to every open console (server-sent events), and the alerts page.

One ``AlertHub`` per process reads the open incidents every ``ALERT_POLL`` seconds while at least
one console listens (one query for all of them, by ``status`` equality), and hands each stream
the open count when it changes and every incident newer than those it had seen. Incidents are
opened by the detection job in whichever process holds its lease: reading the database is what
reaches the consoles of every process and host. A stream says each incident in its user's
language; the browser side (``static/alerts.js``) keeps the count in the navigation bar, shows a
notice, and plays a sound or shows a browser notification when the user switched them on.

The webhook (``tasks/webhooks.py``) has its outbox on the same page, for admins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from acs.console.render import SECURITY_HEADERS, words_for
from acs.console.web import console_of, guard, user_of
from acs.listener import GUARD
from schemas.api import Role
from tasks.stopping import cancel_and_wait
from tasks.store.db import Document
from tasks.store.incidents import IncidentRepository

log = logging.getLogger("acs.console")
ALERT_POLL = 2.0  # seconds between two reads of the open incidents while a console listens
HEARTBEAT = 15.0  # a comment line this often keeps proxies from closing an idle stream
TICK = 1.0  # how often a stream looks whether the server is stopping
QUEUE = 100  # events a slow console may lag behind; past it the stream ends and the browser reconnects
DELIVERIES_SHOWN = 50


class AlertHub:
    def __init__(self, incidents: IncidentRepository, interval: float = ALERT_POLL) -> None:
        self.incidents = incidents
        self.interval = interval
        self.subscribers: set[asyncio.Queue[tuple[str, Any] | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._seen: int | None = None
        self._count: int | None = None

    def subscribe(self) -> asyncio.Queue[tuple[str, Any] | None]:
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(QUEUE)
        self.subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="console-alerts")
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, Any] | None]) -> None:
        self.subscribers.discard(queue)

    async def close(self) -> None:
        for queue in list(self.subscribers):
            self._offer(queue, None)
        if self._task is not None:
            await cancel_and_wait(self._task, "the console's alert poller")

    async def _poll(self) -> None:
        while self.subscribers:
            try:
                await self._read_once()
            except Exception:  # a database hiccup: the next read tries again
                log.exception("alerts: could not read the open incidents")
            await asyncio.sleep(self.interval)
        self._seen = self._count = None  # nobody listens: start afresh with the next console

    async def _read_once(self) -> None:
        open_now = await self.incidents.open_incidents()
        newest = max((int(incident["_id"]) for incident in open_now), default=0)
        if self._seen is not None:
            for incident in sorted(open_now, key=lambda doc: int(doc["_id"])):
                if int(incident["_id"]) > self._seen:
                    self._broadcast(("incident", incident))
        self._seen = max(newest, self._seen or 0)
        if len(open_now) != self._count:
            self._count = len(open_now)
            self._broadcast(("count", self._count))

    def _broadcast(self, event: tuple[str, Any]) -> None:
        for queue in list(self.subscribers):
            self._offer(queue, event)

    def _offer(self, queue: asyncio.Queue[tuple[str, Any] | None], event: tuple[str, Any] | None) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:  # too far behind: end that stream, its browser reconnects and recounts
            self.subscribers.discard(queue)
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(None)


HUB = web.AppKey("console_alert_hub", AlertHub)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


def incident_alert(incident: Document, words: Any) -> dict[str, Any]:
    return {"id": incident["_id"], "title": words.incident_title(incident), "cause": words.incident_cause(incident),
            "url": f"/incidents/{incident['_id']}", "heading": words.t("alert_new_incident", id=incident["_id"])}


@guard(Role.VIEWER)
async def alert_stream(request: web.Request) -> web.StreamResponse:
    """``text/event-stream``: ``count`` (open incidents) at once and on change; ``incident`` for each new one."""
    hub = request.app[HUB]
    words = words_for(user_of(request))
    listener = request.app.get(GUARD)
    response = web.StreamResponse(headers={**SECURITY_HEADERS, "Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = hub.subscribe()
    try:
        await response.write(b"retry: 5000\n\n")
        await response.write(_sse("count", {"open": len(await hub.incidents.open_incidents())}))
        quiet = 0.0
        while listener is None or not listener.stopping:  # at shutdown: end, the browser reconnects elsewhere
            try:
                event = await asyncio.wait_for(queue.get(), TICK)
            except TimeoutError:
                quiet += TICK
                if quiet >= HEARTBEAT:
                    await response.write(b": keep-alive\n\n")
                    quiet = 0.0
                continue
            if event is None:
                break
            quiet = 0.0
            kind, value = event
            data = {"open": value} if kind == "count" else incident_alert(value, words)
            await response.write(_sse(kind, data))
    except (ConnectionResetError, ConnectionError):
        pass  # the console went away
    finally:
        hub.unsubscribe(queue)
    return response


@guard(Role.VIEWER)
async def alerts_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    user = user_of(request)
    open_now = sorted(await services.repositories.incidents.open_incidents(), key=lambda doc: -int(doc["_id"]))
    deliveries = await services.repositories.webhooks.recent(DELIVERIES_SHOWN) if user.can(Role.ADMIN) else []
    return console.renderer.page("alerts.html", user, open_incidents=open_now, deliveries=deliveries,
                                 webhook=services.settings.webhook_url is not None,
                                 max_attempts=services.settings.webhook_max_attempts)


ROUTES = [
    web.get("/alerts", alerts_page),
    web.get("/alerts/stream", alert_stream),
]


def setup_alerts(app: web.Application, incidents: IncidentRepository) -> None:
    app[HUB] = AlertHub(incidents)
    app.router.add_routes(ROUTES)

    async def close(_app: web.Application) -> None:
        await app[HUB].close()

    app.on_shutdown.append(close)
