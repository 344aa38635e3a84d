"""Stored files through the API and the CWMP listener: upload, list, fetch with Range, delete, and
file-backed transfer tasks (download by file_id, upload to the ACS's own URL)."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from tests.acs.api.conftest import ApiHarness

FIRMWARE = os.urandom(600 * 1024 + 17)  # three GridFS chunks, the last one short
FIRMWARE_TYPE = "1 Firmware Upgrade Image"


def tasks_path(device_id: str) -> str:
    return f"/api/v1/devices/{quote(device_id, safe='')}/tasks"


async def upload(api: ApiHarness, content: bytes, role: str = "operator", **query: str) -> tuple[int, Any]:
    params = {"name": "fw-2.0.bin", "file_type": FIRMWARE_TYPE, **query}
    headers = {"Content-Type": "application/octet-stream"}
    return await api.call("POST", "/api/v1/files", role, params=params, data=content, headers=headers)


async def fetch(url: str, headers: dict[str, str] | None = None, session: aiohttp.ClientSession | None = None,
                method: str = "GET") -> tuple[int, bytes, CIMultiDictProxy[str]]:
    own = session is None
    http = session or aiohttp.ClientSession()
    try:
        async with http.request(method, url, headers=headers) as response:
            return response.status, await response.read(), response.headers
    finally:
        if own:
            await http.close()


async def test_upload_fetch_back_with_ranges(api: ApiHarness) -> None:
    status, stored = await upload(api, FIRMWARE, oui="00E0FC", version="V2.0")
    assert status == 201, stored
    assert stored["size"] == len(FIRMWARE) and stored["sha256"] == hashlib.sha256(FIRMWARE).hexdigest()
    assert stored["uploaded_by"] == "test-operator" and stored["oui"] == "00E0FC" and stored["version"] == "V2.0"
    assert stored["url"].endswith(f"/files/{stored['id']}")
    status, shown = await api.call("GET", f"/api/v1/files/{stored['id']}", "viewer")
    assert status == 200 and shown == stored

    viewer = api.as_role("viewer")
    content_url = api.url(f"/api/v1/files/{stored['id']}/content")
    status, body, headers = await fetch(content_url, session=viewer)
    assert status == 200 and hashlib.sha256(body).hexdigest() == stored["sha256"]
    assert headers["Accept-Ranges"] == "bytes" and headers["ETag"] == f'"{stored["sha256"]}"'

    # A range across a chunk boundary, an open-ended one and a suffix (the device-facing URL).
    device_url = str(api.cwmp_server.make_url(f"/files/{stored['id']}"))
    boundary = 255 * 1024
    status, body, headers = await fetch(device_url, {"Range": f"bytes={boundary - 10}-{boundary + 9}"})
    assert status == 206 and body == FIRMWARE[boundary - 10 : boundary + 10]
    assert headers["Content-Range"] == f"bytes {boundary - 10}-{boundary + 9}/{len(FIRMWARE)}"
    status, body, _ = await fetch(device_url, {"Range": "bytes=600000-"})
    assert status == 206 and body == FIRMWARE[600000:]
    status, body, _ = await fetch(device_url, {"Range": "bytes=-100"})
    assert status == 206 and body == FIRMWARE[-100:]
    status, body, headers = await fetch(device_url, {"Range": f"bytes={len(FIRMWARE)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(FIRMWARE)}"
    status, body, _ = await fetch(device_url, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert status == 200 and body == FIRMWARE  # the file changed since: the whole of it
    status, body, headers = await fetch(device_url, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(FIRMWARE)
    status, _, _ = await fetch(str(api.cwmp_server.make_url("/files/" + "0" * 32)))
    assert status == 404


async def test_upload_refused_without_description_or_beyond_the_limit(api: ApiHarness) -> None:
    status, body = await api.call("POST", "/api/v1/files", "operator", data=b"x")
    assert status == 422 and body["error"]["code"] == "validation_error"
    status, body = await upload(api, b"x", file_type="9 Nonsense")
    assert status == 422 and "file_type" in body["error"]["message"]
    status, body = await upload(api, b"x", role="viewer")
    assert status == 403
    api.services.settings = api.services.settings.model_copy(update={"max_file_bytes": 4096})
    status, body = await upload(api, b"y" * 5000)  # Content-Length says so: refused before reading
    assert status == 413 and body["error"]["code"] == "body_too_large"

    async def chunked() -> Any:
        for _ in range(5):
            yield b"z" * 1000

    status, body = await upload(api, chunked())  # no Content-Length: counted while streaming
    assert status == 413, body
    files = api.services.database.collection("files.files")
    chunks = api.services.database.collection("files.chunks")
    assert await files.count_documents({}) == 0 and await chunks.count_documents({}) == 0


async def test_list_paginated_and_filtered(api: ApiHarness) -> None:
    ids = [(await upload(api, f"file {n}".encode(), name=f"f{n}.bin"))[1]["id"] for n in range(5)]
    (await upload(api, b"web", name="page.tar", file_type="2 Web Content"))
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await api.call("GET", "/api/v1/files", "viewer",
                                      params={"limit": "2", "cursor": cursor, "file_type": FIRMWARE_TYPE})
        assert status == 200, page
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))


async def test_download_by_file_id_is_resolved_and_pins_the_file(api: ApiHarness) -> None:
    device_id = await api.device("F1", oui="00E0FC")
    status, body = await api.call("POST", tasks_path(device_id), "operator",
                                  json={"kind": "download", "file_type": FIRMWARE_TYPE, "file_id": "nope"})
    assert status == 422 and body["error"]["details"][0]["loc"] == "body.file_id", body
    _, other = await upload(api, b"other vendor", oui="A0B1C2")
    status, body = await api.call("POST", tasks_path(device_id), "operator",
                                  json={"kind": "download", "file_type": FIRMWARE_TYPE, "file_id": other["id"]})
    assert status == 422 and "oui" in body["error"]["message"], body

    _, stored = await upload(api, FIRMWARE, oui="00E0FC")
    status, task = await api.call("POST", tasks_path(device_id), "operator",
                                  json={"kind": "download", "file_type": FIRMWARE_TYPE, "file_id": stored["id"]})
    assert status == 202, task
    assert task["params"]["url"] == stored["url"] and task["params"]["file_id"] == stored["id"]
    assert task["params"]["file_size"] == len(FIRMWARE) and task["params"]["target_file_name"] == "fw-2.0.bin"

    status, refused = await api.call("DELETE", f"/api/v1/files/{stored['id']}", "admin")
    assert status == 409 and task["id"] in refused["error"]["message"]
    status, _ = await api.call("DELETE", f"/api/v1/files/{stored['id']}", "operator")
    assert status == 403
    await api.call("DELETE", f"/api/v1/tasks/{task['id']}", "operator")
    status, deleted = await api.call("DELETE", f"/api/v1/files/{stored['id']}", "admin")
    assert status == 200 and deleted["id"] == stored["id"]
    status, _ = await api.call("GET", f"/api/v1/files/{stored['id']}/content", "viewer")
    assert status == 404
    assert await api.services.database.collection("files.chunks").count_documents({"files_id": stored["id"]}) == 0
    audit = await api.services.database.collection("audit").find({"file_id": stored["id"]}).to_list()
    assert [(entry["method"], entry["status"]) for entry in audit] == [("POST", 201), ("DELETE", 409),
                                                                        ("DELETE", 200)]


async def test_upload_without_url_lands_on_the_acs(api: ApiHarness) -> None:
    device_id = await api.device("U1")
    body = {"kind": "upload", "file_type": "1 Vendor Configuration File"}
    status, task = await api.call("POST", tasks_path(device_id), "operator", json=body)
    assert status == 202, task
    path = urlsplit(task["params"]["url"]).path
    assert path.startswith(f"/uploads/{task['id']}/")
    put_url = str(api.cwmp_server.make_url(path))
    async with aiohttp.ClientSession() as http:
        async with http.put(put_url, data=b"too early") as response:
            assert response.status == 409  # not dispatched yet
        # The dispatcher's claim in a session of the device (the e2e test runs a real one).
        now = api.services.clock()
        claimed = await api.services.repositories.tasks.claim_next(device_id, "s1", now + timedelta(minutes=1), now)
        assert claimed is not None and claimed["_id"] == task["id"]
        async with http.put(put_url + "x", data=b"wrong token") as response:
            assert response.status == 404
        for attempt in (b"first try", b"<config/>"):
            async with http.put(put_url, data=attempt) as response:
                assert response.status == 201
    status, page = await api.call("GET", "/api/v1/files", "viewer", params={"task_id": task["id"]})
    assert status == 200 and len(page["items"]) == 1, page  # the device's second try replaced the first
    stored = page["items"][0]
    assert stored["device_id"] == device_id and stored["file_type"] == "1 Vendor Configuration File"
    status, content = await api.call("GET", f"/api/v1/files/{stored['id']}/content", "viewer")
    assert status == 200 and content == "<config/>"

    status, body = await api.call("POST", "/api/v1/tasks/bulk", "operator",
                                  json={"devices": {}, "task": {"kind": "upload", "file_type": "2 Vendor Log File"}})
    assert status == 422 and "url" in body["error"]["message"]
