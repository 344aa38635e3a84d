"""Helpers of the campaign end-to-end tests: firmware images through the API, a campaign, and
waiting on its progress."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from tests.support.processes import AcsProcess

FIRMWARE_TYPE = "1 Firmware Upgrade Image"


async def api(acs: AcsProcess, token: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """One API call; a 503 (the database busy under a booting fleet on a loaded box) is retried, as its
    message asks, a few times."""
    for attempt in range(5):
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http, \
                http.request(method, acs.api_url.rstrip("/") + path, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            if response.status != 503 or attempt == 4:
                return response.status, body
        await asyncio.sleep(1 + attempt)
    raise AssertionError("unreachable")


async def add_image(acs: AcsProcess, token: str, product_class: str, version: str) -> str:
    """A firmware image whose file name carries the version (the simulator installs what the name says)."""
    status, stored = await api(acs, token, "POST", "/api/v1/files", data=os.urandom(64 * 1024),
                               params={"name": f"{product_class}-{version}.bin", "file_type": FIRMWARE_TYPE},
                               headers={"Content-Type": "application/octet-stream"})
    assert status == 201, stored
    status, image = await api(acs, token, "POST", "/api/v1/firmware",
                              json={"file_id": stored["id"], "version": version, "product_classes": [product_class]})
    assert status == 201, image
    return str(image["id"])


def open_window(zone: str = "Europe/Moscow", now: datetime | None = None) -> dict[str, str]:
    """A daily window that is open now (from an hour ago to two hours on, local time of ``zone``)."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    return {"start": f"{local - timedelta(hours=1):%H:%M}", "end": f"{local + timedelta(hours=2):%H:%M}"}


def closed_window(zone: str = "Europe/Moscow", now: datetime | None = None) -> dict[str, str]:
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    return {"start": f"{local + timedelta(hours=3):%H:%M}", "end": f"{local + timedelta(hours=5):%H:%M}"}


async def progress(acs: AcsProcess, token: str, campaign_id: str) -> dict[str, Any]:
    status, body = await api(acs, token, "GET", f"/api/v1/campaigns/{campaign_id}/progress")
    assert status == 200, body
    return dict(body)


async def campaign(acs: AcsProcess, token: str, campaign_id: str) -> dict[str, Any]:
    status, body = await api(acs, token, "GET", f"/api/v1/campaigns/{campaign_id}")
    assert status == 200, body
    return dict(body)
