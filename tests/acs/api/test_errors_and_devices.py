"""Error bodies, device listing with filters and pagination, one device, parameters, tags."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from tests.acs.api.conftest import ApiHarness


def path_of(device_id: str) -> str:
    return quote(device_id, safe="")


async def test_error_bodies(api: ApiHarness) -> None:
    status, body = await api.call("GET", "/api/v1/nothing-here", None)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.call("PUT", "/api/v1/devices", "viewer")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    status, body = await api.call("GET", "/api/v1/devices?limit=0", "viewer")
    assert status == 422 and body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["loc"] == "query.limit"
    status, body = await api.call("GET", "/api/v1/devices?onlin=true", "viewer")
    assert status == 422 and "query.onlin" in body["error"]["message"]
    status, body = await api.call("GET", "/api/v1/devices?cursor=%%%", "viewer")
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")
    device_id = await api.device("E1")
    status, body = await api.call(
        "POST",
        f"/api/v1/devices/{path_of(device_id)}/tasks",
        "operator",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, body = await api.call(
        "POST",
        f"/api/v1/devices/{path_of(device_id)}/tasks",
        "operator",
        json={"kind": "set_parameter_values", "values": [{"name": "bad name", "value": 1}]},
    )
    assert status == 422
    assert any("values.0.name" in detail["loc"] for detail in body["error"]["details"]), body
    status, body = await api.call("GET", "/api/v1/devices/nope", "viewer")
    assert status == 404 and body == {"error": {"code": "not_found", "message": "no device nope"}}


async def test_list_filters_and_pagination_round_trip(api: ApiHarness) -> None:
    ids = [await api.device(f"P{n:03d}", online=n % 2 == 0) for n in range(23)]
    other = await api.device("Z-1", product_class="F660", oui="00D0D0", software_version="V2.0")
    await api.services.repositories.devices.add_tags(ids[3], ["lab"])
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = "?limit=5&oui=00E0FC" + (f"&cursor={cursor}" if cursor else "")
        status, page = await api.call("GET", "/api/v1/devices" + query, "viewer")
        assert status == 200, page
        seen += [device["device_id"] for device in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids) and pages == 5
    filters = {
        "online=true": [*(i for n, i in enumerate(ids) if n % 2 == 0), other],
        "online=false": [i for n, i in enumerate(ids) if n % 2 == 1],
        "tag=lab": [ids[3]],
        "product_class=F660": [other],
        "software_version=V2.0": [other],
        "q=p01": [i for i in ids if "P01" in i],
        "q=z-1": [other],  # a whole serial (prefixes start at 3 characters)
    }
    for query, expected in filters.items():
        status, page = await api.call("GET", f"/api/v1/devices?limit=500&{query}", "viewer")
        assert status == 200
        assert [d["device_id"] for d in page["items"]] == sorted(expected), query


async def test_one_device_with_percent_encoded_id(api: ApiHarness) -> None:
    device_id = await api.device(
        "SN 1/2",
        product_class="HG-8245",
        connection_request_url="http://10.0.0.1:7547/",
        cpe_password="secret",
        connection_request_password="sealed-secret",
        uptime=7,
    )
    assert device_id == "00E0FC-HG-8245-SN%201%2F2"
    # The id itself holds %-escapes, so it is escaped again in the path; "-" may come as %2D.
    path = "/api/v1/devices/" + quote(device_id, safe="").replace("-", "%2D")
    status, device = await api.call("GET", path, "viewer")
    assert status == 200, device
    assert device["device_id"] == device_id
    assert device["serial_number"] == "SN 1/2" and device["online"] is True and device["uptime"] == 7
    assert device["events"] == ["1 BOOT"] and device["connection_request_credentials"] is True
    assert "secret" not in str(device)
    assert datetime.fromisoformat(device["last_inform"]) <= datetime.now(UTC)


async def test_parameters_and_tags(api: ApiHarness) -> None:
    device_id = await api.device("T1")
    now = api.services.clock()
    await api.services.repositories.parameters.set_values(
        device_id,
        [
            ("Device.DeviceInfo.SoftwareVersion", "V1", "xsd:string"),
            ("Device.DeviceInfo.UpTime", "5", "xsd:unsignedInt"),
            ("Device.ManagementServer.URL", "http://acs", "xsd:string"),
        ],
        now,
    )
    base = f"/api/v1/devices/{path_of(device_id)}"
    status, params = await api.call("GET", base + "/parameters?prefix=Device.DeviceInfo.", "viewer")
    assert status == 200
    assert set(params) == {"Device.DeviceInfo.SoftwareVersion", "Device.DeviceInfo.UpTime"}
    assert params["Device.DeviceInfo.UpTime"]["value"] == "5"
    assert params["Device.DeviceInfo.UpTime"]["type"] == "xsd:unsignedInt"
    status, params = await api.call("GET", base + "/parameters", "viewer")
    assert len(params) == 3
    status, _body = await api.call("GET", base + "/parameters?prefix=bad..name", "viewer")
    assert status == 422
    status, tags = await api.call("POST", base + "/tags", "operator", json={"tags": ["lab", "floor-2"]})
    assert status == 200 and sorted(tags["tags"]) == ["floor-2", "lab"]
    status, tags = await api.call("DELETE", base + "/tags", "operator", json={"tags": ["lab"]})
    assert status == 200 and tags["tags"] == ["floor-2"]
    status, _body = await api.call("POST", base + "/tags", "operator", json={"tags": ["no spaces"]})
    assert status == 422
    status, _body = await api.call("POST", "/api/v1/devices/unknown/tags", "operator", json={"tags": ["x"]})
    assert status == 404


async def test_nul_characters_are_refused_with_400(api: ApiHarness) -> None:
    status, body = await api.call(
        "POST",
        "/api/v1/tasks/bulk",
        "operator",
        json={"devices": {"product_class": "HG\u0000"}, "task": {"kind": "reboot"}},
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_text"
    status, body = await api.call("GET", "/api/v1/devices?q=a%00b", "viewer")
    assert (status, body["error"]["code"]) == (400, "invalid_text")
    status, body = await api.call("GET", "/api/v1/devices/abc%00def", "viewer")
    assert (status, body["error"]["code"]) == (400, "invalid_text")
