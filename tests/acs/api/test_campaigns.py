"""Firmware images and campaigns through the operator API (issue 15 items 1, 2, 4): a campaign is
refused when an image does not fit a targeted model, stored with its waves otherwise, shows its
progress, takes the operator's actions, and every write is audited."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from tests.acs.api.conftest import ApiHarness

FIRMWARE_TYPE = "1 Firmware Upgrade Image"


async def firmware(api: ApiHarness, version: str, *product_classes: str, vendor: str | None = None) -> str:
    status, stored = await api.call("POST", "/api/v1/files", "operator", data=os.urandom(1000),
                                    params={"name": f"fw-{version}.bin", "file_type": FIRMWARE_TYPE},
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 201, stored
    body: dict[str, Any] = {"file_id": stored["id"], "version": version, "product_classes": list(product_classes)}
    if vendor is not None:
        body["vendor"] = vendor
    status, image = await api.call("POST", "/api/v1/firmware", "operator", json=body)
    assert status == 201, image
    assert image["sha256"] == stored["sha256"] and image["size"] == 1000 and image["product_classes"]
    return str(image["id"])


async def fleet(api: ApiHarness) -> tuple[list[str], list[str]]:
    huawei = [await api.device(f"HW{n:04d}", software_version="V1") for n in range(30)]
    zte = [await api.device(f"ZT{n:04d}", product_class="F660", oui="001E73", software_version="Z1")
           for n in range(10)]
    return huawei, zte


async def test_a_campaign_whose_image_does_not_fit_a_targeted_model_is_refused(api: ApiHarness) -> None:
    await fleet(api)
    huawei_image = await firmware(api, "V2", "HG8245H")
    body = {"name": "both models", "target": {"software_versions": ["V1", "Z1"]},
            "images": {"HG8245H": huawei_image}}
    status, refused = await api.call("POST", "/api/v1/campaigns", "operator", json=body)
    assert status == 422 and refused["error"]["code"] == "image_does_not_fit", refused
    assert "F660" in refused["error"]["message"]
    status, refused = await api.call("POST", "/api/v1/campaigns", "operator",
                                     json={**body, "images": {"HG8245H": huawei_image, "F660": huawei_image}})
    assert status == 422 and "fits HG8245H, not F660" in refused["error"]["message"], refused
    other_vendor = await firmware(api, "V3", "HG8245H", vendor="AAAAAA")
    status, refused = await api.call("POST", "/api/v1/campaigns", "operator",
                                     json={**body, "target": {"product_classes": ["HG8245H"]},
                                           "images": {"HG8245H": other_vendor}})
    assert status == 422 and "vendor AAAAAA" in refused["error"]["message"], refused
    status, bad_zone = await api.call("POST", "/api/v1/campaigns", "operator",
                                      json={**body, "time_zone": "Mars/Olympus"})
    assert status == 422 and "time zone" in bad_zone["error"]["message"]
    status, listed = await api.call("GET", "/api/v1/campaigns", "viewer")
    assert status == 200 and listed["items"] == []  # nothing stored by a refusal
    assert await api.services.database.collection("campaign_devices").count_documents({}) == 0


async def test_a_campaign_is_stored_with_its_waves_progress_and_actions(api: ApiHarness) -> None:
    huawei, zte = await fleet(api)
    already = await api.device("HW9999", software_version="V2")  # already on the new version: left out
    images = {"HG8245H": await firmware(api, "V2", "HG8245H"), "F660": await firmware(api, "Z2", "F660")}
    body = {"name": "spring upgrade", "target": {"product_classes": ["HG8245H", "F660"]}, "images": images,
            "waves": [{"devices": 5}, {"percent": 10}, {"percent": 50}, {"percent": 100}],
            "concurrency": 5, "rate": 10, "windows": [{"start": "01:00", "end": "05:00"}],
            "time_zone": "Europe/Moscow"}
    status, refused = await api.call("POST", "/api/v1/campaigns", "viewer", json=body)
    assert status == 403
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json=body)
    assert status == 201, campaign
    assert campaign["devices"] == 40 and campaign["status"] == "running"
    assert [wave["size"] for wave in campaign["waves"]] == [5, 0, 15, 20]  # 10 % of 40 is in the canary already
    assert campaign["versions"] == {"HG8245H": "V2", "F660": "Z2"}
    campaign_id = campaign["id"]

    status, progress = await api.call("GET", f"/api/v1/campaigns/{campaign_id}/progress", "viewer")
    assert status == 200, progress
    assert progress["counts"]["pending"] == 40 and progress["counts"]["failed"] == 0
    assert [wave["size"] for wave in progress["waves"]] == [5, 0, 15, 20]
    assert progress["waves"][0]["counts"]["pending"] == 5
    status, members = await api.call("GET", f"/api/v1/campaigns/{campaign_id}/devices?limit=100", "viewer")
    assert status == 200 and {m["device_id"] for m in members["items"]} == {*huawei, *zte}
    assert already not in {m["device_id"] for m in members["items"]}
    assert {m["to_version"] for m in members["items"] if m["product_class"] == "F660"} == {"Z2"}

    path = f"/api/v1/campaigns/{campaign_id}/actions"
    status, paused = await api.call("POST", path, "operator", json={"action": "pause", "reason": "night shift"})
    assert status == 200 and paused["status"] == "paused" and paused["stopped_by"]["rule"] == "operator"
    status, again = await api.call("POST", path, "operator", json={"action": "pause"})
    assert status == 409 and again["error"]["code"] == "conflict"
    status, resumed = await api.call("POST", path, "operator", json={"action": "resume"})
    assert status == 200 and resumed["status"] == "running" and resumed["stopped_by"] is None
    status, refused = await api.call("POST", path, "operator", json={"action": "rollback"})
    assert status == 200 and refused["status"] == "rolling_back"  # nothing upgraded yet: nothing to restore
    status, _missing = await api.call("GET", "/api/v1/campaigns/ffffffffffffffffffffffff", "viewer")
    assert status == 404

    device = huawei[0]
    status, mine = await api.call("GET", f"/api/v1/devices/{quote(device, safe='')}/campaigns", "viewer")
    assert status == 200 and mine["items"][0]["state"] == "pending" and mine["items"][0]["to_version"] == "V2"

    audit = [entry async for entry in api.services.database.collection("audit").find({"campaign_id": campaign_id})]
    assert sorted(entry.get("action", "create") for entry in audit) == ["create", "pause", "pause", "resume",
                                                                        "rollback"]
    assert {entry["token_name"] for entry in audit} == {"test-operator"}


async def test_rollback_needs_the_previous_image(api: ApiHarness) -> None:
    await fleet(api)
    image = await firmware(api, "V2", "HG8245H")
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json={
        "name": "no way back", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image}})
    assert status == 201
    members = api.services.database.collection("campaign_devices")
    await members.update_one({"campaign_id": campaign["id"]}, {"$set": {"state": "healthy"}})
    status, refused = await api.call("POST", f"/api/v1/campaigns/{campaign['id']}/actions", "operator",
                                     json={"action": "rollback"})
    assert status == 409 and refused["error"]["code"] == "no_previous_image", refused
    assert "HG8245H V1" in refused["error"]["message"]
    await firmware(api, "V1", "HG8245H")
    status, rolling = await api.call("POST", f"/api/v1/campaigns/{campaign['id']}/actions", "operator",
                                     json={"action": "rollback"})
    assert status == 200 and rolling["status"] == "rolling_back"


async def test_campaign_routes_are_in_openapi(api: ApiHarness) -> None:
    status, document = await api.call("GET", "/api/v1/openapi.json", None)
    assert status == 200
    for path in ("/api/v1/campaigns", "/api/v1/campaigns/{campaign_id}/progress", "/api/v1/firmware",
                 "/api/v1/campaigns/{campaign_id}/actions"):
        assert path in document["paths"], path
