"""Bulk tasks over 30 devices: progress from the tasks themselves, waking at a bounded rate, cancel."""

from __future__ import annotations

from typing import Any

from acs.api.context import API
from tests.acs.api.conftest import ApiHarness
from tests.acs.api.cpe_listener import CrListener
from tests.support.processes import wait_until


async def bulk_status(api: ApiHarness, batch_id: str) -> dict[str, Any]:
    status, body = await api.call("GET", f"/api/v1/tasks/bulk/{batch_id}", "viewer")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_bulk_over_30_devices_with_progress(api: ApiHarness) -> None:
    listener = CrListener(lambda: ("u", "p"))
    await listener.start()
    try:
        for n in range(30):
            await api.device(f"B{n:02d}", connection_request_url=listener.url, connection_request_username="u",
                             connection_request_password=api.services.box.encrypt("p"))
        await api.device("OTHER", product_class="F660")
        status, batch = await api.call("POST", "/api/v1/tasks/bulk", "operator", json={
            "devices": {"product_class": "HG8245H"}, "task": {"kind": "reboot"}, "wake_rate": 200,
        })
        assert status == 202, batch
        assert batch["matched"] == 30 and batch["state"] == "running" and batch["kind"] == "reboot"

        async def finished() -> dict[str, Any] | None:
            current = await bulk_status(api, batch["batch_id"])
            return current if current["state"] == "finished" else None

        done = await wait_until(finished, timeout=20, message="bulk batch finished")
        assert done["progress"] == {"created": 30, "woken": 30, "wake_failed": 0}
        assert done["tasks"] == {"queued": 30}
        assert listener.answered == 30
        tasks = api.services.database.collection("tasks")
        assert await tasks.count_documents({"batch_id": batch["batch_id"]}) == 30
        assert await tasks.count_documents({"device_id": {"$regex": "OTHER"}}) == 0
        status, cancelled = await api.call("DELETE", f"/api/v1/tasks/bulk/{batch['batch_id']}", "operator")
        assert status == 200 and cancelled["state"] == "cancelled" and cancelled["tasks"] == {"cancelled": 30}
        status, _again = await api.call("DELETE", f"/api/v1/tasks/bulk/{batch['batch_id']}", "operator")
        assert status == 409
    finally:
        await listener.close()


async def test_cancel_while_running_stops_the_batch(api: ApiHarness) -> None:
    for n in range(30):
        await api.device(f"R{n:02d}", connection_request_url="http://127.0.0.1:9/cr")  # nothing listens: fails fast
    status, batch = await api.call("POST", "/api/v1/tasks/bulk", "operator", json={
        "devices": {}, "task": {"kind": "get_parameter_values", "names": ["Device."]}, "wake_rate": 5,
    })
    assert status == 202
    status, cancelled = await api.call("DELETE", f"/api/v1/tasks/bulk/{batch['batch_id']}", "operator")
    assert status == 200 and cancelled["state"] == "cancelled"
    await api.server.app[API].bulk.wait(batch["batch_id"])
    final = await bulk_status(api, batch["batch_id"])
    assert set(final["tasks"]) <= {"cancelled"}, final
    assert final["progress"]["woken"] + final["progress"]["wake_failed"] < 30  # stopped before waking everyone


async def test_bulk_refuses_too_many_devices_and_bad_bodies(api: ApiHarness) -> None:
    for n in range(3):
        await api.device(f"M{n}")
    status, body = await api.call("POST", "/api/v1/tasks/bulk", "operator",
                                  json={"devices": {}, "task": {"kind": "reboot"}, "max_devices": 2})
    assert status == 422 and body["error"]["code"] == "too_many_devices"
    status, body = await api.call("POST", "/api/v1/tasks/bulk", "operator", json={"devices": {}, "task": {}})
    assert status == 422
    status, body = await api.call("GET", "/api/v1/tasks/bulk/nope", "viewer")
    assert status == 404


async def test_bulk_values_are_checked_against_each_devices_cached_type(api: ApiHarness) -> None:
    """A value given without a type goes out with each device's own type: a device whose cached
    type cannot hold it gets no task and is listed with the reason; the others get theirs."""
    name = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"
    typed = [await api.device(f"T{n}") for n in range(3)]
    unknown = [await api.device(f"U{n}") for n in range(2)]
    for device_id in typed:
        await api.services.repositories.parameters.set_values(
            device_id, [(name, "300", "xsd:unsignedInt")], api.services.clock())
    status, batch = await api.call("POST", "/api/v1/tasks/bulk", "operator", json={
        "devices": {}, "task": {"kind": "set_parameter_values", "values": [{"name": name, "value": "-5"}]},
        "connection_request": False,
    })
    assert status == 202, batch
    await api.server.app[API].bulk.wait(batch["batch_id"])
    done = await bulk_status(api, batch["batch_id"])
    assert done["state"] == "finished", done
    assert done["progress"] == {"created": 2, "woken": 0, "wake_failed": 0, "refused": 3}
    assert done["tasks"] == {"queued": 2}
    assert sorted(refusal["device_id"] for refusal in done["refusals"]) == sorted(typed)
    assert all(name in refusal["reason"] for refusal in done["refusals"])
    tasks = api.services.database.collection("tasks")
    assert sorted(await tasks.distinct("device_id", {"batch_id": batch["batch_id"]})) == sorted(unknown)
