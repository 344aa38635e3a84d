"""History merges sessions, tasks and operator actions newest first; every API write is audited."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from tests.acs.api.conftest import ApiHarness


async def test_history_merges_in_time_order_across_pages(api: ApiHarness) -> None:
    device_id = await api.device("H1")
    base = api.services.clock() - timedelta(hours=1)
    sessions = api.services.database.collection("sessions")
    for n in range(4):
        started = base + timedelta(minutes=10 * n)
        await sessions.insert_one({"_id": f"s{n}", "device_id": device_id, "started_at": started,
                                   "events": ["2 PERIODIC"], "rpcs": [{"name": "Inform"}], "live": False,
                                   "outcome": "ok"})
    path = f"/api/v1/devices/{quote(device_id, safe='')}"
    for _ in range(3):
        status, _ = await api.call("POST", path + "/tasks", "operator", json={"kind": "reboot"})
        assert status == 202
    status, _ = await api.call("POST", path + "/tags", "operator", json={"tags": ["x"]})
    assert status == 200
    items: list[dict[str, object]] = []
    cursor = ""
    while True:
        status, page = await api.call("GET", path + f"/history?limit=3&cursor={cursor}", "viewer")
        assert status == 200, page
        items += page["items"]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    times = [entry["at"] for entry in items]
    assert times == sorted(times, reverse=True)
    kinds = [entry["type"] for entry in items]
    assert kinds.count("session") == 4 and kinds.count("task") == 3 and kinds.count("operator") == 4
    assert len({(entry["type"], entry["id"]) for entry in items}) == len(items)
    assert kinds[-4:] == ["session"] * 4  # the sessions are an hour older than the rest
    operator = [entry for entry in items if entry["type"] == "operator"]
    assert all("test-operator" in str(entry["summary"]) for entry in operator)


async def test_writes_are_audited_with_who_what_and_outcome(api: ApiHarness) -> None:
    device_id = await api.device("H2")
    path = f"/api/v1/devices/{quote(device_id, safe='')}/tasks"
    status, task = await api.call("POST", path, "operator", json={"kind": "reboot"})
    await api.call("DELETE", f"/api/v1/tasks/{task['id']}", "operator")
    await api.call("DELETE", f"/api/v1/tasks/{task['id']}", "admin")  # 409
    await api.call("POST", path, "viewer", json={"kind": "reboot"})  # 403: refused before it is a write
    await api.call("GET", path, "viewer")  # reads are not audited
    entries = [entry async for entry in api.services.database.collection("audit").find({}).sort("at", 1)]
    assert [(e["token_name"], e["method"], e["status"]) for e in entries] == [
        ("test-operator", "POST", 202),
        ("test-operator", "DELETE", 200),
        ("test-admin", "DELETE", 409),
    ]
    first = entries[0]
    assert first["device_id"] == device_id and first["task_ids"] == [task["id"]] and first["role"] == "operator"
    assert first["remote"] == "127.0.0.1" and first["route"] == "/api/v1/devices/{device_id}/tasks"
    assert entries[1]["device_id"] == device_id  # found through the task
    status, page = await api.call("GET", "/api/v1/audit", "admin")
    assert status == 200 and len(page["items"]) == 3
