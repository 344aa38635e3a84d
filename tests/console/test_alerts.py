"""Alerts over real HTTP (issue 16 item 7): server-sent events push each new incident to every open
console, in its user's language, with the open count; the Alerts page and its webhook outbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tests.console.conftest import ConsoleHarness, LoggedIn

DEADLINE = 30.0


async def _open_incident(console: ConsoleHarness, olt: str) -> int:
    now = datetime.now(UTC)
    number = await console.services.repositories.incidents.open({
        "key": f"olt:{olt}", "dimension": "olt", "value": olt, "title": f"Outage on {olt}", "cause": "shared",
        "selector": [f"olt:{olt}"], "opened_at": now, "updated_at": now, "members": [], "member_count": 9,
        "affected_now": 9, "peak": 9, "group_size": 32, "baseline": 0.0, "signals": {"offline": 9},
        "acknowledged": None, "comments": [], "timeline": []})
    assert number is not None
    return number


async def _next_event(stream: aiohttp.ClientResponse, wanted: str) -> dict[str, Any]:
    """The data of the next event named ``wanted`` (others and keep-alive comments skipped)."""
    name = None
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), DEADLINE)).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == wanted:
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return data


async def _stream(session: LoggedIn, console: ConsoleHarness) -> aiohttp.ClientResponse:
    response = await session.http.get(console.url("/alerts/stream"), headers={"Accept": "text/event-stream"})
    assert response.status == 200 and response.content_type == "text/event-stream"
    return response


async def test_a_new_incident_reaches_every_open_console_live(console: ConsoleHarness) -> None:
    await _open_incident(console, "OLT-OLD")
    english = await console.login("viewer")
    russian = await console.login("operator")
    async with russian.http.post(console.url("/settings"), data={"language": "ru", "csrf": russian.csrf},
                                 allow_redirects=False) as response:
        assert response.status == 303
    first, second = await _stream(english, console), await _stream(russian, console)
    try:
        assert (await _next_event(first, "count"))["open"] == 1
        assert (await _next_event(second, "count"))["open"] == 1
        number = await _open_incident(console, "OLT-0042")
        pushed = await _next_event(first, "incident")
        assert pushed["id"] == number and pushed["url"] == f"/incidents/{number}"
        assert "OLT-0042" in pushed["title"] and pushed["heading"] == f"New incident #{number}"
        assert (await _next_event(first, "count"))["open"] == 2, "the count in the navigation bar follows"
        in_russian = await _next_event(second, "incident")
        assert in_russian["id"] == number and in_russian["heading"] == f"Новый инцидент #{number}"
        assert "OLT-0042" in in_russian["title"]
    finally:
        first.close()
        second.close()


async def test_the_stream_needs_a_login_and_the_page_shows_the_outbox_to_admins(console: ConsoleHarness) -> None:
    anonymous = console.client()
    async with anonymous.get(console.url("/alerts/stream"), allow_redirects=False) as response:
        assert response.status == 303 and "/login" in response.headers["Location"]
    number = await _open_incident(console, "OLT-0007")
    now = datetime.now(UTC)
    await console.services.repositories.webhooks.enqueue(f"incident-{number}-opened", "incident.opened", {}, now)
    admin = await console.login("admin")
    async with admin.http.get(console.url("/alerts")) as response:
        page = await response.text()
    assert response.status == 200 and 'id="deliveries"' in page and f"incident-{number}-opened" in page
    assert "No webhook is configured" in page and 'id="alert-count"' in page and "OLT-0007" in page
    viewer = await console.login("viewer")
    async with viewer.http.get(console.url("/alerts")) as response:
        page = await response.text()
    assert response.status == 200 and 'id="deliveries"' not in page, "the outbox is for admins"
