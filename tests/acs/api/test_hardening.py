"""API hardening (issue 11): refused input is a 4xx with a reason, never a 500 or a silent mix-up."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from tests.acs.api.conftest import ApiHarness

BIG = 2**63  # one past what BSON stores as an integer


def tasks_path(device_id: str) -> str:
    return f"/api/v1/devices/{quote(device_id, safe='')}/tasks"


def forged(position: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


async def test_idempotency_key_with_another_body_is_a_conflict(api: ApiHarness) -> None:
    device_id = await api.device("IDEM1")
    first = {"kind": "reboot", "idempotency_key": "change-7"}
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=first)
    assert status == 202, task
    other = {"kind": "factory_reset", "idempotency_key": "change-7"}
    status, refused = await api.call("POST", tasks_path(device_id), "operator", json=other)
    assert status == 409, refused
    assert refused["error"]["code"] == "idempotency_conflict"
    assert "change-7" in refused["error"]["message"] and task["id"] in refused["error"]["message"]
    status, same = await api.call("POST", tasks_path(device_id), "operator", json=first)
    assert status == 202 and same["id"] == task["id"]
    kinds = [t["kind"] async for t in api.services.database.collection("tasks").find({"device_id": device_id})]
    assert kinds == ["reboot"]


async def test_idempotency_key_repeated_for_an_upload_to_the_acs_returns_the_task(api: ApiHarness) -> None:
    # The ACS fills in the upload URL (with the task's id): the client's body is what is compared.
    device_id = await api.device("IDEM2")
    body = {"kind": "upload", "file_type": "1 Vendor Configuration File", "idempotency_key": "backup-1"}
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=body)
    assert status == 202, task
    status, again = await api.call("POST", tasks_path(device_id), "operator", json=body)
    assert status == 202 and again["id"] == task["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "set_parameter_values", "values": [{"name": "Device.X.Y", "value": BIG}]},
        {"kind": "set_parameter_values", "values": [{"name": "Device.X.Y", "value": -BIG - 1}]},
        {"kind": "download", "file_type": "1 Firmware Upgrade Image", "url": "http://f/x", "file_size": BIG},
        {"kind": "download", "file_type": "1 Firmware Upgrade Image", "url": "http://f/x", "delay_seconds": BIG},
        {"kind": "upload", "file_type": "1 Vendor Configuration File", "delay_seconds": BIG},
        {
            "kind": "schedule_download",
            "file_type": "1 Firmware Upgrade Image",
            "url": "http://f/x",
            "time_windows": [{"window_start": BIG, "window_end": BIG + 1}],
        },
        {
            "kind": "schedule_download",
            "file_type": "1 Firmware Upgrade Image",
            "url": "http://f/x",
            "time_windows": [{"window_start": 0, "window_end": 60, "max_retries": BIG}],
        },
        {"kind": "reboot", "expires_in": BIG},
    ],
)
async def test_integers_past_64_bits_are_refused_with_the_field(api: ApiHarness, body: dict[str, object]) -> None:
    device_id = await api.device("BIGINT")
    status, refused = await api.call("POST", tasks_path(device_id), "operator", json=body)
    assert status == 422, refused
    assert refused["error"]["code"] == "validation_error" and refused["error"]["details"]
    assert await api.services.database.collection("tasks").count_documents({"device_id": device_id}) == 0


async def test_an_unsigned_long_past_int64_goes_as_a_string(api: ApiHarness) -> None:
    device_id = await api.device("BIGSTR")
    body = {
        "kind": "set_parameter_values",
        "values": [{"name": "Device.X.Y", "value": str(2**64 - 1), "type": "xsd:unsignedLong"}],
    }
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=body)
    assert status == 202, task


LIST_PATHS = [
    "/api/v1/audit",
    "/api/v1/devices/{device}/history",
    "/api/v1/jobs/runs",
    "/api/v1/files",
    "/api/v1/devices/{device}/tasks",
]
OVERFLOWING_TIMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("moment", OVERFLOWING_TIMES)
async def test_forged_cursor_whose_time_overflows_is_a_400(api: ApiHarness, path: str, moment: str) -> None:
    device_id = await api.device("CURSOR")
    cursor = forged({"at": moment, "id": "x"})
    status, refused = await api.call("GET", path.format(device=quote(device_id, safe="")) + f"?cursor={cursor}")
    assert status == 400, refused
    assert refused["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("before", [BIG, -1, True, 1.5])
async def test_forged_incident_cursor_is_a_400(api: ApiHarness, before: object) -> None:
    status, refused = await api.call("GET", f"/api/v1/incidents?cursor={forged({'before': before})}")
    assert status == 400, refused
    assert refused["error"]["code"] == "invalid_cursor"


async def test_json_errors_and_static_files_are_not_sniffed(api: ApiHarness) -> None:
    async with api.as_role(None).get(api.url("/api/v1/devices")) as response:
        assert response.status == 401
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with api.as_role(None).get(api.url("/api/v1/no-such-thing")) as response:
        assert response.status in (401, 404)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with api.as_role(None).get(api.url("/static/console/console.js")) as response:
        assert response.status == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with api.as_role(None).get(api.cwmp_url + "files/0123456789abcdef") as response:
        assert response.status == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_api_token_with_expiry(api: ApiHarness) -> None:
    status, created = await api.call(
        "POST", "/api/v1/tokens", json={"name": "ci", "role": "viewer", "expires_in": 3600}
    )
    assert status == 201, created
    assert created["expires_at"] is not None
    status, listed = await api.call("GET", "/api/v1/tokens")
    assert next(item for item in listed["items"] if item["name"] == "ci")["expires_at"] == created["expires_at"]
    tokens = api.services.database.collection("api_tokens")
    await tokens.update_one({"_id": created["id"]}, {"$set": {"expires_at": api.services.clock()}})
    async with api.as_role(None).get(
        api.url("/api/v1/devices"), headers={"Authorization": f"Bearer {created['token']}"}
    ) as response:
        assert response.status == 401
        assert "expired" in (await response.json())["error"]["message"]
    status, refused = await api.call(
        "POST", "/api/v1/tokens", json={"name": "c2", "role": "viewer", "expires_in": 2**63}
    )
    assert status == 422, refused
