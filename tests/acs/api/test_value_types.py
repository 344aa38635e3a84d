"""SetParameterValues through the API: a value its type cannot hold is a 422 with the reason, and
nothing is queued (issue 12: "abc" and -5 went out as xsd:unsignedInt, "maybe" as xsd:boolean)."""

from __future__ import annotations

from urllib.parse import quote

from tests.acs.api.conftest import ApiHarness

INTERVAL = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"
ENABLE = "InternetGatewayDevice.ManagementServer.PeriodicInformEnable"
TIME = "InternetGatewayDevice.ManagementServer.PeriodicInformTime"
NAME = "InternetGatewayDevice.DeviceInfo.ProvisioningCode"


def tasks_path(device_id: str) -> str:
    return f"/api/v1/devices/{quote(device_id, safe='')}/tasks"


def set_values(*values: dict[str, object]) -> dict[str, object]:
    return {"kind": "set_parameter_values", "values": list(values)}


async def _queued(api: ApiHarness, device_id: str) -> int:
    return await api.services.database.collection("tasks").count_documents({"device_id": device_id})


async def test_a_value_its_declared_type_cannot_hold_is_refused(api: ApiHarness) -> None:
    device_id = await api.device("TYPED1")
    refused = [
        ({"name": INTERVAL, "value": "abc", "type": "xsd:unsignedInt"}, "'abc' is not an integer"),
        ({"name": INTERVAL, "value": -5, "type": "xsd:unsignedInt"}, "-5 is outside 0..4294967295"),
        ({"name": INTERVAL, "value": 2**32, "type": "xsd:unsignedInt"}, "is outside 0..4294967295"),
        ({"name": ENABLE, "value": "maybe", "type": "xsd:boolean"}, "'maybe' is not a boolean"),
        ({"name": TIME, "value": "yesterday", "type": "xsd:dateTime"}, "not an ISO 8601 date"),
    ]
    for setting, reason in refused:
        status, body = await api.call("POST", tasks_path(device_id), "operator", json=set_values(setting))
        assert status == 422, (setting, body)
        assert body["error"]["code"] == "validation_error"
        assert reason in body["error"]["message"], body
        assert body["error"]["details"][0]["loc"] == "body.set_parameter_values.values.0"
    assert await _queued(api, device_id) == 0
    accepted = [
        {"name": INTERVAL, "value": "300", "type": "xsd:unsignedInt"},
        {"name": ENABLE, "value": "1", "type": "xsd:boolean"},
        {"name": TIME, "value": "2025-01-01T00:00:00Z", "type": "xsd:dateTime"},
    ]
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=set_values(*accepted))
    assert status == 202, task
    assert await _queued(api, device_id) == 1


async def test_a_value_without_a_type_is_checked_against_the_cached_type(api: ApiHarness) -> None:
    device_id = await api.device("TYPED2")
    now = api.services.clock()
    cached = [(INTERVAL, "3600", "xsd:unsignedInt"), (ENABLE, "true", "xsd:boolean"), (NAME, "", "xsd:string")]
    await api.services.repositories.parameters.set_values(device_id, cached, now)
    for setting, reason in [
        ({"name": INTERVAL, "value": "abc"}, f"{INTERVAL}: 'abc' is not an integer"),
        ({"name": INTERVAL, "value": -5}, f"{INTERVAL}: -5 is outside 0..4294967295"),
        ({"name": ENABLE, "value": "maybe"}, f"{ENABLE}: 'maybe' is not a boolean"),
    ]:
        body_json = set_values({"name": NAME, "value": "ok"}, setting)
        status, body = await api.call("POST", tasks_path(device_id), "operator", json=body_json)
        assert status == 422, (setting, body)
        assert body["error"]["code"] == "invalid_value"
        assert reason in body["error"]["message"], body
        assert body["error"]["details"] == [{"loc": "body.values.1.value", "reason": body["error"]["message"]}]
    assert await _queued(api, device_id) == 0
    good = set_values({"name": INTERVAL, "value": 600}, {"name": ENABLE, "value": False}, {"name": NAME, "value": "x"})
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=good)
    assert status == 202, task
    # A parameter the cache does not know is left to the device (its answer says what it holds).
    unknown = set_values({"name": "InternetGatewayDevice.X_VENDOR.Unknown", "value": "anything"})
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=unknown)
    assert status == 202, task
    assert await _queued(api, device_id) == 2
