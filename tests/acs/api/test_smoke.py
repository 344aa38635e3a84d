from tests.acs.api.conftest import ApiHarness


async def test_list_devices(api: ApiHarness) -> None:
    device_id = await api.device("S1")
    status, body = await api.call("GET", "/api/v1/devices", "viewer")
    assert status == 200, body
    assert [d["device_id"] for d in body["items"]] == [device_id]
    status, body = await api.call("GET", "/api/v1/openapi.json", None)
    assert status == 200, body
