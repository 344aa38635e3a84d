"""Console, issue 16 item 3, over real HTTP and the test's database: bulk actions on a selection, a
search result or an incident's members (reboot, refresh, set values, firmware upgrade, tag) with a
preview of the count, confirmation, progress and cancel."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from acs.api.context import API
from tasks.store.files import NewFile
from tests.console.conftest import ConsoleHarness, LoggedIn
from tests.console.test_incidents import _incident
from tests.support.processes import wait_until


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str]:
    async with session.http.get(console.url(path)) as response:
        return response.status, await response.text()


async def _post(session: LoggedIn, console: ConsoleHarness, data: list[tuple[str, str]],
                path: str = "/bulk") -> tuple[int, str]:
    async with session.http.post(console.url(path), data=[("csrf", session.csrf), *data],
                                 allow_redirects=False) as response:
        return response.status, response.headers.get("Location", "") or await response.text()


async def _tasks(console: ConsoleHarness, batch_id: str) -> list[dict[str, Any]]:
    cursor = console.services.database.collection("tasks").find({"batch_id": batch_id})
    return [task async for task in cursor]


async def _finished(console: ConsoleHarness, batch_id: str) -> dict[str, Any]:
    await console.server.app[API].bulk.wait(batch_id)
    batches = console.services.repositories.batches

    async def done() -> dict[str, Any] | None:
        batch = await batches.get(batch_id)
        return batch if batch is not None and batch["state"] != "running" else None

    return await wait_until(done, timeout=30, message=f"bulk {batch_id} still running")


async def _tags(console: ConsoleHarness, device_id: str) -> list[str]:
    device = await console.services.repositories.devices.get(device_id)
    assert device is not None
    return list(device.get("tags") or [])


def _batch_of(location: str) -> str:
    match = re.fullmatch(r"/bulk/([0-9a-f]{24})", location)
    assert match is not None, location
    return match.group(1)


async def test_preview_counts_each_source_and_needs_confirmation(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    viewer = await console.login("viewer")
    ids = [await console.device(f"P{n}", olt_id="OLT-P" if n < 4 else "OLT-Q") for n in range(6)]
    _, page = await _get(operator, console, "/bulk?olt=OLT-P")
    assert "4 devices will get this action." in page and 'value="OLT-P"' in page
    _, page = await _get(operator, console, f"/bulk?device={ids[0]}&device={ids[5]}")
    assert "2 devices will get this action." in page
    number = await _incident(console, ids[1:4])
    _, page = await _get(operator, console, f"/bulk?incident={number}")
    assert "3 devices will get this action." in page
    assert (await _get(operator, console, "/bulk"))[0] == 422, "no source: not the whole fleet by accident"
    assert (await _get(viewer, console, "/bulk?olt=OLT-P"))[0] == 403
    status, _ = await _post(operator, console, [("olt", "OLT-P"), ("action", "reboot")])
    assert status == 422, "the count must be confirmed"
    assert await console.services.database.collection("tasks").count_documents({}) == 0
    status, _ = await _post(viewer, console, [("olt", "OLT-P"), ("action", "reboot"), ("confirm", "yes")])
    assert status == 403


async def test_reboot_on_a_search_result_progress_and_cancel(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    for n in range(5):
        await console.device(f"R{n}", olt_id="OLT-R", online=n != 4)
    await console.device("R-OTHER", olt_id="OLT-X")
    status, location = await _post(operator, console, [("olt", "OLT-R"), ("online", "yes"), ("action", "reboot"),
                                                       ("confirm", "yes")])
    assert status == 303
    batch_id = _batch_of(location)
    batch = await _finished(console, batch_id)
    tasks = await _tasks(console, batch_id)
    assert batch["matched"] == 4 and len(tasks) == 4 and {task["kind"] for task in tasks} == {"reboot"}
    _, page = await _get(operator, console, location)
    assert "4 tasks queued" in page and "queued: 4" in page and "0 of 4 finished" in page
    async with operator.http.get(console.url(location + ".json")) as response:
        reply = await response.json()
    assert reply["state"] == "finished" and 'id="bulk-status"' in reply["html"]
    # Cancel: every task still queued is cancelled.
    status, _ = await _post(operator, console, [], path=f"/bulk/{batch_id}/cancel")
    assert status == 303
    assert {task["status"] for task in await _tasks(console, batch_id)} == {"cancelled"}
    _, page = await _get(operator, console, location)
    assert "cancelled: 4" in page and 'id="bulk-cancel"' not in page
    audit = console.services.database.collection("audit")
    assert await audit.count_documents({"batch_id": batch_id, "token_name": "user:u-operator"}) == 2


async def test_refresh_and_set_on_a_selection(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    ids = [await console.device(f"S{n}") for n in range(3)]
    selection = [("device", ids[0]), ("device", ids[2])]
    _, location = await _post(operator, console, [*selection, ("action", "refresh"), ("path", "Device.WiFi."),
                                                  ("confirm", "yes")])
    await _finished(console, _batch_of(location))
    tasks = await _tasks(console, _batch_of(location))
    assert sorted(task["device_id"] for task in tasks) == sorted([ids[0], ids[2]])
    assert {task["params"]["path"] for task in tasks} == {"Device.WiFi."}
    _, location = await _post(operator, console, [*selection, ("action", "set"), ("confirm", "yes"),
                                                  ("name", "Device.ManagementServer.PeriodicInformInterval"),
                                                  ("value", "600"), ("type", "xsd:unsignedInt")])
    await _finished(console, _batch_of(location))
    tasks = await _tasks(console, _batch_of(location))
    assert len(tasks) == 2 and tasks[0]["params"]["values"][0]["value"] in ("600", 600)
    status, _ = await _post(operator, console, [*selection, ("action", "set"), ("confirm", "yes"),
                                                   ("name", "Device.X"), ("value", "1"), ("type", "xsd:boolean?")])
    assert status == 422


async def test_tag_an_incidents_members_then_untag(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    ids = [await console.device(f"T{n}") for n in range(4)]
    number = await _incident(console, ids[:3])
    _, location = await _post(operator, console, [("incident", str(number)), ("action", "tag"),
                                                  ("new_tag", "ticket-4711"), ("confirm", "yes")])
    batch = await _finished(console, _batch_of(location))
    assert batch["state"] == "finished" and batch["progress"]["created"] == 3
    tagged = [device_id for device_id in ids if "ticket-4711" in await _tags(console, device_id)]
    assert tagged == ids[:3]
    _, page = await _get(operator, console, location)
    assert "3 of 3 devices done." in page
    status, _ = await _post(operator, console, [("incident", str(number)), ("action", "tag"), ("new_tag", "bad tag!"),
                                                ("confirm", "yes")])
    assert status == 422
    _, location = await _post(operator, console, [("tag", "ticket-4711"), ("action", "untag"),
                                                  ("new_tag", "ticket-4711"), ("confirm", "yes")])
    await _finished(console, _batch_of(location))
    assert [device_id for device_id in ids if "ticket-4711" in await _tags(console, device_id)] == []


async def test_firmware_upgrade_downloads_the_image_on_its_model_only(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    ours = [await console.device(f"FW{n}", olt_id="OLT-F") for n in range(2)]
    other = "00E0FC-OTHER-FW9"
    await console.services.repositories.devices.record_inform(
        other, {"oui": "00E0FC", "product_class": "OTHER", "serial_number": "FW9"},
        {"olt_id": "OLT-F", "presence": "online"}, console.services.clock())

    async def content() -> AsyncIterator[bytes]:
        yield b"firmware image bytes"

    services = console.services
    stored = await services.repositories.files.put(
        content(), NewFile(name="hg8245h-v2.bin", file_type="1 Firmware Upgrade Image",
                           content_type="application/octet-stream", uploaded_by="test"), services.clock(), 1 << 20)
    image = await services.repositories.firmware.add(stored, "V2", ["HG8245H"], "Huawei", "test", services.clock())
    _, page = await _get(operator, console, "/bulk?olt=OLT-F")
    assert "hg8245h-v2.bin V2 (HG8245H)" in page
    status, location = await _post(operator, console, [("olt", "OLT-F"), ("action", "firmware"),
                                                       ("image", image["_id"]), ("confirm", "yes")])
    assert status == 303, location
    await _finished(console, _batch_of(location))
    tasks = await _tasks(console, _batch_of(location))
    assert sorted(task["device_id"] for task in tasks) == sorted(ours), "only the image's model"
    assert {task["params"]["file_id"] for task in tasks} == {image["file_id"]}
    assert {task["params"]["file_type"] for task in tasks} == {"1 Firmware Upgrade Image"}
    status, _ = await _post(operator, console, [("olt", "OLT-F"), ("action", "firmware"), ("image", image["_id"]),
                                                ("image_model", "OTHER"), ("confirm", "yes")])
    assert status == 422, "an image is not sent to another model"


async def test_reprovision_marks_each_device_for_its_next_session(console: ConsoleHarness) -> None:
    operator = await console.login("operator")
    ids = [await console.device(f"RP{n}", olt_id="OLT-RP") for n in range(3)]
    await console.device("RP-OTHER", olt_id="OLT-NOT")
    _, page = await _get(operator, console, "/bulk?olt=OLT-RP")
    assert 'id="bulk-reprovision"' in page
    status, location = await _post(operator, console, [("olt", "OLT-RP"), ("action", "reprovision"),
                                                       ("confirm", "yes")])
    assert status == 303
    batch = await _finished(console, _batch_of(location))
    assert batch["kind"] == "reprovision" and batch["progress"]["created"] == 3
    tasks = console.services.database.collection("tasks")
    marked = sorted([task["device_id"] async for task in tasks.find({"kind": "reprovision", "status": "queued"})])
    assert marked == sorted(ids)
    _, page = await _get(operator, console, location)
    assert "3 of 3 devices done." in page and "Re-provision" in page
