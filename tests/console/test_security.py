"""The console over plain HTTP: nothing without login, CSRF on every change, roles, lock-out, audit."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from acs.console.accounts import MAX_FAILURES
from tests.console.conftest import PASSWORD, ConsoleHarness

PAGES = ["/", "/settings", "/users", "/devices/X", "/devices/X/parameters", "/devices/X/history",
         "/devices/X/history.csv", "/devices/X/live.json", "/tasks/abc.json"]
CHANGES = ["/logout", "/settings", "/users", "/users/u-viewer/disabled", "/devices/X/actions/reboot"]


@pytest.mark.parametrize("path", PAGES)
async def test_no_page_without_login(console: ConsoleHarness, path: str) -> None:
    async with console.client().get(console.url(path), allow_redirects=False) as response:
        if path.endswith(".json"):
            assert response.status == 401
        else:
            assert response.status == 303
            assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", CHANGES)
async def test_no_action_without_login(console: ConsoleHarness, path: str) -> None:
    async with console.client().post(console.url(path), data={"csrf": "x"}, allow_redirects=False) as response:
        assert response.status == 303, "a form: to the login page, saying the session expired"
        assert response.headers["Location"].startswith("/login?expired=1")
    async with console.client().post(console.url(path), data={"csrf": "x"},
                                     headers={"Accept": "application/json"}) as response:
        assert response.status == 401


async def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session(console: ConsoleHarness) -> None:
    http = console.client()
    token = await console.login_form(http)
    async with http.post(console.url("/login"), allow_redirects=False,
                         data={"username": "u-viewer", "password": PASSWORD, "csrf": token}) as response:
        assert response.status == 303
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    async with http.get(console.url("/")) as response:
        assert response.status == 200
        assert "u-viewer" in await response.text()
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    session = await console.login("viewer")
    async with session.http.post(console.url("/logout"), data={"csrf": session.csrf},
                                 allow_redirects=False) as response:
        assert response.status == 303
    async with session.http.get(console.url("/"), allow_redirects=False) as response:
        assert response.status == 303


async def test_login_form_needs_its_csrf_token(console: ConsoleHarness) -> None:
    http = console.client()
    await console.login_form(http)
    async with http.post(console.url("/login"), data={"username": "u-admin", "password": PASSWORD,
                                                      "csrf": "forged"}) as response:
        assert response.status == 403


async def test_lock_out_after_repeated_failures(console: ConsoleHarness) -> None:
    http = console.client()
    for attempt in range(MAX_FAILURES):
        token = await console.login_form(http)
        async with http.post(console.url("/login"), data={"username": "u-operator", "password": "wrong-wrong",
                                                          "csrf": token}) as response:
            assert response.status == 401, attempt
    token = await console.login_form(http)
    async with http.post(console.url("/login"), allow_redirects=False,
                         data={"username": "u-operator", "password": PASSWORD, "csrf": token}) as response:
        assert response.status == 401
        assert "locked" in await response.text()
    stored = await console.services.database.collection("console_users").find_one({"username": "u-operator"})
    assert stored is not None and stored["password_hash"].startswith("$argon2id$")


async def test_state_changes_need_the_sessions_csrf_token(console: ConsoleHarness) -> None:
    device_id = await console.device("CSRF1")
    session = await console.login("operator")
    url = console.url(f"/devices/{quote(device_id, safe='')}/actions/tag")
    for headers, data in (({}, {"tag": "a1"}), ({}, {"tag": "a1", "csrf": "forged"}),
                          ({"X-CSRF-Token": "forged"}, {"tag": "a1"})):
        async with session.http.post(url, data=data, headers={"Accept": "application/json", **headers}) as response:
            assert response.status == 403
    device = await console.services.repositories.devices.get(device_id)
    assert device is not None and not device.get("tags")
    async with session.http.post(url, data={"tag": "a1"}, headers={"Accept": "application/json",
                                                                   "X-CSRF-Token": session.csrf}) as response:
        assert response.status == 200, await response.text()
    device = await console.services.repositories.devices.get(device_id)
    assert device is not None and device["tags"] == ["a1"]


async def test_a_viewer_cannot_act_and_an_operator_cannot_manage_users(console: ConsoleHarness) -> None:
    device_id = await console.device("VIEW1")
    viewer = await console.login("viewer")
    for action in ("reboot", "wake", "tag", "set", "diagnostic", "factory_reset", "watch"):
        async with viewer.http.post(console.url(f"/devices/{quote(device_id, safe='')}/actions/{action}"),
                                    data={"csrf": viewer.csrf, "tag": "x", "confirm": "yes"},
                                    headers={"Accept": "application/json"}) as response:
            assert response.status == 403, action
    assert await console.services.repositories.tasks.for_device(device_id, None, 10) == []
    async with viewer.http.get(console.url(f"/devices/{quote(device_id, safe='')}")) as response:
        page = await response.text()
    assert response.status == 200 and "act-reboot" not in page
    operator = await console.login("operator")
    async with operator.http.get(console.url("/users")) as response:
        assert response.status == 403
    async with operator.http.post(console.url("/users"), data={"csrf": operator.csrf, "username": "evil",
                                                              "password": "x" * 12, "role": "admin"}) as response:
        assert response.status == 403


async def test_an_admin_creates_a_user_who_can_log_in(console: ConsoleHarness) -> None:
    admin = await console.login("admin")
    async with admin.http.post(console.url("/users"), data={"csrf": admin.csrf, "username": "line2-anna",
                                                           "password": "a-long-password", "role": "operator"},
                               allow_redirects=False) as response:
        assert response.status == 303
    anna = await console.login("operator", username="line2-anna", password="a-long-password")
    async with anna.http.get(console.url("/")) as response:
        assert "line2-anna" in await response.text()


async def test_console_actions_are_audited_and_in_history_like_api_actions(console: ConsoleHarness) -> None:
    device_id = await console.device("AUDIT1")
    operator = await console.login("operator")
    base = console.url(f"/devices/{quote(device_id, safe='')}")
    headers = {"Accept": "application/json", "X-CSRF-Token": operator.csrf}
    async with operator.http.post(base + "/actions/reboot", headers=headers) as response:
        reply = await response.json()
    assert response.status == 200, reply
    task = await console.services.queue.get(reply["task"]["id"])
    assert task is not None and task["created_by"] == "user:u-operator" and task["kind"] == "reboot"
    entries = await console.services.repositories.audit.for_device(device_id, None, 10)
    assert [(e["token_name"], e["task_ids"], e["status"]) for e in entries] == [
        ("user:u-operator", [task["_id"]], 202)]
    async with operator.http.get(base + "/history") as response:
        page = await response.text()
    assert "Queued «Reboot» — done" in page and "<td>u-operator</td>" in page
    async with operator.http.get(base + "/history.csv?type=operator") as response:
        text = await response.text()
    assert response.content_type == "text/csv"
    assert text.splitlines()[0] == "Time (UTC),Type,id,Summary,Who"
    assert "user:u-operator" in text and len(text.splitlines()) == 2


async def test_set_checks_the_value_against_the_parameters_type_before_sending(console: ConsoleHarness) -> None:
    device_id = await console.device("SET1")
    name = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"
    now = console.services.clock()
    await console.services.repositories.parameters.set_values(device_id, [(name, "300", "xsd:unsignedInt")], now)
    await console.services.repositories.parameters.set_names(device_id, [(name, True)], now)
    operator = await console.login("operator")
    url = console.url(f"/devices/{quote(device_id, safe='')}/actions/set")
    headers = {"Accept": "application/json", "X-CSRF-Token": operator.csrf}
    for bad in ("-5", "abc", "99999999999"):
        async with operator.http.post(url, data={"name": name, "value": bad}, headers=headers) as response:
            reply = await response.json()
        assert response.status == 422 and reply["error"]["code"] == "invalid_value", bad
        assert "is not a whole number in 0..4294967295" in reply["error"]["message"]
    async with operator.http.post(url, data={"name": name, "value": "600"}, headers=headers) as response:
        reply = await response.json()
    assert response.status == 200, reply
    task = await console.services.queue.get(reply["task"]["id"])
    assert task is not None
    assert task["params"]["values"] == [{"name": name, "value": 600, "type": "xsd:unsignedInt"}]


async def test_search_finds_by_serial_ip_and_subscriber_tag(console: ConsoleHarness) -> None:
    device_id = await console.device("FINDME77", remote_ip="192.0.2.77")
    await console.services.repositories.devices.add_tags(device_id, ["acct-5550123"])
    await console.device("OTHER01", online=False)
    viewer = await console.login("viewer")
    for query in ("FINDME", "192.0.2.77", "5550123"):
        async with viewer.http.get(console.url("/"), params={"q": query}) as response:
            page = await response.text()
        assert "FINDME77" in page and "OTHER01" not in page, query
    async with viewer.http.get(console.url("/"), params={"online": "no"}) as response:
        page = await response.text()
    assert "OTHER01" in page and "FINDME77" not in page


async def test_language_and_time_zone_per_user(console: ConsoleHarness) -> None:
    await console.device("LANG1")
    viewer = await console.login("viewer")
    async with viewer.http.post(console.url("/settings"), data={"csrf": viewer.csrf, "language": "ru",
                                                               "time_zone": "Europe/Moscow", "next": "/"}) as response:
        page = await response.text()
    assert "Поиск" in page
    async with viewer.http.get(console.url("/"), params={"q": "LANG1"}) as response:
        page = await response.text()
    assert "в сети" in page and ("MSK" in page or "+03" in page)
    other = await console.login("operator")
    async with other.http.get(console.url("/")) as response:
        assert "Search" in await response.text()
