"""The incident webhook (issue 16 item 7) against a real local HTTP receiver on 127.0.0.1.

The receiver checks each delivery's HMAC signature, refuses the first attempts (500, then a
dropped connection), and the outbox retries with back-off until it accepts; a "restart" (a new
outbox over the same database) loses nothing. Time is the test's clock, so back-off needs no sleep.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from acs.config import Settings
from acs.webhooks import http_sender
from tasks.webhooks import SIGNATURE_HEADER, WebhookConfig, WebhookOutbox, backoff, signature_valid
from tests.console.conftest import ConsoleHarness

SECRET = b"shared-secret-of-the-ticket-system"


@dataclass
class Receiver:
    server: TestServer
    answers: list[str]  # what to do with each request, in order: "500", "drop", "200"
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook/T0K3N"))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        me = holder[0]
        body = await request.read()
        if not signature_valid(SECRET, request.headers.get(SIGNATURE_HEADER, ""), body):
            me.bad_signatures += 1
            return web.Response(status=401)
        answer = me.answers.pop(0) if me.answers else "200"
        me.received.append({"body": json.loads(body), "answer": answer, "headers": dict(request.headers)})
        if answer == "drop":
            assert request.transport is not None
            request.transport.close()  # the connection dies before any answer
            return web.Response(status=200)
        return web.Response(status=int(answer))

    app = web.Application()
    app.router.add_post("/hook/{token}", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    holder.append(Receiver(server, []))
    try:
        yield holder[0]
    finally:
        await server.close()


async def _open_incident(console: ConsoleHarness, title: str, now: datetime) -> int:
    number = await console.services.repositories.incidents.open({
        "key": f"pon:{title}", "dimension": "pon", "value": title, "title": title, "cause": "shared",
        "selector": [f"pon:{title}"], "opened_at": now, "updated_at": now, "members": [], "member_count": 5,
        "affected_now": 5, "peak": 5, "group_size": 16, "baseline": 0.0, "signals": {"offline": 5},
        "acknowledged": None, "comments": [], "timeline": []})
    assert number is not None
    return number


async def test_a_new_incident_is_delivered_signed_retried_and_survives_a_restart(
    console: ConsoleHarness, receiver: Receiver
) -> None:
    repositories = console.services.repositories
    clock = [datetime.now(UTC).replace(microsecond=0)]  # BSON keeps milliseconds

    def outbox() -> WebhookOutbox:  # a new one is what a restarted ACS builds
        return WebhookOutbox(WebhookConfig(receiver.url, SECRET, max_attempts=5), repositories.webhooks,
                             repositories.incidents, repositories.jobs, http_sender(5.0), lambda: clock[0])

    await _open_incident(console, "old outage", clock[0])
    assert (await outbox().run())["queued"] == 0, "switching the webhook on does not replay open incidents"
    number = await _open_incident(console, "OLT-5 0/1/1", clock[0])
    receiver.answers = ["500", "drop"]
    first = await outbox().run()
    assert first == {"queued": 1, "attempts": 1, "delivered": 0, "failed": 0}
    delivery_id = f"incident-{number}-opened"
    stored = await repositories.webhooks.get(delivery_id)
    assert stored is not None and stored["status"] == "pending" and stored["last_error"] == "HTTP 500"
    assert (await outbox().run())["attempts"] == 0, "not again before its back-off"

    clock[0] += backoff(1)  # the ACS "restarts": a new outbox finds the pending delivery in the database
    second = await outbox().run()
    assert second["attempts"] == 1 and second["delivered"] == 0
    stored = await repositories.webhooks.get(delivery_id)
    assert stored is not None and stored["attempts"] == 2 and "Error" in (stored["last_error"] or "")
    assert stored["next_at"] == clock[0] + backoff(2) and backoff(2) == 2 * backoff(1), "the wait doubles"

    clock[0] += backoff(2)
    third = await outbox().run()
    assert third["delivered"] == 1
    assert [call["answer"] for call in receiver.received] == ["500", "drop", "200"]
    assert receiver.bad_signatures == 0
    body = receiver.received[-1]["body"]
    assert body["event"] == "incident.opened" and body["delivery"] == delivery_id
    assert body["incident"]["id"] == number and body["incident"]["title"] == "OLT-5 0/1/1"
    assert receiver.received[-1]["headers"]["X-ACS-Delivery"] == delivery_id
    stored = await repositories.webhooks.get(delivery_id)
    assert stored is not None and stored["status"] == "delivered" and stored["attempts"] == 3
    clock[0] += timedelta(hours=2)
    assert (await outbox().run())["attempts"] == 0, "delivered once"


async def test_a_receiver_that_never_accepts_fails_the_delivery_after_the_last_attempt(
    console: ConsoleHarness, receiver: Receiver
) -> None:
    repositories = console.services.repositories
    clock = [datetime.now(UTC).replace(microsecond=0)]  # BSON keeps milliseconds
    wrong = WebhookOutbox(WebhookConfig(receiver.url, b"not the secret", max_attempts=3), repositories.webhooks,
                          repositories.incidents, repositories.jobs, http_sender(5.0), lambda: clock[0])
    await wrong.run()
    number = await _open_incident(console, "PON down", clock[0])
    for _ in range(3):
        await wrong.run()
        clock[0] += timedelta(hours=1)
    stored = await repositories.webhooks.get(f"incident-{number}-opened")
    assert stored is not None and stored["status"] == "failed" and stored["attempts"] == 3
    assert stored["last_status"] == 401 and receiver.bad_signatures == 3, "a wrong signature is refused"


def test_a_webhook_url_needs_a_secret_and_an_http_scheme() -> None:
    with pytest.raises(ValueError, match="needs webhook_secret"):
        Settings(webhook_url="https://chat.example/hook")
    with pytest.raises(ValueError, match="must start with http"):
        Settings(webhook_url="ftp://chat.example/hook", webhook_secret="s")
