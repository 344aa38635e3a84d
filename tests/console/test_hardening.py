"""Console hardening (issue 11): redirects stay on this console, the lock-out holds under a burst."""

from __future__ import annotations

import asyncio
import csv
import html
import io
from urllib.parse import quote, unquote

import pytest

from acs.console.accounts import ADDRESS_ATTEMPTS, MAX_FAILURES
from schemas.tasks import RebootTask
from tests.console.conftest import PASSWORD, ConsoleHarness

HOSTILE_NEXT = [
    "/%09/evil.example/",  # a tab, dropped by browsers: //evil.example/
    "/%0a/evil.example/",
    "/%0d%0a/evil.example/",
    "/%5Cevil.example/",  # a backslash, read as "/" by browsers
    "/%5C%5Cevil.example/",
    "//evil.example/",
    "/%2F/evil.example/",
    "https://evil.example/",
    "javascript:alert(1)",
    "%20//evil.example/",
]


async def _login(console: ConsoleHarness, next_query: str) -> str:
    """Log in through the form reached at ``/login?next=<next_query>``; the Location answered."""
    http = console.client()
    async with http.get(console.url("/login") + "?next=" + next_query) as response:
        page = await response.text()
    token = await console.login_form(http)
    start = page.index('name="next" value="') + len('name="next" value="')
    next_field = html.unescape(page[start : page.index('"', start)])
    form = {"username": "u-viewer", "password": PASSWORD, "csrf": token, "next": next_field}
    async with http.post(console.url("/login"), data=form, allow_redirects=False) as response:
        assert response.status == 303
        return response.headers["Location"]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
async def test_login_never_redirects_off_the_console(console: ConsoleHarness, target: str) -> None:
    location = await _login(console, target)
    assert location == "/", location


async def test_login_returns_to_the_page_asked_for(console: ConsoleHarness) -> None:
    device_id = await console.device("NEXT1")
    path = f"/devices/{quote(device_id, safe='')}/history?type=tasks"
    async with console.client().get(console.url(path), allow_redirects=False) as response:
        assert response.status == 303
        login_at = response.headers["Location"]
    next_query = login_at.split("next=", 1)[1]
    assert await _login(console, next_query) == path


@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%5Cevil.example"])
async def test_settings_form_never_redirects_off_the_console(console: ConsoleHarness, target: str) -> None:
    session = await console.login("viewer")
    form = {"csrf": session.csrf, "language": "en", "next": unquote(target)}
    async with session.http.post(console.url("/settings"), data=form, allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/"


async def test_history_csv_filename_and_cells_cannot_be_forged(console: ConsoleHarness) -> None:
    serial = 'AB"C\r\nSet-Cookie: x=1;é'
    device_id = await console.device(serial)
    queue = console.services.queue
    for who in ("\t=1+2", "\r=HYPERLINK(0)", "=SUM(1)", "plain"):
        await queue.create(device_id, RebootTask.model_validate({"kind": "reboot"}), who)
    viewer = await console.login("viewer")
    async with viewer.http.get(console.url(f"/devices/{quote(device_id, safe='')}/history.csv")) as response:
        assert response.status == 200
        disposition = response.headers["Content-Disposition"]
        assert "Set-Cookie" not in response.headers
        text = await response.text()
    assert disposition == (
        'attachment; filename="history-AB_CSet-Cookie__x_1__.csv"; '
        "filename*=UTF-8''history-AB%22CSet-Cookie%3A%20x%3D1%3B%C3%A9.csv"
    )
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(row["Who"] for row in rows) == sorted(["'\t=1+2", "'\r=HYPERLINK(0)", "'=SUM(1)", "plain"]), text


async def _attempt(console: ConsoleHarness, username: str, password: str) -> str:
    """One login from a fresh client: "ok", or the refusal the page names."""
    http = console.client()
    token = await console.login_form(http)
    form = {"username": username, "password": password, "csrf": token}
    async with http.post(console.url("/login"), data=form, allow_redirects=False) as response:
        if response.status == 303:
            return "ok"
        page = await response.text()
        if response.status == 429:
            assert response.headers["Retry-After"] == "60"
            return "throttled"
    if response.status == 401:
        return "locked" if "account is locked" in page else "invalid"
    return str(response.status)


async def test_a_parallel_burst_checks_at_most_the_allowed_passwords(console: ConsoleHarness) -> None:
    outcomes = await asyncio.gather(*(_attempt(console, "u-operator", f"wrong-{n:04}") for n in range(40)))
    assert outcomes.count("ok") == 0
    assert outcomes.count("invalid") <= MAX_FAILURES - 1, outcomes
    # The burst used up this address's attempts for the minute too: the lock is read where it is kept.
    assert await _attempt(console, "u-operator", PASSWORD) in ("locked", "throttled")
    stored = await console.services.database.collection("console_users").find_one({"username": "u-operator"})
    assert stored is not None and stored["locked_until"] > console.services.clock()


async def test_the_right_password_in_a_burst_does_not_lift_the_lock(console: ConsoleHarness) -> None:
    burst = [_attempt(console, "u-admin", f"wrong-{n:04}") for n in range(15)]
    burst.insert(7, _attempt(console, "u-admin", PASSWORD))
    outcomes = await asyncio.gather(*burst)
    assert outcomes.count("invalid") + outcomes.count("ok") <= MAX_FAILURES, outcomes
    assert await _attempt(console, "u-admin", PASSWORD) == "locked", outcomes


async def test_one_address_is_throttled_across_usernames(console: ConsoleHarness) -> None:
    names = [f"nobody-{n}" for n in range(ADDRESS_ATTEMPTS + 10)]
    outcomes = await asyncio.gather(*(_attempt(console, name, "wrong-wrong") for name in names))
    assert outcomes.count("throttled") >= 10, outcomes
    assert set(outcomes) <= {"invalid", "throttled"}
    assert await _attempt(console, "u-viewer", PASSWORD) == "throttled"
