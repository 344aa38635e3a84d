"""Tasks sent in real CWMP sessions by ``acs serve``: every kind, faults, broken sessions, expiry.

Tasks are queued straight into the server's database with the ACS's own ``TaskQueue`` (the
operator API is tested on its own); the device is a scripted CPE over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from cwmp import FaultStruct, TransferComplete
from schemas.tasks import TaskRequest
from tasks.notify import TaskNotifier
from tasks.queue import TaskQueue
from tasks.secretbox import SecretBox, load_or_create_key
from tasks.store.db import Database, connect
from tasks.store.tasks import TaskRepository
from tests.conftest import AcsServeFactory
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoServer, unique_db_name
from tests.support.processes import AcsProcess, wait_until

REQUEST: TypeAdapter[Any] = TypeAdapter(TaskRequest)


@dataclass
class Bench:
    acs: AcsProcess
    queue: TaskQueue
    database: Database

    async def add(self, device_id: str, **request: Any) -> str:
        task, _ = await self.queue.create(device_id, REQUEST.validate_python(request), "test")
        return str(task["_id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        found = await self.queue.get(task_id)
        assert found is not None
        return found

    async def wait_status(self, task_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        async def reached() -> bool:
            return (await self.task(task_id))["status"] == status

        await wait_until(reached, timeout=timeout)
        return await self.task(task_id)


@pytest.fixture
async def bench(
    acs_serve: AcsServeFactory, mongo_server: MongoServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Bench]:
    name = unique_db_name(request.node.name)
    data_dir = tmp_path / "acs"
    acs = await acs_serve(database=name, data_dir=data_dir, env={"ACS_SESSION_TIMEOUT": "2"})
    database = connect(mongo_server.uri_for(name))
    box = SecretBox(load_or_create_key(None, data_dir))  # the server's own key, from its data dir
    queue = TaskQueue(TaskRepository(database), box, TaskNotifier(), lambda: datetime.now(UTC), 3600)
    try:
        yield Bench(acs, queue, database)
    finally:
        await database.client.drop_database(name)
        await database.close()


async def bootstrapped(bench: Bench, serial: str) -> ScriptedCpe:
    cpe = ScriptedCpe(bench.acs.cwmp_url, serial=serial)
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    return cpe


async def test_every_kind_reaches_its_final_state(bench: Bench) -> None:
    cpe = await bootstrapped(bench, "KINDS")
    root = cpe.root
    ids = {
        "gpv": await bench.add(cpe.device_id, kind="get_parameter_values", names=[root + "DeviceInfo."]),
        "spv": await bench.add(
            cpe.device_id,
            kind="set_parameter_values",
            values=[{"name": root + "ManagementServer.PeriodicInformInterval", "value": 600}],
        ),
        "gpn": await bench.add(cpe.device_id, kind="get_parameter_names", path=root + "DeviceInfo.", next_level=True),
        "refresh": await bench.add(cpe.device_id, kind="refresh", path=root + "ManagementServer."),
        "add": await bench.add(
            cpe.device_id, kind="add_object", object=root + "X_Test.Rule.", values=[{"name": "Enable", "value": True}]
        ),
        "gpa": await bench.add(cpe.device_id, kind="get_parameter_attributes", names=[root + "DeviceInfo.UpTime"]),
        "spa": await bench.add(
            cpe.device_id,
            kind="set_parameter_attributes",
            attributes=[{"name": root + "DeviceInfo.UpTime", "notification": 2}],
        ),
        "rpc": await bench.add(cpe.device_id, kind="get_rpc_methods"),
        "inform": await bench.add(cpe.device_id, kind="schedule_inform", delay_seconds=30),
        "queued": await bench.add(cpe.device_id, kind="get_queued_transfers"),
        "all_queued": await bench.add(cpe.device_id, kind="get_all_queued_transfers"),
        "download": await bench.add(
            cpe.device_id,
            kind="download",
            file_type="1 Firmware Upgrade Image",
            url="http://127.0.0.1:9/fw.bin",
            file_size=1000,
        ),
    }
    exchange = await cpe.run_session(["6 CONNECTION REQUEST"])
    assert exchange.ended_with == 204

    for name in ("gpv", "spv", "gpn", "refresh", "add", "gpa", "spa", "rpc", "inform", "queued"):
        assert (await bench.task(ids[name]))["status"] == "done", name
    all_queued = await bench.task(ids["all_queued"])
    assert all_queued["status"] == "failed"
    assert all_queued["reason"] == "GetAllQueuedTransfers does not exist in CWMP 1.0, which this device speaks"
    spv = await bench.task(ids["spv"])
    assert spv["result"] == {"status": 0, "applied_after_reboot": False}
    assert cpe.params[root + "ManagementServer.PeriodicInformInterval"][0] == "600"
    assert cpe.parameter_key  # the ACS sent a ParameterKey naming a task
    add = await bench.task(ids["add"])
    assert add["result"]["instance_number"] == 1
    assert cpe.params[root + "X_Test.Rule.1.Enable"][0] == "true"
    values = {item["name"]: item["value"] for item in (await bench.task(ids["gpv"]))["result"]["values"]}
    assert values[root + "DeviceInfo.SoftwareVersion"] == "V1.0"
    # A Download answered with status 1 waits for TransferComplete with its CommandKey.
    download = await bench.task(ids["download"])
    assert download["status"] == "dispatched"
    complete = TransferComplete(command_key=download["command_key"], fault=FaultStruct(fault_code=0, fault_string=""))
    assert (await cpe.run_session(["7 TRANSFER COMPLETE"], cpe_requests=(complete,))).ended_with == 204
    assert (await bench.task(ids["download"]))["status"] == "done"

    cached = await bench.database.collection("parameters").find_one({"_id": cpe.device_id})
    assert cached is not None
    assert cached["p"]["InternetGatewayDevice"]["ManagementServer"]["PeriodicInformInterval"]["~v"] == "600"


async def test_tasks_are_sent_in_creation_order_one_at_a_time(bench: Bench) -> None:
    cpe = await bootstrapped(bench, "ORDER")
    names = [cpe.root + "DeviceInfo.HardwareVersion", cpe.root + "DeviceInfo.UpTime", cpe.root + "DeviceInfo."]
    for name in names:
        await bench.add(cpe.device_id, kind="get_parameter_values", names=[name])
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert [list(getattr(message, "names")) for message in exchange.received] == [[n] for n in names]  # noqa: B009


async def test_set_parameter_values_fault_keeps_per_parameter_detail(bench: Bench) -> None:
    cpe = await bootstrapped(bench, "FAULTY")
    task_id = await bench.add(
        cpe.device_id,
        kind="set_parameter_values",
        values=[
            # No type given: the request model cannot refuse it, the device's unsignedInt does.
            {"name": cpe.root + "ManagementServer.PeriodicInformInterval", "value": "often"},
            {"name": cpe.root + "DeviceInfo.SoftwareVersion", "value": "V9"},
        ],
    )
    await cpe.run_session(["2 PERIODIC"])
    task = await bench.task(task_id)
    assert task["status"] == "failed"
    assert task["fault"]["code"] == 9003
    detail = {item["parameter"]: item["code"] for item in task["fault"]["detail"]}
    assert detail == {
        cpe.root + "ManagementServer.PeriodicInformInterval": 9007,
        cpe.root + "DeviceInfo.SoftwareVersion": 9008,
    }


async def test_read_is_resent_after_the_device_vanished_mid_session(bench: Bench) -> None:
    cpe = await bootstrapped(bench, "VANISH-READ")
    task_id = await bench.add(cpe.device_id, kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    await cpe.run_session(["2 PERIODIC"], stop_after_requests=0)  # receives the GPV, never answers
    requeued = await bench.wait_status(task_id, "queued")
    assert "re-queued" in requeued["reason"]
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    done = await bench.task(task_id)
    assert done["status"] == "done"
    assert done["attempts"] == 2


async def test_a_device_that_dropped_mid_session_informs_again_at_once(bench: Bench) -> None:
    """Issue 12 item 8: the new Inform ends the old session (its read re-queued), no 503 lock-out."""
    cpe = await bootstrapped(bench, "DROP-REINFORM")
    task_id = await bench.add(cpe.device_id, kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    dropped = await cpe.run_session(["2 PERIODIC"], stop_after_requests=0)  # the GPV is never answered
    assert [m.kind for m in dropped.received] == ["GetParameterValues"]

    again = await cpe.run_session(["2 PERIODIC"])  # at once: well inside the old session's lease

    assert again.statuses[0] == 200 and again.ended_with == 204
    assert [m.kind for m in again.received] == ["GetParameterValues"]
    done = await bench.task(task_id)
    assert done["status"] == "done"
    assert done["attempts"] == 2
    old = await bench.database.collection("sessions").find_one({"device_id": cpe.device_id, "outcome": "superseded"})
    assert old is not None and not old["live"]


async def test_reboot_sent_before_a_cut_is_done_when_the_device_proves_it(bench: Bench) -> None:
    cpe = await bootstrapped(bench, "VANISH-REBOOT")
    task_id = await bench.add(cpe.device_id, kind="reboot")
    exchange = await cpe.run_session(["2 PERIODIC"], stop_after_requests=0)
    reboot = exchange.received[0]
    assert reboot.kind == "Reboot"
    await wait_until(lambda: _session_over(bench, cpe.device_id), timeout=15)
    assert (await bench.task(task_id))["status"] == "dispatched"  # not re-sent, not failed yet
    key = getattr(reboot, "command_key")  # noqa: B009
    await cpe.run_session(["1 BOOT", "M Reboot"], command_keys={"M Reboot": key})
    task = await bench.task(task_id)
    assert task["status"] == "done"
    assert task["result"]["rebooted_after_seconds"] >= 0


async def test_write_cut_before_the_answer_fails_unless_the_next_inform_proves_it(bench: Bench) -> None:
    cpe = await bootstrapped(bench, "VANISH-WRITE")
    name = cpe.root + "ManagementServer.PeriodicInformInterval"
    unproven = await bench.add(cpe.device_id, kind="set_parameter_values", values=[{"name": name, "value": 900}])
    await cpe.run_session(["2 PERIODIC"], stop_after_requests=0)
    await wait_until(lambda: _session_over(bench, cpe.device_id), timeout=15)
    await cpe.run_session(["2 PERIODIC"])  # ParameterKey unchanged: the write did not happen
    task = await bench.task(unproven)
    assert task["status"] == "failed"
    assert "did not confirm" in task["reason"]

    proven = await bench.add(cpe.device_id, kind="set_parameter_values", values=[{"name": name, "value": 1200}])
    await cpe.run_session(["2 PERIODIC"], stop_after_requests=0, apply_unanswered=True)
    await wait_until(lambda: _session_over(bench, cpe.device_id), timeout=15)
    assert (await bench.task(proven))["status"] == "dispatched"
    await cpe.run_session(["2 PERIODIC"])  # its Inform carries the ParameterKey the write set
    task = await bench.task(proven)
    assert task["status"] == "done"
    assert task["result"] == {"confirmed_by": "ParameterKey"}


async def _session_over(bench: Bench, device_id: str) -> bool:
    # Over means settled too: the record stops being live first, its tasks are settled, and only
    # then is the device's lease released (a new Inform before that gets 503).
    database = bench.database
    live = await database.collection("sessions").count_documents({"device_id": device_id, "live": True})
    leased = await database.collection("session_locks").count_documents({"_id": device_id})
    return live == 0 and leased == 0


async def test_expiry_is_enforced_by_the_scheduled_job(bench: Bench) -> None:
    task_id = await bench.add("NEVER-SEEN-DEVICE", kind="reboot", expires_in=1)
    expired = await bench.wait_status(task_id, "expired", timeout=30)
    assert "expired before the device was reached" in expired["reason"]
