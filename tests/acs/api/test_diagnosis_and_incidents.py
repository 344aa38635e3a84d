"""Diagnosis of a healthy, an offline and a degraded device; incidents listed, acknowledged, resolved."""

from __future__ import annotations

from datetime import timedelta

from tasks.health.advice import reboot_reason
from tasks.health.evaluate import HealthResult, Level, Reason, summarize
from tests.acs.api.conftest import ApiHarness


async def test_diagnosis_says_the_right_thing(api: ApiHarness) -> None:
    now = api.services.clock()
    healthy = await api.device("HEALTHY", health={"status": "ok", "at": now, "since": now, "reasons": [],
                                                  "values": {"rx_power": -19.5, "wan_status": "Connected"}})
    offline = await api.device("OFFLINE", online=False, presence="offline", offline_since=now - timedelta(hours=1))
    reason = {"check": "optical", "level": "critical", "message": "optical RX power -29.5 dBm below -27 dBm"}
    degraded = await api.device("DEGRADED", health={"status": "critical", "at": now, "since": now,
                                                    "reasons": [reason], "values": {"rx_power": -29.5}})
    status, body = await api.call("GET", f"/api/v1/devices/{healthy}/diagnosis", "viewer")
    assert status == 200, body
    assert body["online"] is True and body["health"]["status"] == "ok"
    assert body["next_steps"][0].startswith("no problem found on the access line")
    _, body = await api.call("GET", f"/api/v1/devices/{offline}/diagnosis", "viewer")
    assert body["online"] is False and body["next_steps"][0].startswith("device offline since")
    _, body = await api.call("GET", f"/api/v1/devices/{degraded}/diagnosis", "viewer")
    assert body["next_steps"] == ["optical RX power -29.5 dBm below -27 dBm: fibre problem, send a technician"]


async def test_a_failed_health_read_is_shown_with_the_last_good_one(api: ApiHarness) -> None:
    now = api.services.clock()
    weak = Reason("optical", Level.CRITICAL, "optical RX power -29.5 dBm below -27 dBm")
    failed = Reason("device", Level.UNKNOWN, "health read expired: no session before expiry")
    health = summarize(summarize({}, HealthResult(Level.CRITICAL, [weak]), now - timedelta(minutes=10)),
                       HealthResult(Level.UNKNOWN, [failed]), now)
    device = await api.device("LOOPING", health=health)
    status, body = await api.call("GET", f"/api/v1/devices/{device}/diagnosis", "viewer")
    assert status == 200, body
    assert body["health"]["status"] == "unknown" and body["health"]["reasons"][0]["message"] == failed.message
    assert body["health"]["last_definite"]["status"] == "critical"
    assert body["next_steps"][0] == ("health read expired: no session before expiry; the last successful read said "
                                     "critical (optical RX power -29.5 dBm below -27 dBm): tag the device 'watch' "
                                     "to read it again")


async def test_a_device_in_an_open_incident_is_told_to_wait(api: ApiHarness) -> None:
    now = api.services.clock()
    device = await api.device("DARK", online=False, presence="offline", offline_since=now)
    number = await api.services.repositories.incidents.open({
        "key": "olt:OLT-X", "dimension": "pon", "value": "OLT-X 0/1/0", "title": "Outage on OLT OLT-X (PON 0/1/0)",
        "cause": "shared OLT OLT-X, PON port 0/1/0", "selector": ["pon:OLT-X 0/1/0"], "opened_at": now,
        "updated_at": now, "members": [device], "member_count": 1, "affected_now": 1, "peak": 1, "group_size": 1,
        "signals": {"offline": 1}, "acknowledged": None, "comments": [], "timeline": []})
    assert number is not None
    assert await api.services.repositories.incidents.open({"key": "olt:OLT-X"}) is None, "one open per key"
    _, body = await api.call("GET", f"/api/v1/devices/{device}/diagnosis", "viewer")
    assert body["next_steps"] == [f"part of incident #{number}: Outage on OLT OLT-X (PON 0/1/0); no action on "
                                  "this device"]
    status, page = await api.call("GET", f"/api/v1/incidents?status=open&device_id={device}", "viewer")
    assert status == 200 and [item["id"] for item in page["items"]] == [number]
    status, acked = await api.call("POST", f"/api/v1/incidents/{number}/ack", "operator",
                                   json={"comment": "OLT team informed"})
    assert status == 200, acked
    assert acked["acknowledged"]["by"] == "test-operator" and acked["comments"][0]["text"] == "OLT team informed"
    status, commented = await api.call("POST", f"/api/v1/incidents/{number}/comments", "operator",
                                       json={"comment": "splice crew on site"})
    assert status == 200, commented
    assert [c["text"] for c in commented["comments"]] == ["OLT team informed", "splice crew on site"]
    status, _ = await api.call("POST", f"/api/v1/incidents/{number}/comments", "operator", json={"comment": ""})
    assert status == 422
    status, missing = await api.call("GET", "/api/v1/incidents/999999999999999999999999999999", "viewer")
    assert (status, missing["error"]["code"]) == (404, "not_found")
    for no_reason in ({}, {"reason": ""}, {"reason": "   "}, {"comment": "done"}):
        status, refused = await api.call("POST", f"/api/v1/incidents/{number}/resolve", "operator", json=no_reason)
        assert status == 422, (no_reason, refused)
    _, still = await api.call("GET", f"/api/v1/incidents/{number}", "viewer")
    assert still["status"] == "open"
    status, done = await api.call("POST", f"/api/v1/incidents/{number}/resolve", "operator",
                                  json={"reason": "OLT port replaced"})
    assert status == 200 and done["status"] == "resolved" and done["resolved_by"] == "test-operator"
    assert done["comments"][-1]["text"] == "resolved: OLT port replaced"
    assert done["resolve_reason"] == "OLT port replaced" and done["followed_by"] is None
    status, _ = await api.call("POST", f"/api/v1/incidents/{number}/resolve", "operator", json={"reason": "again"})
    assert status == 409
    _, history = await api.call("GET", f"/api/v1/devices/{device}/history", "viewer")
    assert any(entry["type"] == "incident" for entry in history["items"])


def test_reboot_reasons_from_the_boot_events() -> None:
    assert reboot_reason(["1 BOOT", "M Reboot"]) == "reboot requested by the ACS"
    assert reboot_reason(["1 BOOT", "7 TRANSFER COMPLETE", "M Download"]).startswith("restart after a firmware")
    assert reboot_reason(["1 BOOT"]).startswith("power loss or crash")
