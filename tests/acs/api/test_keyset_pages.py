"""The firmware, campaign and subscriber lists page by keyset (``acs/api/pagination.py``:
``keyset_page``, ``time_id_position``) and their reads by id answer 404 (``found_or_404``), on the
real API and database."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.acs.api.conftest import ApiHarness
from tests.acs.api.test_campaigns import firmware

FORGED_CURSORS = ("%%%", "WzFd", "eyJhdCI6Im5vdCBhIHRpbWUifQ")  # not base64; a JSON list; {"at": "not a time"}


async def walk(api: ApiHarness, path: str, key: str) -> list[Any]:
    """Every item's ``key`` of a list read page by page, two items a page, following next_cursor."""
    seen: list[Any] = []
    cursor = ""
    for _ in range(20):
        status, page = await api.call("GET", path, "viewer", params={"limit": 2, "cursor": cursor})
        assert status == 200, page
        assert len(page["items"]) <= 2
        seen += [item[key] for item in page["items"]]
        if page["next_cursor"] is None:
            return seen
        cursor = page["next_cursor"]
    raise AssertionError(f"{path} did not end")


async def test_firmware_and_campaigns_page_newest_first_and_answer_404(api: ApiHarness) -> None:
    images = [await firmware(api, f"V{n}", "HG8245H") for n in range(2, 7)]
    assert await walk(api, "/api/v1/firmware", "id") == images[::-1]
    devices = [await api.device(f"HW{n:04d}", software_version="V1") for n in range(5)]
    campaigns = []
    for n in range(3):
        body = {"name": f"upgrade {n}", "target": {"device_ids": devices}, "images": {"HG8245H": images[n]}}
        status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json=body)
        assert status == 201, campaign
        campaigns.append(campaign["id"])
    assert await walk(api, "/api/v1/campaigns", "id") == campaigns[::-1]
    members = await walk(api, f"/api/v1/campaigns/{campaigns[0]}/devices", "device_id")
    assert sorted(members) == sorted(devices) and len(members) == 5

    for path in ("/api/v1/firmware", "/api/v1/campaigns", f"/api/v1/campaigns/{campaigns[0]}/devices"):
        for cursor in FORGED_CURSORS:
            status, refused = await api.call("GET", path, "viewer", params={"cursor": cursor})
            assert status == 400 and refused["error"]["code"] == "invalid_cursor", (path, cursor, refused)
    status, missing = await api.call("GET", "/api/v1/firmware/nope", "viewer")
    assert status == 404 and missing["error"]["message"] == "no firmware image nope"
    for path in ("/api/v1/campaigns/nope", "/api/v1/campaigns/nope/progress", "/api/v1/campaigns/nope/devices"):
        status, missing = await api.call("GET", path, "viewer")
        assert status == 404 and missing["error"]["message"] == "no campaign nope", (path, missing)


async def test_subscribers_page_by_account_and_answer_404(api: ApiHarness) -> None:
    accounts = [f"K-{n}" for n in range(5)]
    for account in reversed(accounts):
        status, stored = await api.call("PUT", f"/api/v1/subscribers/{account}", "operator",
                                        json={"account": account, "pppoe_login": f"{account}@isp"})
        assert status == 201, stored
    assert await walk(api, "/api/v1/subscribers", "account") == accounts
    status, refused = await api.call("GET", "/api/v1/subscribers", "viewer", params={"cursor": FORGED_CURSORS[1]})
    assert status == 400 and refused["error"]["code"] == "invalid_cursor"
    status, missing = await api.call("GET", f"/api/v1/subscribers/{quote('K-9')}", "viewer")
    assert status == 404 and missing["error"]["message"] == "no subscriber K-9"
