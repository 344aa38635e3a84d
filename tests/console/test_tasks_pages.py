"""Console, issue 16 item 4, over real HTTP and the test's database: the task queue (filters by device,
kind and who; cancel, retry) and the faults page (failed tasks grouped by fault code and message, with
devices, first and last seen; retry and clear a group)."""

from __future__ import annotations

import re
from datetime import timedelta

from schemas.tasks import RebootTask, RefreshTask, TaskStatus
from tasks.faults import group, group_key
from tests.console.conftest import ConsoleHarness, LoggedIn


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str]:
    async with session.http.get(console.url(path)) as response:
        return response.status, await response.text()


async def _post(session: LoggedIn, console: ConsoleHarness, path: str, data: dict[str, str] | None = None) -> int:
    async with session.http.post(console.url(path), data={"csrf": session.csrf, **(data or {})},
                                 allow_redirects=False) as response:
        return response.status


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-task="([^"]+)">', page)


async def _fail(console: ConsoleHarness, task_id: str, code: int | None, text: str, ago: float = 0) -> None:
    fields: dict[str, object] = {"finished_at": console.services.clock() - timedelta(minutes=ago)}
    if code is not None:
        fields["fault"] = {"code": code, "string": text, "detail": []}
    else:
        fields["reason"] = text
    done = await console.services.repositories.tasks.finish(task_id, ["queued"], TaskStatus.FAILED, fields)
    assert done is not None


def test_fault_groups_by_code_and_message_and_clears() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    tasks = [
        {"_id": "1", "device_id": "A", "kind": "reboot", "fault": {"code": 9002, "string": "Internal error"},
         "finished_at": now - timedelta(hours=3)},
        {"_id": "2", "device_id": "A", "kind": "reboot", "fault": {"code": 9002, "string": "Internal error"},
         "finished_at": now - timedelta(hours=1)},
        {"_id": "3", "device_id": "B", "kind": "refresh", "fault": {"code": 9002, "string": "Internal error"},
         "finished_at": now - timedelta(hours=2)},
        {"_id": "4", "device_id": "C", "kind": "reboot", "reason": "no answer", "finished_at": now},
    ]
    groups = group(tasks, {})
    assert [(g.code, g.message, g.failures, g.device_count) for g in groups] == [
        ("", "no answer", 1, 1), ("9002", "Internal error", 3, 2)]
    internal = groups[1]
    assert internal.first_seen == now - timedelta(hours=3) and internal.last_seen == now - timedelta(hours=1)
    assert internal.devices == {"A": "2", "B": "3"}, "each device's newest failed task"
    cleared = {group_key("9002", "Internal error"): now - timedelta(minutes=90)}
    assert [(g.code, g.failures) for g in group(tasks, cleared)] == [("", 1), ("9002", 1)]


async def test_queue_filters_cancel_and_retry(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    viewer = await console.login("viewer")
    queue = console.services.queue
    one, two = await console.device("Q1"), await console.device("Q2")
    reboot, _ = await queue.create(one, RebootTask.model_validate({"kind": "reboot"}), "user:olga")
    refresh, _ = await queue.create(two, RefreshTask.model_validate({"kind": "refresh", "path": "Device."}), "api-x")
    finished, _ = await queue.create(two, RebootTask.model_validate({"kind": "reboot"}), "user:olga")
    await _fail(console, finished["_id"], 9002, "Internal error")
    _, page = await _get(viewer, console, "/tasks")
    assert set(_rows(page)) == {reboot["_id"], refresh["_id"]}, "queued and running tasks by default"
    assert 'class="small danger task-cancel"' not in page, "a viewer cannot cancel"
    assert set(_rows((await _get(viewer, console, f"/tasks?device={two}"))[1])) == {refresh["_id"]}
    assert set(_rows((await _get(viewer, console, "/tasks?kind=reboot"))[1])) == {reboot["_id"]}
    assert set(_rows((await _get(viewer, console, "/tasks?who=api-x"))[1])) == {refresh["_id"]}
    assert set(_rows((await _get(viewer, console, "/tasks?status=failed"))[1])) == {finished["_id"]}
    assert (await _get(viewer, console, "/tasks?status=bogus"))[0] == 400

    assert await _post(viewer, console, f"/tasks/{reboot['_id']}/cancel") == 403
    assert await _post(operator, console, f"/tasks/{reboot['_id']}/cancel") == 303
    cancelled = await queue.get(reboot["_id"])
    assert cancelled is not None and cancelled["status"] == "cancelled"
    assert await _post(operator, console, f"/tasks/{reboot['_id']}/cancel") == 409, "only a queued task"
    assert await _post(operator, console, f"/tasks/{refresh['_id']}/retry") == 409, "still open"
    assert await _post(operator, console, f"/tasks/{finished['_id']}/retry") == 303
    _, page = await _get(viewer, console, "/tasks?kind=reboot")
    assert len(_rows(page)) == 1 and _rows(page)[0] not in (reboot["_id"], finished["_id"]), "the retry's copy"
    audit = console.services.database.collection("audit")
    assert await audit.count_documents({"token_name": "user:u-operator", "task_ids": reboot["_id"]}) == 1


async def test_faults_page_groups_retries_and_clears(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    queue = console.services.queue
    devices = [await console.device(f"F{n}") for n in range(3)]
    failed = []
    for n, device_id in enumerate(devices):
        task, _ = await queue.create(device_id, RebootTask.model_validate({"kind": "reboot"}), "user:olga")
        await _fail(console, task["_id"], 9002, "Internal error", ago=10 - n)
        failed.append(task["_id"])
    other, _ = await queue.create(devices[0], RebootTask.model_validate({"kind": "reboot"}), "user:olga")
    await _fail(console, other["_id"], None, "the device did not confirm the reboot")
    _, page = await _get(operator, console, "/faults")
    rows = re.findall(r'<tr data-group="(\w+)">\s*<td>([^<]*)</td>\s*<td><a[^>]*>([^<]*)</a></td>\s*<td>[^<]*</td>\s*'
                      r'<td>(\d+)</td><td>(\d+)</td>', page)
    assert [(code, message, failures, count) for _, code, message, failures, count in rows] == [
        ("—", "the device did not confirm the reboot", "1", "1"), ("9002", "Internal error", "3", "3")]
    key = rows[1][0]
    _, page = await _get(operator, console, f"/faults?group={key}")
    assert all(device_id in page for device_id in devices)

    assert await _post(operator, console, f"/faults/{key}/retry") == 303
    for task_id in failed:
        copies = await console.services.database.collection("tasks").count_documents({"retry_of": task_id})
        assert copies == 1
    _, page = await _get(operator, console, "/faults")
    assert "Internal error" not in page, "a retried group is cleared until it fails again"
    assert await _post(operator, console, f"/faults/{rows[0][0]}/clear") == 303
    _, page = await _get(operator, console, "/faults")
    assert 'id="no-faults"' in page
    # A new failure of a cleared group brings it back.
    again, _ = await queue.create(devices[1], RebootTask.model_validate({"kind": "reboot"}), "user:olga")
    await _fail(console, again["_id"], 9002, "Internal error")
    _, page = await _get(operator, console, "/faults")
    assert "Internal error" in page
    assert await _post(operator, console, "/faults/nope/clear") == 404
