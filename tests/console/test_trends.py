"""Trends (issue 16 item 5): health reads fold into hourly points kept 30 days, boots are counted
per hour by a job, and the console draws them (pygal SVG) for a device, a PON and an OLT.

Real FerretDB and real HTTP: the health read goes through the health poller's answer path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.health.poll import HEALTH_USER
from tasks.store import device_events
from tasks.trends import BootFolding, TrendRecorder, expired_days, hourly_points
from tests.console.conftest import ConsoleHarness

GPON = "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig."


def _read(device_id: str, n: int, rx: str, olt: str = "OLT-7", pon: str = "0/1/2") -> dict[str, object]:
    values = [(GPON + "RXPower", rx), (GPON + "TXPower", "2.1"), (GPON + "TransceiverTemperature", "45"),
              (GPON + "X_HUAWEI_OLT_ID", olt), (GPON + "X_HUAWEI_PONPort", pon)]
    return {"_id": f"health-{device_id}-{n}", "device_id": device_id, "kind": "get_parameter_values",
            "created_by": HEALTH_USER, "status": "done",
            "result": {"values": [{"name": name, "value": value, "type": "xsd:string"} for name, value in values]}}


async def test_health_reads_fold_into_the_hour_and_the_device_chart_draws_them(console: ConsoleHarness) -> None:
    services = console.services
    device_id = await console.device("TREND1")
    # Two reads through the health poller's own answer path: one hour, one point (min, max, mean).
    await services.health.on_task_final(_read(device_id, 1, "-20.0"))
    await services.health.on_task_final(_read(device_id, 2, "-28.0"))
    days = await services.repositories.trends.for_device(device_id, [services.clock().date().isoformat()])
    assert len(days) == 1, "one document per device and day"
    points = hourly_points(days)
    assert len(points) == 1
    point = points[0]
    assert point.low["rx_power"] == -28.0 and point.high["rx_power"] == -20.0 and point.mean("rx_power") == -24.0
    assert point.status == 3, "the hour keeps its worst status (-28 dBm is critical)"
    assert days[0]["pon_day"] == f"OLT-7/0/1/2#{days[0]['day']}" and days[0]["olt_day"].startswith("OLT-7#")

    viewer = await console.login("viewer")
    async with viewer.http.get(console.url(f"/devices/{device_id}/trends?days=7")) as response:
        page = await response.text()
        assert response.status == 200
    assert 'id="chart-optical"' in page and 'src="/devices/' in page and 'id="pon-trends"' in page
    async with viewer.http.get(console.url(f"/devices/{device_id}/trends/optical.svg?days=7")) as response:
        svg = await response.text()
        assert response.status == 200 and response.content_type == "image/svg+xml"
        assert "script-src" not in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "pygal" in svg and "RX (hourly mean)" in svg and "-24" in svg
    for chart in ("temperature", "health", "reboots"):
        async with viewer.http.get(console.url(f"/devices/{device_id}/trends/{chart}.svg?days=30")) as response:
            assert response.status == 200, chart
    async with viewer.http.get(console.url(f"/devices/{device_id}/trends?days=9")) as response:
        assert response.status == 400 and "must be one of 1, 7, 30" in await response.text()
    async with viewer.http.get(console.url(f"/devices/{device_id}/trends/nothing.svg")) as response:
        assert response.status == 404


async def test_a_pon_and_an_olt_add_up_their_members(console: ConsoleHarness) -> None:
    services = console.services
    recorder = TrendRecorder(services.repositories.trends)
    at = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)
    members = (("P1", -19.0, "ok", "1"), ("P2", -26.0, "warn", "1"), ("P3", -30.0, "critical", "2"))
    for serial, rx, status, pon in members:
        device_id = await console.device(serial)
        await recorder.on_health({"_id": device_id}, {"at": at, "status": status,
                                                       "values": {"rx_power": rx, "olt_id": "OLT-9", "pon_port": pon}})
    day = at.date().isoformat()
    pon = hourly_points(await services.repositories.trends.for_group("pon_day", "OLT-9/1", [day], 100))
    assert len(pon) == 1 and pon[0].low["rx_power"] == -26.0 and pon[0].high["rx_power"] == -19.0
    assert pon[0].statuses == {"ok": 1, "warn": 1}, "devices counted by their worst status of the hour"
    olt = hourly_points(await services.repositories.trends.for_group("olt_day", "OLT-9", [day], 100))
    assert olt[0].statuses == {"ok": 1, "warn": 1, "critical": 1} and olt[0].mean("rx_power") == -25.0

    viewer = await console.login("viewer")
    async with viewer.http.get(console.url("/trends?olt=OLT-9&pon=1&days=1")) as response:
        page = await response.text()
        assert response.status == 200 and "PON 1" in page
        assert 'src="/trends/health.svg?olt=OLT-9&amp;pon=1&amp;days=1"' in page
    async with viewer.http.get(console.url("/trends/health.svg?olt=OLT-9&days=1")) as response:
        svg = await response.text()
        assert response.status == 200 and "Devices by health" in svg and "critical" in svg
    async with viewer.http.get(console.url("/trends?days=7")) as response:
        assert response.status == 400, "an OLT must be named"


async def test_boots_are_counted_per_hour_once_and_old_days_pruned(console: ConsoleHarness) -> None:
    services = console.services
    repositories = services.repositories
    device_id = await console.device("BOOTS1")
    now = services.clock()
    hour = now.replace(minute=0, second=0, microsecond=0)
    await repositories.events.record(device_id, device_events.BOOT, hour + timedelta(seconds=1), {})
    await repositories.events.record(device_id, device_events.BOOT, hour + timedelta(seconds=2), {})
    await repositories.events.record(device_id, device_events.BOOT, hour + timedelta(seconds=3),
                                     {"first_contact": True})
    job = BootFolding(repositories.events, repositories.devices, repositories.trends, services.clock)
    assert (await job.run())["boots"] == 2, "a first contact is not a reboot"
    await job.run()  # a second run over the same hours recounts them: nothing is counted twice
    points = hourly_points(await repositories.trends.for_device(device_id, [hour.date().isoformat()]))
    assert [point.boots for point in points] == [2]

    # 30 days kept: a day past that goes, the newest kept day stays.
    old = (now - timedelta(days=31)).date().isoformat()
    kept = (now - timedelta(days=29)).date().isoformat()
    for day in (old, kept):
        await repositories.trends.fold(device_id, day, {"$set": {"hours.01.boots": 1}}, {})
    assert old in expired_days(now) and kept not in expired_days(now)
    assert await repositories.trends.prune(expired_days(now)) == 1
    left = {doc["day"] for doc in await repositories.trends.for_device(device_id, [old, kept])}
    assert left == {kept}
