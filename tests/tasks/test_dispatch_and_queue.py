"""The queue and the dispatcher against the real database, driven with plain calls (no HTTP).

A "session" here is a SessionContext and the SessionTasks value the dispatcher hands back; the
device's answers are built by hand, as tasks/rpc.py expects them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import TypeAdapter
from pymongo.asynchronous.database import AsyncDatabase

from cwmp import (
    CwmpVersion,
    DeviceIdStruct,
    EventStruct,
    Fault,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethodsResponse,
    Inform,
    ParameterInfo,
    ParameterValue,
    RebootResponse,
)
from schemas.tasks import TaskRequest
from tasks.dispatch import Dispatcher, OutgoingRequest, SessionContext, SessionTasks
from tasks.notify import TaskNotifier
from tasks.queue import TaskError, TaskQueue
from tasks.records import TaskRecord
from tasks.rpc import REFRESH_CHUNK
from tasks.secretbox import SecretBox
from tasks.store.db import Database
from tasks.store.parameters import ParameterRepository
from tasks.store.tasks import TaskRepository
from tests.support.mongo import MongoDocument

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DEVICE = "00E0FC-HG8245H-DISPATCH1"
ROOT = "InternetGatewayDevice."
REQUEST: TypeAdapter[Any] = TypeAdapter(TaskRequest)


@dataclass
class Bench:
    queue: TaskQueue
    dispatcher: Dispatcher
    tasks: TaskRepository
    parameters: ParameterRepository
    clock: list[datetime]
    db: AsyncDatabase[MongoDocument]

    async def add(self, **request: Any) -> str:
        task, created = await self.queue.create(DEVICE, REQUEST.validate_python(request), "test")
        assert created
        return str(task["_id"])

    async def status(self, task_id: str) -> dict[str, Any]:
        found = await self.tasks.get(task_id)
        assert found is not None
        return found

    def session(self, name: str) -> SessionContext:
        return SessionContext(DEVICE, name, CwmpVersion.V1_0, self.clock[0] + timedelta(minutes=5))


@pytest.fixture
async def bench(mongo_db: AsyncDatabase[MongoDocument]) -> Bench:
    database = Database(client=mongo_db.client, db=mongo_db)
    tasks, parameters = TaskRepository(database), ParameterRepository(database)
    await tasks.ensure_indexes()
    clock = [T0]
    now: Callable[[], datetime] = lambda: clock[0]  # noqa: E731
    box, notifier = SecretBox(Fernet.generate_key()), TaskNotifier()
    queue = TaskQueue(tasks, box, notifier, now, default_expiry=3600)
    dispatcher = Dispatcher(tasks, parameters, box, notifier, now, max_attempts=2)
    return Bench(queue, dispatcher, tasks, parameters, clock, mongo_db)


def _inform(*events: tuple[str, str]) -> Inform:
    return Inform(
        device_id=DeviceIdStruct(manufacturer="T", oui="00E0FC", product_class="HG8245H", serial_number="DISPATCH1"),
        events=tuple(EventStruct(event_code=code, command_key=key) for code, key in events),
        max_envelopes=1,
        current_time=None,
        retry_count=0,
        parameters=(),
    )


async def _next(bench: Bench, ctx: SessionContext, known: SessionTasks) -> tuple[OutgoingRequest, SessionTasks]:
    outgoing, known = await bench.dispatcher.next_request(ctx, known)
    assert outgoing is not None
    return outgoing, known


async def test_tasks_go_out_oldest_first_and_the_answer_needs_no_read(bench: Bench) -> None:
    first = await bench.add(kind="get_parameter_values", names=[ROOT + "DeviceInfo.UpTime"])
    second = await bench.add(kind="reboot")
    ctx = bench.session("S1")
    outgoing, known = await _next(bench, ctx, SessionTasks())
    assert outgoing.task_id == first and outgoing.request_id == f"{first}:0" and not outgoing.ends_session
    assert known.sent is not None and known.sent["_id"] == first and known.sent["phase"] == "sent"
    answer = GetParameterValuesResponse(parameters=(ParameterValue(name=ROOT + "DeviceInfo.UpTime", value="7"),))
    known = await bench.dispatcher.on_response(ctx, outgoing.request_id, outgoing.message, answer, known)
    assert known == SessionTasks()
    done = await bench.status(first)
    assert done["status"] == "done" and done["phase"] is None and done["result"]["values"][0]["value"] == "7"
    assert (await bench.parameters.get(DEVICE))[ROOT + "DeviceInfo.UpTime"].value == "7"
    outgoing, known = await _next(bench, ctx, known)
    assert outgoing.task_id == second and outgoing.ends_session  # TR-069 3.7.2.4: the ACS ends it
    known = await bench.dispatcher.on_response(ctx, outgoing.request_id, outgoing.message, RebootResponse(), known)
    waiting = await bench.status(second)
    assert (waiting["status"], waiting["phase"], waiting["session_id"]) == ("dispatched", "await_inform", None)
    assert await bench.dispatcher.next_request(ctx, known) == (None, SessionTasks())
    # The next Inform proves the reboot: M Reboot with the task's CommandKey.
    bench.clock[0] = T0 + timedelta(seconds=40)
    assert not await bench.dispatcher.on_inform(DEVICE, _inform(("1 BOOT", ""), ("M Reboot", second)), None)
    rebooted = await bench.status(second)
    assert rebooted["status"] == "done" and rebooted["result"]["rebooted_after_seconds"] == 40.0


async def test_a_task_is_claimed_by_one_session_only(bench: Bench) -> None:
    task_id = await bench.add(kind="get_rpc_methods")
    outgoing, _ = await _next(bench, bench.session("S1"), SessionTasks())
    assert outgoing.task_id == task_id
    assert await bench.dispatcher.next_request(bench.session("S2"), SessionTasks()) == (None, SessionTasks())


async def test_refresh_is_chunked_after_9004_over_one_session(bench: Bench) -> None:
    path = ROOT + "DeviceInfo."
    leaves = [f"{path}P{index}" for index in range(REFRESH_CHUNK + 5)]
    task_id = await bench.add(kind="refresh", path=path)
    ctx = bench.session("S1")
    outgoing, known = await _next(bench, ctx, SessionTasks())
    names = GetParameterNamesResponse(parameters=tuple(ParameterInfo(name=n, writable=False) for n in [path, *leaves]))
    known = await bench.dispatcher.on_response(ctx, outgoing.request_id, outgoing.message, names, known)
    assert known.step is not None and known.step["phase"] == "step"
    outgoing, known = await _next(bench, ctx, known)
    assert outgoing.message == GetParameterValues(names=(path,)) and outgoing.request_id == f"{task_id}:1"
    refused = Fault(fault_code=9004, fault_string="Resources exceeded")
    known = await bench.dispatcher.on_fault(ctx, outgoing.request_id, outgoing.message, refused, known)
    chunks = []
    while known.step is not None:
        outgoing, known = await _next(bench, ctx, known)
        assert isinstance(outgoing.message, GetParameterValues)
        chunks.append(len(outgoing.message.names))
        answer = GetParameterValuesResponse(
            parameters=tuple(ParameterValue(name=name, value="x") for name in outgoing.message.names)
        )
        known = await bench.dispatcher.on_response(ctx, outgoing.request_id, outgoing.message, answer, known)
    assert chunks == [REFRESH_CHUNK, 5]
    done = await bench.status(task_id)
    assert done["status"] == "done" and done["result"] == {"names": len(leaves) + 1, "values": len(leaves)}
    cached = await bench.parameters.get(DEVICE, path)
    assert len([name for name, parameter in cached.items() if parameter.value == "x"]) == len(leaves)


async def test_a_broken_session_requeues_a_read_and_leaves_a_write_to_the_parameter_key(bench: Bench) -> None:
    read = await bench.add(kind="get_rpc_methods")
    write = await bench.add(kind="set_parameter_values", values=[{"name": ROOT + "X", "value": "1"}])
    ctx = bench.session("S1")
    outgoing, known = await _next(bench, ctx, SessionTasks())
    assert outgoing.task_id == read
    await bench.dispatcher.on_session_broken("S1", "the device stopped answering")
    requeued = await bench.status(read)
    assert requeued["status"] == "queued" and requeued["phase"] is None and "re-queued" in requeued["reason"]

    ctx = bench.session("S2")
    outgoing, known = await _next(bench, ctx, SessionTasks())
    assert outgoing.task_id == read and (await bench.status(read))["attempts"] == 2
    known = await bench.dispatcher.on_response(
        ctx, outgoing.request_id, outgoing.message, GetRPCMethodsResponse(methods=("Inform",)), known
    )
    assert (await bench.status(read))["status"] == "done"
    outgoing, known = await _next(bench, ctx, known)
    assert outgoing.task_id == write
    await bench.dispatcher.on_session_broken("S2", "the device stopped answering")
    unconfirmed = await bench.status(write)
    assert (unconfirmed["phase"], unconfirmed["session_id"]) == ("unconfirmed", None)
    # TR-069 A.3.2.1: the ParameterKey of the next Inform is the task's key only if it was applied.
    await bench.dispatcher.on_inform(DEVICE, _inform(("2 PERIODIC", "")), write)
    confirmed = await bench.status(write)
    assert confirmed["status"] == "done" and confirmed["result"] == {"confirmed_by": "ParameterKey"}


async def test_a_read_gives_up_after_max_attempts(bench: Bench) -> None:
    read = await bench.add(kind="get_rpc_methods")
    for session in ["S1", "S2"]:
        outgoing, _ = await _next(bench, bench.session(session), SessionTasks())
        assert outgoing.task_id == read
        await bench.dispatcher.on_session_broken(session, "cut")
    failed = await bench.status(read)
    assert failed["status"] == "failed" and failed["reason"] == "cut; gave up after 2 attempts"


async def test_queue_cancel_retry_and_expiry(bench: Bench) -> None:
    task_id = await bench.add(kind="reboot", expires_in=60)
    cancelled = await bench.queue.cancel(task_id, "olga")
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "cancelled by olga"
    with pytest.raises(TaskError) as refused:
        await bench.queue.cancel(task_id, "olga")
    assert refused.value.code == "conflict"
    copy = await bench.queue.retry(task_id, "olga")
    assert copy["status"] == "queued" and copy["retry_of"] == task_id and copy["command_key"] == copy["_id"]
    with pytest.raises(TaskError):
        await bench.queue.retry(copy["_id"], "olga")  # still open
    bench.clock[0] = T0 + timedelta(seconds=61)
    assert await bench.queue.expire_due() == 1
    expired = await bench.status(copy["_id"])
    assert expired["status"] == "expired" and expired["reason"] == "expired before the device was reached"
    assert await bench.queue.expire_due() == 0


async def test_expiry_with_a_budget_stops_when_it_is_spent_and_the_next_call_goes_on(bench: Bench) -> None:
    """The expiry job's run is bounded (5% of its interval): each expiry runs the final hooks (a
    health read stored, several commands), so a backlog after a long stop drains over runs."""
    tasks = [await bench.add(kind="reboot", expires_in=60) for _ in range(6)]
    bench.clock[0] = T0 + timedelta(seconds=61)
    ended: list[str] = []

    async def slow_hook(task: TaskRecord) -> None:
        ended.append(task["_id"])
        await asyncio.sleep(0.05)

    bench.queue.final_hooks.append(slow_hook)
    first = await bench.queue.expire_due(budget_seconds=0.08)
    assert 1 <= first < len(tasks), "stopped once the budget was spent, after one task at least"
    runs = [first]
    while sum(runs) < len(tasks):
        runs.append(await bench.queue.expire_due(budget_seconds=0.0))
        assert runs[-1] >= 1, runs
    assert sorted(ended) == sorted(tasks) and await bench.queue.expire_due(budget_seconds=0.0) == 0


async def test_idempotency_key_gives_back_the_first_task(bench: Bench) -> None:
    request = REQUEST.validate_python({"kind": "reboot", "idempotency_key": "k-1"})
    first, created = await bench.queue.create(DEVICE, request, "test")
    again, created_again = await bench.queue.create(DEVICE, request, "test")
    assert created and not created_again and again["_id"] == first["_id"]
    other, created_other = await bench.queue.create(DEVICE, request, "someone-else")
    assert created_other and other["_id"] != first["_id"]


async def test_a_task_past_its_expiry_is_expired_at_the_claim_not_sent(bench: Bench) -> None:
    stale = await bench.add(kind="reboot", expires_in=1)
    fresh = await bench.add(kind="get_rpc_methods")
    bench.clock[0] = T0 + timedelta(seconds=2)
    outgoing, _ = await _next(bench, bench.session("S1"), SessionTasks())
    assert outgoing.task_id == fresh
    assert (await bench.status(stale))["status"] == "expired"


async def test_every_stored_task_is_a_task_record(bench: Bench, mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """Whatever the queue and the dispatcher write is declared in TaskRecord (a new field must be
    added there, where mypy checks its uses), and the keys it calls required are always there."""
    read = await bench.add(kind="get_parameter_values", names=[ROOT + "DeviceInfo.UpTime"])
    await bench.add(kind="refresh", path=ROOT + "DeviceInfo.")
    await bench.add(kind="reboot")
    ctx = bench.session("S1")
    outgoing, known = await _next(bench, ctx, SessionTasks())
    answer = GetParameterValuesResponse(parameters=(ParameterValue(name=ROOT + "DeviceInfo.UpTime", value="7"),))
    known = await bench.dispatcher.on_response(ctx, outgoing.request_id, outgoing.message, answer, known)
    outgoing, known = await _next(bench, ctx, known)  # the refresh: a step follows
    names = GetParameterNamesResponse(parameters=(ParameterInfo(name=ROOT + "DeviceInfo.P", writable=False),))
    known = await bench.dispatcher.on_response(ctx, outgoing.request_id, outgoing.message, names, known)
    assert known.step is not None and known.step["kind"] == "refresh"
    # The refresh cut between its steps fails (it used to raise IllegalTaskMove: a read in phase
    # "step" was re-queued, which the lifecycle forbids, and the broken session stayed unsettled).
    await bench.dispatcher.on_session_broken("S1", "the device stopped answering")
    cut = await bench.status(known.step["_id"])
    assert cut["status"] == "failed" and "before the task's next step was sent" in cut["reason"]
    await bench.queue.retry(read, "test")
    stored = [task async for task in mongo_db["tasks"].find({})]
    assert len(stored) == 4 and {task["status"] for task in stored} >= {"done", "failed", "queued"}
    declared, required = set(TaskRecord.__annotations__), set(TaskRecord.__required_keys__)
    for task in stored:
        assert set(task) <= declared, set(task) - declared
        assert required <= set(task), required - set(task)


async def test_a_devices_open_tasks_are_its_queued_ones_and_those_waiting_for_an_inform(bench: Bench) -> None:
    """What a session reads at its Inform (``TaskRepository.open_for_device``): queued tasks oldest
    first, and dispatched ones no session holds (waiting for proof); neither a task held by a
    session, nor a final one, nor another device's."""
    older = await bench.add(kind="get_parameter_values", names=[ROOT + "DeviceInfo."])
    bench.clock[0] += timedelta(seconds=1)
    held = await bench.add(kind="reboot")
    bench.clock[0] += timedelta(seconds=1)
    waiting = await bench.add(kind="set_parameter_values", values=[{"name": ROOT + "X", "value": "1"}])
    bench.clock[0] += timedelta(seconds=1)
    newer = await bench.add(kind="get_parameter_values", names=[ROOT + "ManagementServer."])
    cancelled = await bench.add(kind="get_parameter_values", names=[ROOT + "LANDevice."])
    await bench.queue.cancel(cancelled, "test")
    db = bench.db
    await db.tasks.update_one({"_id": held}, {"$set": {"status": "dispatched", "session_id": "S1"}})
    await db.tasks.update_one({"_id": waiting}, {"$set": {"status": "dispatched", "session_id": None,
                                                          "dispatched_at": T0, "phase": "unconfirmed"}})
    await db.tasks.insert_one(
        {**(await bench.status(newer)), "_id": "other", "device_id": "another device", "open_on": "another device"}
    )

    found = await bench.tasks.open_for_device(DEVICE)
    assert [task["_id"] for task in found.queued] == [older, newer]
    assert [task["_id"] for task in found.awaiting_proof] == [waiting]
    assert await bench.tasks.open_for_device("a device with no task") == type(found)([], [])


async def test_a_finished_task_leaves_its_devices_open_tasks_and_a_task_stored_before_open_on_is_given_it(
    bench: Bench,
) -> None:
    """Each session reads its device's open tasks by ``open_on`` (its own index: a device's finished
    tasks are not read); a task reaching a final status loses it, and an open task stored before
    the field existed gets it from the one pass at start-up, or no session would ever claim it."""
    done = await bench.add(kind="reboot")
    await bench.queue.cancel(done, "test")
    assert "open_on" not in await bench.status(done)
    kept = await bench.add(kind="get_parameter_values", names=[ROOT + "DeviceInfo."])
    assert (await bench.status(kept))["open_on"] == DEVICE
    old = {**(await bench.status(kept)), "_id": "stored before open_on"}
    del old["open_on"]
    await bench.db.tasks.insert_one(old)
    assert [task["_id"] for task in (await bench.tasks.open_for_device(DEVICE)).queued] == [kept]

    assert await bench.tasks.backfill_open_on() == 1
    assert await bench.tasks.backfill_open_on() == 0
    found = (await bench.tasks.open_for_device(DEVICE)).queued
    assert sorted(task["_id"] for task in found) == sorted([kept, "stored before open_on"])
