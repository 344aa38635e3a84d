"""Console, issue 16 item 9, over real HTTP and the test's database: change a role, reset a password,
end a user's sessions; the audit page of the whole fleet filtered by user and action."""

from __future__ import annotations

import re

import aiohttp

from tests.console.conftest import PASSWORD, ConsoleHarness, LoggedIn


async def _get(session: LoggedIn | aiohttp.ClientSession, console: ConsoleHarness, path: str) -> tuple[int, str]:
    http = session.http if isinstance(session, LoggedIn) else session
    async with http.get(console.url(path), allow_redirects=False) as response:
        return response.status, await response.text()


async def _post(session: LoggedIn, console: ConsoleHarness, path: str, data: dict[str, str] | None = None
                ) -> tuple[int, str]:
    async with session.http.post(console.url(path), data={"csrf": session.csrf, **(data or {})},
                                 allow_redirects=False) as response:
        return response.status, response.headers.get("Location", "") or await response.text()


async def test_change_a_role_takes_effect_at_once(console: ConsoleHarness) -> None:
    admin = await console.login("admin")
    viewer = await console.login("viewer")
    operator = await console.login("operator")
    assert (await _get(viewer, console, "/bulk?all=1"))[0] == 403
    assert (await _post(operator, console, "/users/u-viewer/role", {"role": "operator"}))[0] == 403
    status, location = await _post(admin, console, "/users/u-viewer/role", {"role": "operator"})
    assert (status, location) == (303, "/users?done=role")
    assert (await _get(viewer, console, "/bulk?all=1"))[0] == 200, "the same session, the new role"
    assert (await _post(admin, console, "/users/u-admin/role", {"role": "viewer"}))[0] == 409
    assert (await _post(admin, console, "/users/u-viewer/role", {"role": "root"}))[0] == 422
    assert (await _post(admin, console, "/users/nobody/role", {"role": "viewer"}))[0] == 404
    _, page = await _get(admin, console, "/users?done=role")
    assert "The role is changed." in page


async def test_reset_a_password_ends_the_sessions_and_the_lock(console: ConsoleHarness) -> None:
    admin = await console.login("admin")
    olga = await console.login("operator")
    await console.services.database.collection("console_users").update_one(
        {"username": "u-operator"}, {"$set": {"locked_until": console.services.clock().replace(year=2100)}})
    assert (await _post(admin, console, "/users/u-operator/password", {"password": "short"}))[0] == 422
    assert (await _post(admin, console, "/users/nobody/password", {"password": "a-brand-new-secret"}))[0] == 404
    status, location = await _post(admin, console, "/users/u-operator/password", {"password": "a-brand-new-secret"})
    assert (status, location) == (303, "/users?done=password")
    assert (await _get(olga, console, "/"))[0] == 303, "their session ended: back to the login page"
    fresh = console.client()
    token = await console.login_form(fresh)
    async with fresh.post(console.url("/login"), data={"username": "u-operator", "password": PASSWORD, "csrf": token},
                          allow_redirects=False) as response:
        assert response.status == 401, "the old password no longer works"
    await console.login("operator", password="a-brand-new-secret")  # and the lock is gone


async def test_end_a_users_sessions(console: ConsoleHarness) -> None:
    admin = await console.login("admin")
    first, second = await console.login("viewer"), await console.login("viewer")
    _, page = await _get(admin, console, "/users")
    row = re.search(r'<tr data-user="u-viewer">(.*?)</tr>', page, re.S)
    assert row is not None and "<td>2 <form" in row.group(1), "two sessions open"
    assert (await _post(admin, console, "/users/u-admin/sessions/end"))[0] == 409
    assert (await _post(admin, console, "/users/nobody/sessions/end"))[0] == 404
    assert await _post(admin, console, "/users/u-viewer/sessions/end") == (303, "/users?done=sessions")
    for session in (first, second):
        assert (await _get(session, console, "/"))[0] == 303, "back to the login page"
    assert (await _get(admin, console, "/"))[0] == 200
    audited = console.services.database.collection("audit").find({"user_changed": "u-viewer"})
    assert [entry["summary"] async for entry in audited] == ["End the sessions of console user u-viewer (2)"]


async def test_audit_page_filters_by_user_and_action(console: ConsoleHarness) -> None:
    admin = await console.login("admin")
    operator = await console.login("operator")
    device_id = await console.device("AUD1")
    async with operator.http.post(console.url(f"/devices/{device_id}/actions/tag"),
                                  data={"csrf": operator.csrf, "tag": "acct-1"},
                                  headers={"Accept": "application/json"}) as response:
        assert response.status == 200
    await _post(admin, console, "/users/u-viewer/role", {"role": "operator"})
    assert (await _get(operator, console, "/audit"))[0] == 403
    _, page = await _get(admin, console, "/audit")
    assert "Add tags to a device" in page and "Change the role of console user u-viewer" in page
    _, page = await _get(admin, console, "/audit?who=user:u-operator")
    assert "Add tags to a device" in page and "Change the role" not in page
    _, page = await _get(admin, console, "/audit?action=POST+/users/{username}/role")
    assert "Change the role of console user u-viewer: viewer -&gt; operator" in page and "Add tags" not in page
    assert 'value="POST /users/{username}/role" selected' in page
    _, page = await _get(admin, console, "/audit?who=user:nobody")
    assert 'id="no-audit"' in page
