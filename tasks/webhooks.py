"""The operator's webhook: each new incident POSTed, signed, to a chat or ticketing system.

The ``deliver_webhooks`` job (one run at a time across processes) first queues an
``incident.opened`` delivery for each open incident newer than the last one queued (a watermark
in ``job_state``; the first run only sets it, so switching the webhook on does not replay old
incidents), then sends the pending deliveries that are due. A receiver that does not answer 2xx
gets the delivery again after a back-off (``backoff``: 10 s, 20 s, 40 s ... at most an hour),
up to ``max_attempts``; every attempt's outcome is stored (``tasks/store/webhooks.py``), so
nothing is lost when the ACS restarts.

Signature (``signature``): ``X-ACS-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the shared secret>``. The receiver recomputes it and refuses a stale ``t``
(replays). HTTP itself is the caller's (``Send``): ``tasks/`` does no HTTP of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tasks.store.db import Document
from tasks.store.incidents import IncidentRepository
from tasks.store.jobs import JobRepository
from tasks.store.webhooks import DELIVERED, FAILED, WebhookDeliveryRepository

log = logging.getLogger("acs.webhooks")
NAME = "deliver_webhooks"
SIGNATURE_HEADER = "X-ACS-Signature"
EVENT_HEADER = "X-ACS-Event"
DELIVERY_HEADER = "X-ACS-Delivery"
FIRST_RETRY = timedelta(seconds=10)
LONGEST_RETRY = timedelta(hours=1)
BATCH = 20
ERROR_TEXT = 300  # characters of a receiver's error kept

# (url, body, headers) -> the receiver's HTTP status; raises OSError/TimeoutError when it cannot be reached.
Send = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signature_valid(secret: bytes, header: str, body: bytes) -> bool:
    """The receiver's check (documented for operators; the tests' receiver uses it)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), header)


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts."""
    wait: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(wait, LONGEST_RETRY)


def incident_payload(incident: Mapping[str, Any]) -> Document:
    return {
        "event": "incident.opened",
        "incident": {
            "id": incident["_id"], "title": incident.get("title"), "cause": incident.get("cause"),
            "dimension": incident.get("dimension"), "value": incident.get("value"),
            "affected_now": incident.get("affected_now"), "group_size": incident.get("group_size"),
            "opened_at": incident["opened_at"].isoformat() if incident.get("opened_at") else None,
            "console_path": f"/incidents/{incident['_id']}",
        },
    }


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: bytes
    max_attempts: int = 10


class WebhookOutbox:
    def __init__(self, config: WebhookConfig, deliveries: WebhookDeliveryRepository, incidents: IncidentRepository,
                 jobs: JobRepository, send: Send, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.deliveries = deliveries
        self.incidents = incidents
        self.jobs = jobs
        self.send = send
        self.clock = clock

    async def run(self) -> dict[str, Any]:
        queued = await self.queue_new_incidents()
        sent, delivered, failed = await self.deliver_due()
        return {"queued": queued, "attempts": sent, "delivered": delivered, "failed": failed}

    async def queue_new_incidents(self) -> int:
        state = await self.jobs.state(NAME) or {}
        last = state.get("last_incident")
        open_now = await self.incidents.open_incidents()
        newest = max((int(incident["_id"]) for incident in open_now), default=0)
        if last is None:  # first run: from now on
            await self.jobs.save_state(NAME, {"last_incident": newest})
            return 0
        queued = 0
        now = self.clock()
        for incident in sorted(open_now, key=lambda doc: int(doc["_id"])):
            if int(incident["_id"]) > int(last):
                queued += await self.deliveries.enqueue(f"incident-{incident['_id']}-opened", "incident.opened",
                                                        incident_payload(incident), now)
        if newest > int(last):
            await self.jobs.save_state(NAME, {"last_incident": newest})
        return queued

    async def deliver_due(self) -> tuple[int, int, int]:
        sent = delivered = failed = 0
        for delivery in await self.deliveries.due(self.clock(), BATCH):
            sent += 1
            outcome = await self._attempt(delivery)
            delivered += outcome == DELIVERED
            failed += outcome == FAILED
        return sent, delivered, failed

    async def _attempt(self, delivery: Document) -> str:
        body = json.dumps({**delivery["payload"], "delivery": delivery["_id"]}, sort_keys=True).encode()
        now = self.clock()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.config.secret, int(now.timestamp()), body),
            EVENT_HEADER: str(delivery["event"]),
            DELIVERY_HEADER: str(delivery["_id"]),
        }
        attempts = int(delivery["attempts"]) + 1
        status: int | None = None
        error: str | None = None
        try:
            status = await self.send(self.config.url, body, headers)
        except (OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT]
        if status is not None and 200 <= status < 300:
            outcome = DELIVERED
            fields: Document = {"status": DELIVERED, "delivered_at": now}
        else:
            error = error or f"HTTP {status}"
            outcome = FAILED if attempts >= self.config.max_attempts else "pending"
            fields = {"status": outcome, "next_at": now + backoff(attempts)}
            # the URL is not logged: it may carry a token of the receiver
            log.warning("webhook delivery %s attempt %d failed: %s", delivery["_id"], attempts, error)
        await self.deliveries.settle(delivery["_id"], int(delivery["attempts"]),
                                     {**fields, "attempts": attempts, "last_status": status, "last_error": error,
                                      "last_attempt_at": now})
        return outcome
