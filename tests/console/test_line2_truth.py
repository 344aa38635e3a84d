"""Console, issue 12 (nothing the console says may mislead line 2), over real HTTP and the test's database:
offline first with stale facts greyed (3), one threshold table (4), Russian beyond the frame (10), sentences
instead of JSON and exception names (11), one date format and the CSV in the user's zone (12), actions on
an offline device (14), summary facts (15), search and history paging (16).
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from acs.console.optics import optical_levels
from cwmp import CwmpVersion, DeviceIdStruct, EventStruct, Inform, ParameterValue
from tasks.health.catalog import CheckProfile, default_catalog
from tasks.health.evaluate import Thresholds, evaluate
from tasks.registry import summarize_inform
from tasks.store import device_events
from tasks.store.parameters import CachedParameter
from tests.console.conftest import ConsoleHarness, LoggedIn

GPON = "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig."


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str]:
    async with session.http.get(console.url(path)) as response:
        return response.status, await response.text()


async def _post(session: LoggedIn, console: ConsoleHarness, path: str, data: dict[str, str],
                json: bool = True) -> tuple[int, Any]:
    headers = {"Accept": "application/json"} if json else {}
    async with session.http.post(console.url(path), data={"csrf": session.csrf, **data}, headers=headers,
                                 allow_redirects=False) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


def _path(device_id: str, tail: str = "") -> str:
    return f"/devices/{quote(device_id, safe='')}{tail}"


async def _russian(console: ConsoleHarness, role: str = "operator") -> LoggedIn:
    user = await console.login(role)
    status, _ = await _post(user, console, "/settings", {"language": "ru", "time_zone": "Europe/Moscow"}, json=False)
    assert status == 303
    return user


async def test_an_offline_device_says_so_first_and_greys_its_stale_facts(console: ConsoleHarness) -> None:
    now = console.services.clock()
    health = {"status": "ok", "at": now - timedelta(hours=2), "since": now - timedelta(days=1), "reasons": [],
              "values": {"wan_status": "Connected", "rx_power": -20.0}}
    device_id = await console.device("GONE1", online=False, health=health,
                                     offline_since=now - timedelta(minutes=40))
    await console.services.repositories.parameters.set_values(
        device_id, [(GPON + "RXPower", "-20.0", "xsd:string")], now - timedelta(hours=2))
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, _path(device_id))
    banner = page.index('class="offline-banner"')
    assert banner < page.index('id="diagnosis"') < page.index('id="summary"'), "offline is said first"
    assert re.search(r"Offline since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(40 min ago\)", page)
    assert '<dl class="stale">' in page and 'class="st-stale" id="health-state"' in page, "no green on stale facts"
    assert 'id="wan-state" class="st-stale"' in page and "lvl-ok" not in page
    assert page.count("read 2 h ago") >= 3, "health, WAN and optical levels each show their age"
    online = await console.device("HERE1", health=health)
    _, page = await _get(viewer, console, _path(online))
    assert 'class="offline-banner"' not in page and '<dl class="">' in page and "st-ok" in page


async def test_one_threshold_table_for_the_summary_and_the_diagnosis(console: ConsoleHarness) -> None:
    now = console.services.clock()
    reason = {"check": "optical", "level": "warn", "message": "optical RX power -25.05 dBm below -25 dBm",
              "code": "rx_low", "params": {"value": -25.05, "limit": -25.0}}
    device_id = await console.device("EDGE1", health={"status": "warn", "at": now, "since": now, "values": {},
                                                      "reasons": [reason]})
    await console.services.repositories.parameters.set_values(device_id, [(GPON + "RXPower", "-25.05", "xsd:string")],
                                                               now)
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, _path(device_id))
    assert '<span class="lvl-warn">-25.05 dBm · warning</span>' in page, "the summary warns where the diagnosis does"
    assert "warning below -25.0 dBm, critical below -27.0 dBm" in page
    assert "optical RX power -25.05 dBm below -25 dBm: tag the device" in page

    # A family's own limits in checks.json decide both the health read and the console's level.
    huawei = default_catalog().for_device({"product_class": "HG8245H"})
    assert huawei.thresholds.rx_warn_dbm == -25.0, "the Huawei family states its limits"
    strict = CheckProfile.model_validate({**huawei.model_dump(), "thresholds": {"rx_warn_dbm": -20.0}})
    judged = evaluate({"rx_power": "-22"}, strict, Thresholds())
    shown = optical_levels(strict, Thresholds(), {GPON + "RXPower": CachedParameter(GPON + "RXPower", "-22", None,
                                                                                    None, now)})
    assert judged.status == "warn" and shown[0].level == "warn" and shown[0].warn == -20.0
    assert evaluate({"rx_power": "-22"}, huawei, Thresholds()).status == "ok"


async def test_russian_covers_steps_reasons_incidents_history_and_errors(console: ConsoleHarness) -> None:
    repositories = console.services.repositories
    now = console.services.clock()
    reason = {"check": "optical", "level": "critical", "message": "optical RX power -29 dBm below -27 dBm",
              "code": "rx_low", "params": {"value": -29.0, "limit": -27.0}}
    sick = await console.device("RU1", health={"status": "critical", "at": now, "since": now, "values": {},
                                               "reasons": [reason]})
    gone = await console.device("RU2", online=False, offline_since=now.replace(hour=10, minute=0, second=0))
    await repositories.health.record(sick, 0, 48, {"at": now, "status": "critical", "values": {},
                                                   "reasons": [reason]})
    await repositories.events.record(sick, device_events.HEALTH, now, {"from": None, "to": "critical"})
    number = await repositories.incidents.open({
        "key": "pon:OLT-0002 0/1/0", "dimension": "pon", "value": "OLT-0002 0/1/0", "title": "Outage on OLT-0002",
        "cause": "shared", "selector": ["pon:OLT-0002 0/1/0"], "opened_at": now, "updated_at": now,
        "members": [gone], "member_count": 1, "affected_now": 7, "peak": 7, "group_size": 16, "baseline": 0.0,
        "signals": {"offline": 7}, "acknowledged": None, "comments": [],
        "timeline": [{"at": now, "event": "opened", "affected": 7, "detail": "Outage on OLT-0002"}]})
    olga = await _russian(console)
    _, page = await _get(olga, console, _path(sick))
    assert "оптическая мощность RX -29 дБм ниже -27 дБм: проблема с оптикой, направьте техника" in page
    assert "Проверка состояния: критично" in page or "Проверка состояния: " in page
    assert "Первая проверка состояния" in page
    _, page = await _get(olga, console, _path(gone))
    assert "Авария на OLT OLT-0002 (PON 0/1/0): 7 из 16 устройств не в сети" in page
    _, page = await _get(olga, console, f"/incidents/{number}")
    assert "общий OLT OLT-0002, PON-порт 0/1/0" in page and "открыт: затронуто устройств: 7" in page
    # The offline advice in the user's zone, not a hard-coded UTC.
    await repositories.devices.set_fields(gone, {"offline_since": now.replace(hour=10, minute=0, second=0)})
    lone = await console.device("RU3", online=False, offline_since=now.replace(hour=10, minute=0, second=0))
    _, page = await _get(olga, console, _path(lone))
    step = page[page.index('id="next-step"'):]
    assert "не в сети с " in step and "13:00:00 MSK" in step and " UTC" not in step[:400]
    status, reply = await _post(olga, console, _path(lone, "/actions/tag"), {"tag": "bad tag!"})
    assert status == 422 and reply["error"]["message"].startswith("«bad tag!» — недопустимая метка")


async def test_sentences_not_json_nor_exception_names(console: ConsoleHarness) -> None:
    services = console.services
    with socket.socket() as closed:  # a port nobody listens on: the connection request fails
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    device_id = await console.device("SAY1", connection_request_url=f"http://127.0.0.1:{port}/cr")
    operator = await console.login("operator")
    status, reply = await _post(operator, console, _path(device_id, "/actions/wake"), {})
    assert status == 200 and reply["wake"]["text"].startswith("The device did not answer the connection request")
    assert "Error" not in reply["wake"]["text"]
    status, reply = await _post(operator, console, _path(device_id, "/actions/reboot"), {})
    task_id = reply["task"]["id"]
    assert reply["task"]["status_text"] == "queued" and "Error" not in reply["wake"]["text"]
    await services.database.collection("tasks").update_one(
        {"_id": task_id}, {"$set": {"status": "done", "result": {"accepted": True, "rebooted_after_seconds": 3.763}}})
    _, task = await _get(operator, console, f"/tasks/{task_id}.json")
    assert '"text": "The device rebooted and was back after 3.8 s."' in task and "rebooted_after_seconds" not in task
    refresh = await services.queue.get(task_id)
    assert refresh is not None
    await services.database.collection("tasks").update_one(
        {"_id": task_id}, {"$set": {"kind": "refresh", "result": {"names": 853, "values": 744}}})
    _, task = await _get(operator, console, f"/tasks/{task_id}.json")
    assert "Read 853 parameter names and 744 values." in task and '"names": 853' not in task
    _, page = await _get(operator, console, _path(device_id))
    assert "Read 853 parameter names and 744 values." in page
    _, history = await _get(operator, console, _path(device_id, "/history"))
    assert "Queued «Reboot» — done" in history and "Woke the device (connection request) — done" in history
    assert "-&gt; 202" not in history and "Queue a task for a device" not in history

    # Form errors are pages in the user's language; an unknown console URL too (the API keeps JSON).
    number = await services.repositories.incidents.open({
        "key": "olt:OLT-9", "dimension": "olt", "value": "OLT-9", "title": "t", "cause": "c", "selector": [],
        "opened_at": services.clock(), "updated_at": services.clock(), "members": [], "member_count": 0,
        "affected_now": 0, "peak": 0, "group_size": 0, "baseline": 0.0, "signals": {}, "acknowledged": None,
        "comments": [], "timeline": []})
    status, page = await _post(operator, console, f"/incidents/{number}/comment", {"comment": " "}, json=False)
    assert status == 422 and "Write a comment first." in page and "<html" in page and '{"error"' not in page
    async with operator.http.get(console.url("/no/such/page")) as response:
        assert response.status == 404 and "This page does not exist." in await response.text()
    async with operator.http.get(console.url("/api/v1/no-such-thing")) as response:
        assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
    # An expired session: the form goes to the login page, which says why.
    await operator.http.post(console.url("/logout"), data={"csrf": operator.csrf})
    async with operator.http.post(console.url(f"/incidents/{number}/comment"),
                                  data={"csrf": operator.csrf, "comment": "typed text"}) as response:
        page = await response.text()
    assert "/login" in str(response.url) and "Your session has expired" in page


async def test_one_date_format_and_the_csv_in_the_users_zone(console: ConsoleHarness) -> None:
    device_id = await console.device("ZONE1")
    olga = await _russian(console, "viewer")
    _, page = await _get(olga, console, _path(device_id))
    shown = re.search(r'id="last-inform">([^<]+)<', page)
    assert shown is not None
    _, live = await _get(olga, console, _path(device_id, "/live.json"))
    refreshed = json.loads(live)["last_inform_text"]
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d MSK \(\d+ с назад\)"
    assert re.fullmatch(pattern, shown.group(1)) and re.fullmatch(pattern, refreshed), (shown, refreshed)
    await console.services.repositories.events.record(device_id, device_events.OFFLINE, console.services.clock(), {})
    _, text = await _get(olga, console, _path(device_id, "/history.csv"))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Время (Europe/Moscow)" and rows[1][0].endswith(" MSK")
    assert rows[1][3] == "Пропала связь (пропущены периодические Inform)"


async def test_actions_on_an_offline_device(console: ConsoleHarness) -> None:
    now = console.services.clock()
    device_id = await console.device("AWAY1", online=False, offline_since=now - timedelta(hours=1))
    operator = await console.login("operator")
    _, page = await _get(operator, console, _path(device_id))
    confirm = re.search(r'action="[^"]+/actions/reboot"[^>]*data-confirm="([^"]+)"', page)
    assert confirm is not None and "OFFLINE" in confirm.group(1) and "(1 h ago)" in confirm.group(1)
    assert '<option value="600" selected>expires in 10 min</option>' in page, "a short expiry offered first"
    status, reply = await _post(operator, console, _path(device_id, "/actions/reboot"), {"expires_in": "600"})
    assert status == 200
    task = await console.services.queue.get(reply["task"]["id"])
    assert task is not None and abs((task["expires_at"] - task["created_at"]).total_seconds() - 600) < 5
    status, reply = await _post(operator, console, _path(device_id, "/actions/reboot"), {"expires_in": "5"})
    assert status == 422 and reply["error"]["code"] == "invalid_expiry"
    _, page = await _get(operator, console, _path(device_id))
    assert f'id="queued-{task["_id"]}"' in page and f'/tasks/{task["_id"]}/cancel' in page
    status, reply = await _post(operator, console, _path(device_id, f"/tasks/{task['_id']}/cancel"), {})
    assert status == 200 and reply["task"]["status"] == "cancelled"
    assert reply["task"]["text"] == "Cancelled before it was sent."
    cancelled = await console.services.queue.get(task["_id"])
    assert cancelled is not None and cancelled["status"] == "cancelled"
    status, reply = await _post(operator, console, _path(device_id, f"/tasks/{task['_id']}/cancel"), {})
    assert status == 409 and reply["error"]["message"].startswith("Only a queued task can be cancelled")
    _, page = await _get(operator, console, _path(device_id))
    assert f'id="queued-{task["_id"]}"' not in page
    viewer = await console.login("viewer")
    status, _ = await _post(viewer, console, _path(device_id, f"/tasks/{task['_id']}/cancel"), {})
    assert status == 403


def _boot_inform(serial: str, events: tuple[str, ...]) -> Inform:
    return Inform(
        device_id=DeviceIdStruct(manufacturer="Huawei", oui="00E0FC", product_class="HG8245H", serial_number=serial),
        events=tuple(EventStruct(event_code=code, command_key="") for code in events), max_envelopes=1,
        current_time=None, retry_count=0,
        parameters=(ParameterValue(name="InternetGatewayDevice.DeviceInfo.SoftwareVersion", value="V1"),))


async def test_summary_facts_uptime_and_one_reboot_count(console: ConsoleHarness) -> None:
    services = console.services
    registry = services.registry
    for events in (("0 BOOTSTRAP", "1 BOOT"), ("1 BOOT",)):
        inform = _boot_inform("BOOTS1", events)
        summary = summarize_inform(inform, CwmpVersion.V1_0, "10.9.9.9", 300, services.clock())
        await registry.record_inform(summary, inform, services.clock())
    device_id = summary.device_id
    assert await services.repositories.events.reboots_since(device_id, services.clock() - timedelta(hours=1)) == 1
    now = services.clock()
    await services.repositories.devices.set_fields(device_id, {"health": {
        "status": "ok", "at": now, "since": now, "reasons": [], "values": {"uptime": 93784}}})
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, _path(device_id))
    assert '<span id="reboots">1</span>' in page, "the first contact's boot is not a reboot"
    assert re.search(r'id="uptime">1 d 02:03:04 <small class="age">\(reported \d+ s ago\)', page), "the health read's"
    _, page = await _get(viewer, console, _path(device_id, "/history"))
    assert "First contact with the ACS (0 BOOTSTRAP, 1 BOOT)" in page and "Rebooted (1 BOOT)" in page


async def test_search_mac_spellings_whole_addresses_one_match_and_pages(console: ConsoleHarness) -> None:
    first = await console.device("IPA", remote_ip="10.64.1.1", wan_mac="A4:7B:2C:00:11:22")
    for n in range(10, 13):
        await console.device(f"IPB{n}", remote_ip=f"10.64.1.{n}")
    viewer = await console.login("viewer")
    for text in ("a47b.2c00.1122", "A4:7B:2C:00:11:22", "10.64.1.1"):
        async with viewer.http.get(console.url("/"), params={"q": text}, allow_redirects=False) as response:
            assert response.status == 303, text
            assert response.headers["Location"] == _path(first), "one match opens the device directly"
    # The MACs on the box label ride on the health read (checks.json), the first one right after BOOTSTRAP.
    names = default_catalog().for_device({"product_class": "HG8245H"}).names(("device",))
    lan = "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.MACAddress"
    wan = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.MACAddress"
    assert lan in names and wan in names
    boxed = await console.device("BOX1")
    await console.services.registry.on_task_final({"device_id": boxed, "status": "done", "result": {"values": [
        {"name": wan, "value": "00:25:9E:00:00:01"}, {"name": lan, "value": "00:25:9E:00:00:02"}]}})
    for text in ("0025.9e00.0002", "00-25-9E-00-00-01"):
        async with viewer.http.get(console.url("/"), params={"q": text}, allow_redirects=False) as response:
            assert response.headers.get("Location") == _path(boxed), text
    _, page = await _get(viewer, console, _path(boxed))
    assert "00:25:9E:00:00:02" in page, "the LAN MAC is shown"
    async with viewer.http.get(console.url("/"), params={"q": "10.64.1."}) as response:
        page = await response.text()
    assert "4 devices match; showing 1–4." in page
    for n in range(60):
        await console.device(f"MANY{n:03d}")
    _, page = await _get(viewer, console, "/?q=MANY")
    assert "60 devices match; showing 1–50." in page and page.count('class="result"') == 50
    link = re.search(r'href="/\?([^"]+)" id="next-page"', page)
    assert link is not None
    _, page = await _get(viewer, console, "/?" + link.group(1).replace("&amp;", "&"))
    assert "60 devices match; showing 51–60." in page and page.count('class="result"') == 10
    assert "MANY059" in page and "MANY000" not in page and 'id="next-page"' not in page


async def test_history_pages_beyond_one_screen(console: ConsoleHarness) -> None:
    device_id = await console.device("LONG1")
    events = console.services.repositories.events
    now = console.services.clock()
    for n in range(130):
        await events.record(device_id, device_events.OFFLINE, now - timedelta(minutes=n + 1), {"n": n})
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, _path(device_id, "/history"))
    assert page.count('<tr class="h-') == 100
    link = re.search(r'href="\?([^"]+)" id="history-older"', page)
    assert link is not None
    _, older = await _get(viewer, console, _path(device_id, "/history?" + link.group(1).replace("&amp;", "&")))
    assert older.count('<tr class="h-') >= 30 and 'id="history-newest"' in older
