"""Profiles and subscribers over the real API and real CWMP sessions (ScriptedCpe), on the real
database: versions, diffs, rollback, secrets sealed, subscriber import, application in the
session with the fewest RPCs, refusals without a loop, objects to exactly N, preview, re-provision,
drift, and the failure limit."""

from __future__ import annotations

from typing import Any

from cwmp import AddObject, DeleteObject, GetParameterNames, SetParameterAttributes, SetParameterValues
from tasks.profiles.drift_report import DriftReporter
from tests.acs.api.conftest import ApiHarness
from tests.support.cpe import ScriptedCpe

IGD = "InternetGatewayDevice."
PPP = IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1."
SSID = IGD + "LANDevice.1.WLANConfiguration.1.SSID"
LINE = IGD + "Services.VoiceService.1.VoiceProfile.1.Line."


def ont(api: ApiHarness, serial: str = "4857544300000001") -> ScriptedCpe:
    cpe = ScriptedCpe(api.cwmp_url, oui="00259E", serial=serial)
    for name, value, kind in (
        (PPP + "Username", "", "xsd:string"),
        (PPP + "Password", "", "xsd:string"),
        (PPP + "X_HW_VLAN", "0", "xsd:unsignedInt"),
        (SSID, "HUAWEI-0001", "xsd:string"),
    ):
        cpe.params[name] = (value, kind, True)
    return cpe


SERVICE = {
    "name": "internet",
    "priority": 100,
    "selector": {"oui": ["00259E"], "has_subscriber": True},
    "parameters": {
        "wan.pppoe.username": "{{ subscriber.pppoe_login }}",
        "wan.pppoe.password": "{{ subscriber.pppoe_password }}",
        "wan.vlan": "{{ subscriber.vlan }}",
        "wifi.ssid": "net-{{ subscriber.account }}",
    },
}
SUBSCRIBER = {
    "account": "A-100",
    "pppoe_login": "a100@isp",
    "pppoe_password": "ppp-secret",
    "vlan": 10,
    "plan": "gold",
    "serial_number": "4857544300000001",
}


def sent(exchange: Any, kind: type) -> list[Any]:
    return [message for message in exchange.received if isinstance(message, kind)]


def profile_sets(exchange: Any) -> list[SetParameterValues]:
    return [m for m in sent(exchange, SetParameterValues) if m.parameter_key.startswith("cfg-")]


async def test_profile_versions_diff_rollback_roles_and_sealed_secrets(api: ApiHarness) -> None:
    spec = {"name": "base", "parameters": {"wifi.ssid": "isp", "wifi.password": "literal-key"}}
    status, body = await api.call("POST", "/api/v1/profiles", "operator", json=spec)
    assert status == 403
    status, body = await api.call("POST", "/api/v1/profiles", json=spec)
    assert status == 201 and body["version"] == 1
    assert body["spec"]["parameters"]["wifi.password"] == "***"
    raw = await api.services.database.collection("profiles").find_one({"_id": "base"})
    assert raw is not None
    stored = {item["name"]: item["value"] for item in raw["spec"]["parameters"]}
    assert "sealed" in stored["wifi.password"] and "literal-key" not in str(raw)  # issue 11: sealed at rest
    status, _ = await api.call("POST", "/api/v1/profiles", json=spec)
    assert status == 409
    changed = {**spec, "parameters": {**spec["parameters"], "wifi.ssid": "isp-2"}}
    status, body = await api.call("PUT", "/api/v1/profiles/base", json=changed)
    assert status == 200 and body["version"] == 2
    status, body = await api.call("PUT", "/api/v1/profiles/base", json=changed)
    assert body["version"] == 2  # unchanged: no new version
    status, versions = await api.call("GET", "/api/v1/profiles/base/versions", "viewer")
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert versions["items"][0]["diff"] == [{"field": "parameters[wifi.ssid]", "from": "isp", "to": "isp-2"}]
    status, body = await api.call("POST", "/api/v1/profiles/base/rollback", json={"version": 1})
    assert status == 200 and body["version"] == 3 and body["spec"]["parameters"]["wifi.ssid"] == "isp"
    audit = await api.services.database.collection("audit").find({"profile": "base"}).to_list(None)
    assert {entry["version"] for entry in audit} == {1, 2, 3}
    assert any(entry.get("rolled_back_to") == 1 and entry["diff"] for entry in audit)
    assert all("literal-key" not in str(entry) for entry in audit)
    status, _ = await api.call("POST", "/api/v1/profiles/base/rollback", json={"version": 9})
    assert status == 404
    status, _ = await api.call("POST", "/api/v1/profiles", json={"name": "x", "objects": [{"path": "Device.A"}]})
    assert status == 422


async def test_subscribers_sealed_searched_and_imported_with_a_dry_run(api: ApiHarness) -> None:
    status, body = await api.call("PUT", "/api/v1/subscribers/A-100", "operator", json=SUBSCRIBER)
    assert status == 201 and body["pppoe_password"] == "***"
    raw = await api.services.database.collection("subscribers").find_one({"_id": "A-100"})
    assert raw is not None and "sealed" in raw["pppoe_password"]
    for q in ("A-100", "a100@isp", "4857544300000001"):
        status, found = await api.call("GET", f"/api/v1/subscribers?q={q}", "viewer")
        assert [s["account"] for s in found["items"]] == ["A-100"], q
    csv_text = (
        "account,pppoe_login,pppoe_password,vlan,serial_number,voip1_number,voip1_password\n"
        "B-1,b1@isp,pw1,20,SN-B1,5551001,sip1\n"
        "B-2,b2@isp,pw2,5000,SN-B2,,\n"  # VLAN beyond 4094
        "B-1,dup@isp,,,,,\n"  # the same account twice
        "A-100,a100@isp,ppp-secret,10,4857544300000001,,\n"  # replaces the record (its plan is not in the file)
    )
    headers = {"Content-Type": "text/csv"}
    status, report = await api.call("POST", "/api/v1/subscribers/import?dry_run=true", data=csv_text, headers=headers)
    assert status == 200 and (report["created"], report["updated"]) == (1, 1)
    assert [(bad["line"], bad["account"]) for bad in report["bad_rows"]] == [(3, "B-2"), (4, "B-1")]
    assert "vlan" in report["bad_rows"][0]["problem"] and "pw2" not in str(report)
    assert await api.services.repositories.subscribers.get("B-1") is None  # a dry run writes nothing
    status, report = await api.call("POST", "/api/v1/subscribers/import", data=csv_text, headers=headers)
    assert report["created"] == 1 and len(report["bad_rows"]) == 2
    status, report = await api.call("POST", "/api/v1/subscribers/import", data=csv_text, headers=headers)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 2)
    status, b1 = await api.call("GET", "/api/v1/subscribers/B-1", "viewer")
    assert b1["voip"] == [{"number": "5551001", "username": "", "password": "***"}] and b1["vlan"] == 20
    status, report = await api.call("POST", "/api/v1/subscribers/import", "operator", data=csv_text, headers=headers)
    assert status == 403
    status, report = await api.call("POST", "/api/v1/subscribers/import", data="acount,x\n1,2\n", headers=headers)
    assert "unknown column" in report["bad_rows"][0]["problem"]


async def test_new_ont_gets_its_service_in_one_exchange_then_costs_nothing(api: ApiHarness) -> None:
    await api.call("PUT", "/api/v1/subscribers/A-100", json=SUBSCRIBER)
    await api.call("POST", "/api/v1/profiles", json=SERVICE)
    cpe = ont(api)
    first = await cpe.run_session(["0 BOOTSTRAP"])
    assert first.ended_with == 204
    applied = profile_sets(first)
    assert len(applied) == 1  # every difference in one SetParameterValues
    values = {p.name: p.value for p in applied[0].parameters}
    assert values == {
        PPP + "Username": "a100@isp",
        PPP + "Password": "ppp-secret",
        PPP + "X_HW_VLAN": "10",
        SSID: "net-A-100",
    }
    assert cpe.params[PPP + "Username"][0] == "a100@isp" and cpe.parameter_key == applied[0].parameter_key
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["in_sync"] and config["state"]["status"] == "applied" and config["subscriber"] == "A-100"
    sources = {p["name"]: (p["source"], p["alias"]) for p in config["parameters"]}
    assert sources[SSID] == ("internet@1", "wifi.ssid")
    assert next(p for p in config["parameters"] if p["name"] == PPP + "Password")["desired"] == "***"
    bound = await api.services.repositories.subscribers.get("A-100")
    assert bound is not None and bound["device_id"] == cpe.device_id
    again = await cpe.run_session(["1 BOOT"])
    assert profile_sets(again) == [] and again.ended_with == 204
    _status, history = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/history", "viewer")
    assert any(entry["summary"].startswith("configuration applied") for entry in history["items"])


async def test_factory_reset_ont_gets_its_service_back(api: ApiHarness) -> None:
    await api.call("PUT", "/api/v1/subscribers/A-100", json=SUBSCRIBER)
    await api.call("POST", "/api/v1/profiles", json=SERVICE)
    cpe = ont(api)
    await cpe.run_session(["0 BOOTSTRAP"])
    cpe.params[PPP + "Username"] = ("", "xsd:string", True)  # the reset wipes the service
    cpe.params[PPP + "Password"] = ("", "xsd:string", True)
    cpe.parameter_key = ""
    again = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    names = {p.name for message in profile_sets(again) for p in message.parameters}
    assert {PPP + "Username", PPP + "Password"} <= names  # the password too: BOOTSTRAP forgets what it accepted
    assert cpe.params[PPP + "Username"][0] == "a100@isp"


async def test_a_refused_value_is_reported_once_and_the_rest_still_applied(api: ApiHarness) -> None:
    spec = {
        "name": "bad",
        "events": ["BOOTSTRAP", "BOOT", "PERIODIC"],
        "parameters": {"wifi.ssid": "ok", IGD + "X_NOPE.Value": "1"},
    }
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "BAD00001")
    first = await cpe.run_session(["0 BOOTSTRAP"])
    assert len(profile_sets(first)) == 1 and cpe.params[SSID][0] == "HUAWEI-0001"  # all or nothing (A.3.2.1)
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["state"]["status"] == "failed"
    assert config["state"]["refused"] == [
        {"name": IGD + "X_NOPE.Value", "code": 9005, "string": "Invalid parameter name"}
    ]
    second = await cpe.run_session(["2 PERIODIC"])
    retried = profile_sets(second)
    assert [[p.name for p in m.parameters] for m in retried] == [[SSID]]  # the refused one left out
    assert cpe.params[SSID][0] == "ok"
    third = await cpe.run_session(["2 PERIODIC"])
    assert profile_sets(third) == []  # no loop
    _status, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    refused = next(p for p in config["parameters"] if p["name"] == IGD + "X_NOPE.Value")
    assert refused["refused"] and not config["in_sync"]


async def test_failures_in_a_row_block_the_device_until_reprovisioned(api: ApiHarness) -> None:
    spec = {"name": "never", "events": ["PERIODIC", "ON DEMAND"], "parameters": {"wifi.ssid": "x"}}
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "BLOCK001")

    def refuse(message: Any) -> Any:
        from cwmp import make_fault

        return (
            make_fault(9002)
            if isinstance(message, SetParameterValues) and message.parameter_key.startswith("cfg-")
            else None
        )

    for _ in range(3):
        await cpe.run_session(["2 PERIODIC"], answer=refuse)
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["state"]["status"] == "blocked" and config["state"]["failures"] == 3
    assert config["state"]["last_fault"]["code"] == 9002
    quiet = await cpe.run_session(["2 PERIODIC"])
    assert profile_sets(quiet) == []  # blocked: not tried again by itself
    status, report = await api.call(
        "POST", f"/api/v1/devices/{cpe.device_id}/reprovision?connection_request=false", "operator"
    )
    assert status == 200 and report["found"]
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["reprovision_requested"]
    fixed = await cpe.run_session(["6 CONNECTION REQUEST"])
    assert len(profile_sets(fixed)) == 1 and cpe.params[SSID][0] == "x"
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["state"]["status"] == "applied" and not config["reprovision_requested"]
    # The request is a task in the device's history: who asked, and what it queued.
    _, task = await api.call("GET", f"/api/v1/tasks/{report['task_id']}", "viewer")
    assert task["kind"] == "reprovision" and task["status"] == "done", task
    assert task["result"] == {"tasks_queued": 1} and task["created_by"] != "profiles"


async def test_a_reprovision_survives_a_device_write_that_read_the_device_before_it(api: ApiHarness) -> None:
    """FerretDB 1.24 writes a device update as "read it, write it whole": a session's device write
    that read the document before an operator pressed Re-provision puts it back as it was. A request
    kept on the device document (a flag) was lost that way (a Re-provision pressed during a health
    session was never applied); a ``reprovision`` task is not."""
    spec = {"name": "demand", "events": ["ON DEMAND"], "parameters": {"wifi.ssid": "wanted"}}
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "RACE0001")
    first = await cpe.run_session(["0 BOOTSTRAP"])
    assert profile_sets(first) == []  # the profile applies ON DEMAND only
    devices = api.services.database.collection("devices")
    before = await devices.find_one({"_id": cpe.device_id})
    assert before is not None
    status, report = await api.call(
        "POST", f"/api/v1/devices/{cpe.device_id}/reprovision?connection_request=false", "operator"
    )
    assert status == 200 and report["found"]
    # The concurrent session write, as FerretDB performs it: the document it read, written back whole.
    await devices.replace_one({"_id": cpe.device_id}, before)
    woken = await cpe.run_session(["6 CONNECTION REQUEST"])
    assert len(profile_sets(woken)) == 1 and cpe.params[SSID][0] == "wanted"
    _, task = await api.call("GET", f"/api/v1/tasks/{report['task_id']}", "viewer")
    assert task["status"] == "done" and task["result"] == {"tasks_queued": 1}, task


async def test_a_reprovision_with_nothing_to_apply_fails_saying_why(api: ApiHarness) -> None:
    spec = {"name": "periodic", "events": ["PERIODIC"], "parameters": {"wifi.ssid": "p"}}
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "IDLE0001")
    await cpe.run_session(["0 BOOTSTRAP"])
    _, report = await api.call("POST", f"/api/v1/devices/{cpe.device_id}/reprovision?connection_request=false")
    woken = await cpe.run_session(["6 CONNECTION REQUEST"])
    assert profile_sets(woken) == []
    _, task = await api.call("GET", f"/api/v1/tasks/{report['task_id']}", "viewer")
    assert task["status"] == "failed" and "applies ON DEMAND" in task["reason"], task


async def test_objects_unknown_are_read_then_brought_to_exactly_n_in_the_same_session(api: ApiHarness) -> None:
    spec = {
        "name": "voice",
        "parameters": {"wifi.ssid": "v"},
        "objects": [{"path": "voip.line.", "count": 2, "exact": True, "values": {"number": "555"}}],
    }
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "VOICE001")
    for number in (1, 2, 3):
        cpe.params[f"{LINE}{number}.DirectoryNumber"] = ("old", "xsd:string", True)
    cpe.next_instance = 4
    first = await cpe.run_session(["0 BOOTSTRAP"])
    assert [m.parameter_path for m in sent(first, GetParameterNames)] == [LINE]
    assert [m.object_name for m in sent(first, DeleteObject)] == [f"{LINE}3."]
    assert sent(first, AddObject) == []
    assert {p.name: p.value for m in profile_sets(first) for p in m.parameters} == {
        SSID: "v",
        f"{LINE}1.DirectoryNumber": "555",
        f"{LINE}2.DirectoryNumber": "555",
    }
    cpe.params = {n: v for n, v in cpe.params.items() if not n.startswith(f"{LINE}2.")}
    await api.services.repositories.parameters.delete_subtree(cpe.device_id, f"{LINE}2.")
    await api.call("POST", f"/api/v1/devices/{cpe.device_id}/reprovision?connection_request=false", "operator")

    def new_instance_has_its_fields(message: Any) -> None:
        if isinstance(message, SetParameterValues):  # this scripted CPE's AddObject creates only Enable
            for parameter in message.parameters:
                cpe.params.setdefault(parameter.name, ("", "xsd:string", True))

    second = await cpe.run_session(["6 CONNECTION REQUEST"], answer=new_instance_has_its_fields)
    assert [m.object_name for m in sent(second, AddObject)] == [LINE]
    assert cpe.params[f"{LINE}4.DirectoryNumber"][0] == "555"


async def test_a_table_the_device_lacks_is_read_once_then_left_out(api: ApiHarness) -> None:
    spec = {
        "name": "voice",
        "events": ["BOOTSTRAP", "PERIODIC"],
        "parameters": {"wifi.ssid": "v"},
        "objects": [{"path": "voip.line.", "count": 1}],
    }
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "NOVOICE1")  # no VoiceService at all: GetParameterNames answers 9005
    first = await cpe.run_session(["0 BOOTSTRAP"])
    assert [m.parameter_path for m in sent(first, GetParameterNames)] == [LINE]
    assert cpe.params[SSID][0] == "v"  # the plain values did not wait for the table
    second = await cpe.run_session(["2 PERIODIC"])
    assert sent(second, GetParameterNames) == []
    third = await cpe.run_session(["2 PERIODIC"])
    assert sent(third, GetParameterNames) == [] and profile_sets(third) == []
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert [r["name"] for r in config["state"]["refused"]] == [LINE]


async def test_watched_parameters_get_notification_attributes_once(api: ApiHarness) -> None:
    spec = {"name": "watch", "parameters": {"wifi.ssid": "w"}, "watch": {"wifi.ssid": "active"}}
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "WATCH001")
    first = await cpe.run_session(["0 BOOTSTRAP"])
    attributes = sent(first, SetParameterAttributes)
    assert [(a.name, a.notification) for m in attributes for a in m.parameters] == [(SSID, 2)]
    second = await cpe.run_session(["1 BOOT"])
    assert sent(second, SetParameterAttributes) == []


async def test_preview_lists_changes_without_writing_and_drift_counts_devices(api: ApiHarness) -> None:
    await api.call("PUT", "/api/v1/subscribers/A-100", json=SUBSCRIBER)
    await api.call("POST", "/api/v1/profiles", json=SERVICE)
    cpe = ont(api)
    await cpe.run_session(["0 BOOTSTRAP"])
    candidate = {**SERVICE, "parameters": {**SERVICE["parameters"], "wifi.ssid": "new-{{ subscriber.account }}"}}
    status, preview = await api.call("POST", "/api/v1/profiles/internet/preview", "operator", json={"spec": candidate})
    assert status == 200 and preview["version"] == 2 and preview["devices_changing"] == 1
    device = preview["devices"][0]
    assert device["device_id"] == cpe.device_id and device["selected"]
    assert device["changes"] == [{"name": SSID, "from": "net-A-100", "to": "new-A-100", "source": "internet@2"}]
    stored = await api.services.repositories.profiles.get("internet")
    assert stored is not None and stored["version"] == 1  # a preview writes nothing
    services = api.services
    reporter = DriftReporter(
        services.profiles, services.repositories.devices, services.repositories.drift, services.clock, 1000
    )
    assert (await reporter.run())["out_of_sync"] == 0
    await services.repositories.parameters.set_values(
        cpe.device_id, [(SSID, "changed-by-hand", "xsd:string")], services.clock()
    )
    assert (await reporter.run())["out_of_sync"] == 1
    status, report = await api.call("GET", "/api/v1/configuration/drift", "viewer")
    internet = next(p for p in report["profiles"] if p["name"] == "internet")
    assert internet["out_of_sync"] == 1 and internet["listed"] == [cpe.device_id]


async def test_device_overrides_win_over_profiles(api: ApiHarness) -> None:
    await api.call("POST", "/api/v1/profiles", json={"name": "base", "parameters": {"wifi.ssid": "isp"}})
    cpe = ont(api, "OVR00001")
    await cpe.run_session(["0 BOOTSTRAP"])
    status, config = await api.call(
        "PUT",
        f"/api/v1/devices/{cpe.device_id}/configuration/overrides",
        "operator",
        json={"overrides": [{"name": "wifi.ssid", "value": "customer-choice"}]},
    )
    assert status == 200
    ssid = next(p for p in config["parameters"] if p["name"] == SSID)
    assert (ssid["desired"], ssid["source"], ssid["in_sync"]) == ("customer-choice", "override", False)
    await api.call(
        "POST",
        "/api/v1/configuration/reprovision",
        "operator",
        json={"device_ids": [cpe.device_id], "connection_request": False},
    )
    await cpe.run_session(["6 CONNECTION REQUEST"])
    assert cpe.params[SSID][0] == "customer-choice"


async def test_value_change_puts_a_watched_value_back(api: ApiHarness) -> None:
    spec = {
        "name": "keep",
        "events": ["BOOTSTRAP", "VALUE CHANGE"],
        "parameters": {"wifi.ssid": "isp"},
        "watch": {"wifi.ssid": "active"},
    }
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "VALCHG01")
    await cpe.run_session(["0 BOOTSTRAP"])
    assert cpe.params[SSID][0] == "isp"
    cpe.params[SSID] = ("my-own", "xsd:string", True)  # the subscriber changed it on the web UI
    services = api.services
    await services.repositories.parameters.set_values(
        cpe.device_id, [(SSID, "my-own", "xsd:string")], services.clock()
    )  # as the VALUE CHANGE Inform reports it
    again = await cpe.run_session(["4 VALUE CHANGE"])
    assert [[p.name for p in m.parameters] for m in profile_sets(again)] == [[SSID]]
    assert cpe.params[SSID][0] == "isp"


async def test_a_subscriber_bound_by_the_pppoe_login_the_device_reports(api: ApiHarness) -> None:
    record = {"account": "L-1", "pppoe_login": "l1@isp", "vlan": 42, "bind_by": "pppoe_login"}
    await api.call("PUT", "/api/v1/subscribers/L-1", json=record)
    spec = {"name": "vlan", "selector": {"has_subscriber": True}, "parameters": {"wan.vlan": "{{ subscriber.vlan }}"}}
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "LOGIN001")
    first = await cpe.run_session(["0 BOOTSTRAP"])
    assert profile_sets(first) == []  # the ACS does not know the device's login yet
    services = api.services
    await services.repositories.parameters.set_values(
        cpe.device_id, [(PPP + "Username", "l1@isp", "xsd:string")], services.clock()
    )  # read by a health poll, say
    second = await cpe.run_session(["1 BOOT"])
    assert [{p.name: p.value for p in m.parameters} for m in profile_sets(second)] == [{PPP + "X_HW_VLAN": "42"}]
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["subscriber"] == "L-1"
    bound = await services.repositories.subscribers.get("L-1")
    assert bound is not None and bound["device_id"] == cpe.device_id


async def test_tasks_expired_or_cancelled_outside_a_session_do_not_hold_the_device_back(api: ApiHarness) -> None:
    await api.call("POST", "/api/v1/profiles", json={"name": "base", "parameters": {"wifi.ssid": "isp"}})
    cpe = ont(api, "STUCK001")
    await cpe.run_session(["0 BOOTSTRAP"], stop_after_requests=0)  # gone before any answer
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["state"]["status"] == "applying"
    services = api.services
    for task in await services.repositories.tasks.for_device(cpe.device_id, None, 10):
        if task["created_by"] == "profiles" and task["status"] == "queued":
            await services.queue.cancel(task["_id"], "an operator")  # no final hook runs for this
    again = await cpe.run_session(["1 BOOT"])
    assert [[p.name for p in m.parameters] for m in profile_sets(again)] == [[SSID]]
    assert cpe.params[SSID][0] == "isp"


def empty_line_table(cpe: ScriptedCpe) -> Any:
    """The device has the VoIP line table but no line in it; a line it adds gets its fields."""
    from cwmp import GetParameterNamesResponse

    def answer(message: Any) -> Any:
        if isinstance(message, GetParameterNames) and message.parameter_path == LINE:
            return GetParameterNamesResponse(parameters=())
        if isinstance(message, SetParameterValues):  # this scripted CPE's AddObject creates only Enable
            for parameter in message.parameters:
                if parameter.name.startswith(LINE):
                    cpe.params.setdefault(parameter.name, ("", "xsd:string", True))
        return None

    return answer


LINE_AND_VALUES = {
    "name": "voice",
    "events": ["BOOTSTRAP", "PERIODIC"],
    "parameters": {"wifi.ssid": "v", IGD + "X_NOPE.Value": "1"},
    "objects": [{"path": "voip.line.", "count": 1, "values": {"number": "555"}}],
}


async def test_a_value_refused_in_the_added_instances_set_is_remembered_and_the_rest_applied_next(
    api: ApiHarness,
) -> None:
    """The plain values ride on the AddObject (one SetParameterValues with the new line's): a plain
    value the device refuses there is remembered by its full name, and the next session sets the
    rest, the line's number too, without adding a second line or sending the refused value again."""
    await api.call("POST", "/api/v1/profiles", json=LINE_AND_VALUES)
    cpe = ont(api, "ADDREF01")
    answer = empty_line_table(cpe)
    first = await cpe.run_session(["0 BOOTSTRAP"], answer=answer)
    assert [m.object_name for m in sent(first, AddObject)] == [LINE]
    assert [{p.name for p in m.parameters} for m in profile_sets(first)] == [
        {SSID, IGD + "X_NOPE.Value", f"{LINE}1.DirectoryNumber"}
    ]
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["state"]["status"] == "failed"
    assert [r["name"] for r in config["state"]["refused"]] == [IGD + "X_NOPE.Value"]
    second = await cpe.run_session(["2 PERIODIC"], answer=answer)
    assert sent(second, AddObject) == []
    assert [{p.name for p in m.parameters} for m in profile_sets(second)] == [{SSID, f"{LINE}1.DirectoryNumber"}]
    assert cpe.params[SSID][0] == "v" and cpe.params[f"{LINE}1.DirectoryNumber"][0] == "555"
    third = await cpe.run_session(["2 PERIODIC"], answer=answer)
    assert profile_sets(third) == [] and sent(third, AddObject) == []  # no loop


async def test_a_refused_add_object_still_sets_the_plain_values_and_reports_its_fault(api: ApiHarness) -> None:
    from cwmp import make_fault

    spec = {**LINE_AND_VALUES, "parameters": {"wifi.ssid": "v"}}
    await api.call("POST", "/api/v1/profiles", json=spec)
    cpe = ont(api, "ADDREF02")
    table = empty_line_table(cpe)

    def full_table(message: Any) -> Any:  # TR-069 A.5.1 fault 9004: resources exceeded
        return make_fault(9004) if isinstance(message, AddObject) else table(message)

    first = await cpe.run_session(["0 BOOTSTRAP"], answer=full_table)
    assert [m.object_name for m in sent(first, AddObject)] == [LINE]
    assert [{p.name for p in m.parameters} for m in profile_sets(first)] == [{SSID}]  # alone, after the refusal
    assert cpe.params[SSID][0] == "v"
    _, config = await api.call("GET", f"/api/v1/devices/{cpe.device_id}/configuration", "viewer")
    assert config["state"]["status"] == "failed" and config["state"]["last_fault"]["code"] == 9004
