"""Console, issue 6 points 2, 3, 6, 7 over real HTTP and the test's own database: incidents dashboard and
actions (audited as ``user:<name>``, CSRF, roles), diagnosis and incidents on the device page, device events,
health and incidents in the history and its CSV, search by incident and by WAN MAC, the end of a watch.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from acs.jobs import register_jobs
from cwmp import CwmpVersion, DeviceIdStruct, EventStruct, Inform, ParameterValue
from tasks.registry import normal_mac, summarize_inform, wan_mac_of
from tasks.scheduler import JobRunner
from tasks.store import device_events
from tasks.watch import WatchExpiry
from tests.console.conftest import ConsoleHarness, LoggedIn

WAN_MAC = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.MACAddress"


async def _incident(console: ConsoleHarness, members: list[str], key: str = "olt:OLT-0001") -> int:
    now = console.services.clock()
    number = await console.services.repositories.incidents.open({
        "key": key, "dimension": "olt", "value": key.split(":", 1)[1], "title": f"Outage on {key}",
        "cause": f"shared {key}", "selector": [key], "opened_at": now - timedelta(minutes=5), "updated_at": now,
        "members": members, "member_count": len(members), "affected_now": len(members), "peak": len(members),
        "group_size": 2 * len(members), "baseline": 0.0, "signals": {"offline": len(members)},
        "acknowledged": None, "comments": [],
        "timeline": [{"at": now - timedelta(minutes=5), "event": "opened", "affected": 1, "detail": "opened"},
                     {"at": now, "event": "grew", "affected": len(members), "detail": "grew"}],
    })
    assert number is not None
    return number


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str]:
    async with session.http.get(console.url(path)) as response:
        return response.status, await response.text()


async def _post(session: LoggedIn, console: ConsoleHarness, path: str, data: dict[str, str],
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.http.post(console.url(path), data=data, headers=headers or {},
                                 allow_redirects=False) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def test_dashboard_incident_page_and_its_actions_are_audited_as_the_user(console: ConsoleHarness) -> None:
    dark = [await console.device(f"DARK{i}", online=False) for i in range(3)]
    number = await _incident(console, dark)
    viewer = await console.login("viewer")
    status, page = await _get(viewer, console, "/incidents")
    assert status == 200
    assert f'href="/incidents/{number}"' in page and "OLT: OLT-0001" in page and "shared OLT OLT-0001" in page
    assert "Outage on OLT OLT-0001: 3 of 6 devices offline" in page, "the title worded from the current counts"
    assert "3 affected now of 3" in page and "growing" in page and "not acknowledged" in page
    status, fragment = await _get(viewer, console, "/incidents?fragment=1")
    assert status == 200 and "<html" not in fragment and f"#{number}" in fragment
    status, detail = await _get(viewer, console, f"/incidents/{number}")
    assert status == 200
    for device_id in dark:  # from the incident to its devices...
        assert f'href="/devices/{device_id}"' in detail
    assert 'id="incident-ack"' not in detail, "a viewer sees no actions"
    status, device_page = await _get(viewer, console, f"/devices/{dark[0]}")
    assert f'href="/incidents/{number}"' in device_page, "...and back"

    operator = await console.login("operator")
    status, detail = await _get(operator, console, f"/incidents/{number}")
    assert 'id="incident-ack"' in detail and 'id="incident-resolve"' in detail
    assert 'id="incident-resolve-hint"' in detail  # resolving asks for a reason
    status, _ = await _post(operator, console, f"/incidents/{number}/ack",
                            {"csrf": operator.csrf, "comment": "OLT team called"})
    assert status == 303
    status, _ = await _post(operator, console, f"/incidents/{number}/comment",
                            {"csrf": operator.csrf, "comment": "technician on site"})
    assert status == 303
    status, empty = await _post(operator, console, f"/incidents/{number}/comment", {"csrf": operator.csrf},
                                {"Accept": "application/json"})
    assert status == 422 and empty["error"]["code"] == "comment_empty"
    incident = await console.services.repositories.incidents.get(number)
    assert incident is not None and incident["acknowledged"]["by"] == "user:u-operator"
    assert [c["text"] for c in incident["comments"]] == ["OLT team called", "technician on site"]
    assert {c["by"] for c in incident["comments"]} == {"user:u-operator"}
    status, detail = await _get(viewer, console, f"/incidents/{number}")
    assert "acknowledged by user:u-operator" in detail and "technician on site" in detail

    status, refused = await _post(operator, console, f"/incidents/{number}/resolve",
                                  {"csrf": operator.csrf, "comment": "  "}, {"Accept": "application/json"})
    assert status == 422 and refused["error"]["code"] == "resolve_reason_required"
    reopened = await console.services.repositories.incidents.get(number)
    assert reopened is not None and reopened["status"] == "open"
    status, body = await _post(operator, console, f"/incidents/{number}/resolve",
                               {"csrf": operator.csrf, "comment": "fibre spliced"}, {"Accept": "application/json"})
    assert status == 200 and body["status"] == "resolved" and body["resolved_by"] == "user:u-operator"
    status, again = await _post(operator, console, f"/incidents/{number}/resolve", {"csrf": operator.csrf},
                                {"Accept": "application/json"})
    assert status == 409 and again["error"]["code"] == "incident_not_open"
    status, page = await _get(viewer, console, "/incidents")
    assert "No open incidents." in page and "Recently resolved" in page

    audit = [entry async for entry in console.services.database.collection("audit").find({"incident_id": number})]
    summaries = {(entry["token_name"], entry["summary"], entry["status"]) for entry in audit}
    assert ("user:u-operator", f"Acknowledge incident #{number}", 200) in summaries
    assert ("user:u-operator", f"Comment on incident #{number}", 200) in summaries
    assert ("user:u-operator", f"Resolve incident #{number}", 200) in summaries
    assert ("user:u-operator", f"Resolve incident #{number} refused: not open", 409) in summaries
    assert all(entry["via"] == "console" for entry in audit)


@pytest.mark.parametrize("action", ["ack", "comment", "resolve"])
async def test_incident_actions_need_csrf_and_an_operator(console: ConsoleHarness, action: str) -> None:
    number = await _incident(console, [await console.device("X1", online=False)])
    path = f"/incidents/{number}/{action}"
    async with console.client().post(console.url(path), data={"csrf": "x", "comment": "c"},
                                     headers={"Accept": "application/json"}) as response:
        assert response.status == 401, "no login"
    async with console.client().post(console.url(path), data={"csrf": "x", "comment": "c"},
                                     allow_redirects=False) as response:
        assert response.status == 303 and "/login?expired=1" in response.headers["Location"], "a form: to the login"
    operator = await console.login("operator")
    status, body = await _post(operator, console, path, {"comment": "no token"})
    assert status == 403 and "The form expired" in body, "a page in the user's language, not JSON"
    status, body = await _post(operator, console, path, {"csrf": "forged", "comment": "wrong token"},
                               {"Accept": "application/json"})
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    viewer = await console.login("viewer")
    status, body = await _post(viewer, console, path, {"csrf": viewer.csrf, "comment": "viewer"})
    assert status == 403 and "Your role does not allow this." in body
    status, body = await _post(viewer, console, path, {"comment": "viewer"},
                               {"X-CSRF-Token": viewer.csrf, "Accept": "application/json"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    incident = await console.services.repositories.incidents.get(number)
    assert incident is not None
    assert incident["status"] == "open" and not incident.get("acknowledged") and not incident.get("comments"), \
        "nothing changed"
    assert await console.services.database.collection("audit").count_documents({"incident_id": number}) == 0
    status, _ = await _post(operator, console, "/incidents/999999/ack", {"csrf": operator.csrf})
    assert status == 404


async def test_device_page_starts_with_the_diagnosis_and_its_next_step(console: ConsoleHarness) -> None:
    now = console.services.clock()
    healthy = await console.device("FINE", health={"status": "ok", "at": now, "since": now, "reasons": [],
                                                   "values": {"wan_status": "Connected"}})
    weak = await console.device("WEAK", health={
        "status": "critical", "at": now, "since": now, "values": {},
        "reasons": [{"check": "rx", "level": "critical", "message": "optical RX -29.0 dBm below -27.0"}]})
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, f"/devices/{healthy}")
    assert page.index('id="diagnosis"') < page.index('class="summary"'), "the diagnosis comes first"
    assert "Next step" in page and "no problem found on the access line" in page
    _, page = await _get(viewer, console, f"/devices/{weak}")
    assert "optical RX -29.0 dBm below -27.0: fibre problem, send a technician" in page
    assert "d-critical" in page


async def test_history_shows_transitions_health_and_incidents_filterable_and_in_the_csv(
    console: ConsoleHarness,
) -> None:
    repositories = console.services.repositories
    device = await console.device("HIST", online=False)
    now = console.services.clock()
    await repositories.events.record(device, device_events.OFFLINE, now - timedelta(minutes=3), {})
    await repositories.events.record(device, device_events.ONLINE, now - timedelta(minutes=2), {})
    await repositories.health.record(device, 0, 48, {
        "at": now - timedelta(minutes=1), "status": "warn", "values": {},
        "reasons": [{"check": "rx", "level": "warn", "message": "optical RX -26.0 dBm below -25.0"}]})
    number = await _incident(console, [device])
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, f"/devices/{device}/history")
    assert "device event: offline" in page and "device event: online" in page
    assert "Health read: warning — optical RX -26.0 dBm below -25.0" in page
    assert f'href="/incidents/{number}"' in page
    _, offline_only = await _get(viewer, console, f"/devices/{device}/history?type=offline")
    assert offline_only.count('<tr class="h-') == 1 and '<tr class="h-event h-offline">' in offline_only
    _, health_only = await _get(viewer, console, f"/devices/{device}/history?type=health")
    assert health_only.count('<tr class="h-') == 1 and "Health read: warning" in health_only
    _, events_only = await _get(viewer, console, f"/devices/{device}/history?type=event")
    assert events_only.count('<tr class="h-event') == 2 and events_only.count('<tr class="h-') == 2
    _, csv_text = await _get(viewer, console, f"/devices/{device}/history.csv")
    kinds = {line.split(",")[1] for line in csv_text.splitlines()[1:]}
    assert {"device event: offline", "device event: online", "Health", "Incident"} <= kinds, csv_text
    _, csv_incidents = await _get(viewer, console, f"/devices/{device}/history.csv?type=incident")
    assert len(csv_incidents.splitlines()) == 2 and f"Incident #{number}" in csv_incidents


async def test_search_by_incident_and_by_wan_mac(console: ConsoleHarness) -> None:
    inside = [await console.device(f"IN{i}", online=False) for i in range(2)]
    outside = await console.device("OUT0", online=False)
    number = await _incident(console, inside)
    viewer = await console.login("viewer")
    _, page = await _get(viewer, console, f"/?incident={number}")
    assert all(f"/devices/{device_id}" in page for device_id in inside) and f"/devices/{outside}" not in page
    _, page = await _get(viewer, console, f"/?incident={number}&q=IN1")
    assert f"/devices/{inside[1]}" in page and f"/devices/{inside[0]}" not in page
    _, page = await _get(viewer, console, "/")
    assert f'<option value="{number}"' in page, "open incidents are offered as a filter"

    # The WAN MAC, from an Inform when the device sends it...
    inform = Inform(
        device_id=DeviceIdStruct(manufacturer="T", oui="00E0FC", product_class="HG8245H", serial_number="MAC1"),
        events=(EventStruct(event_code="2 PERIODIC", command_key=""),), max_envelopes=1, current_time=None,
        retry_count=0, parameters=(ParameterValue(name=WAN_MAC, value="a4-7b-2c-00-11-22"),))
    summary = summarize_inform(inform, CwmpVersion.V1_0, "10.9.9.9", 300, console.services.clock())
    await console.services.registry.record_inform(summary, inform, console.services.clock())
    # ...or from a read of the parameter (a task's result).
    other = await console.device("MAC2")
    await console.services.registry.on_task_final({"device_id": other, "status": "done", "result": {
        "values": [{"name": "Device.Ethernet.Interface.1.MACAddress", "value": "00:25:9e:ab:cd:ef"}]}})
    for text, device_id in [("A4:7B:2C:00:11:22", summary.device_id), ("a47b2c001122", summary.device_id),
                            ("A4-7B-2C-00-11-22", summary.device_id), ("00259EABCDEF", other)]:
        _, page = await _get(viewer, console, f"/?q={text}")
        assert f"/devices/{device_id}" in page, text
    _, page = await _get(viewer, console, f"/devices/{other}")
    assert "00:25:9E:AB:CD:EF" in page


def test_wan_mac_names_and_spellings() -> None:
    assert normal_mac("a4:7b:2c:00:11:22") == "A4:7B:2C:00:11:22"
    assert normal_mac("00:00:00:00:00:00") is None and normal_mac("not a mac") is None
    lan = "InternetGatewayDevice.LANDevice.1.Hosts.Host.1.MACAddress"
    assert wan_mac_of([(lan, "00:11:22:33:44:55")]) is None, "a LAN host is not the device"
    assert wan_mac_of([(lan, "00:11:22:33:44:55"), (WAN_MAC, "001122334466")]) == "00:11:22:33:44:66"


async def test_a_watch_ends_at_its_time(console: ConsoleHarness) -> None:
    services = console.services
    devices = services.repositories.devices
    watched, extended = await console.device("W1"), await console.device("W2")
    await devices.add_tags(watched, ["vip"])
    operator = await console.login("operator")
    for device_id in (watched, extended):
        status, _ = await _post(operator, console, f"/devices/{device_id}/actions/watch",
                                {"csrf": operator.csrf, "hours": "1"}, {"Accept": "application/json"})
        assert status == 200
    await devices.set_fields(extended, {"watch_until": services.clock() + timedelta(hours=3)})
    later = services.clock() + timedelta(hours=1, minutes=1)
    assert await WatchExpiry(devices, "watch", lambda: later).run() == 1
    first, second = await devices.get(watched), await devices.get(extended)
    assert first is not None and first["tags"] == ["vip"] and "watch_until" not in first
    assert second is not None and "watch" in second["tags"] and second["watch_until"] > later

    # The scheduled job of acs serve does the same.
    await devices.set_fields(extended, {"watch_until": services.clock() - timedelta(seconds=1)})
    runner = JobRunner(services.repositories.jobs, services.clock)
    register_jobs(runner, services)
    job = next(job for job in runner._registered if job.name == "end_watches")
    assert await runner.tick(job)
    second = await devices.get(extended)
    assert second is not None and "watch" not in (second.get("tags") or []) and "watch_until" not in second
    run = await services.repositories.jobs.runs("end_watches", 1, None)
    assert run and run[0]["outcome"] == "ok" and run[0]["counts"] == {"watches_ended": 1}


