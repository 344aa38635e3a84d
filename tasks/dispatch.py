"""Sending tasks inside CWMP sessions, and settling them from what the device reports.

Rules (ARCHITECTURE.md, "Tasks across a broken session"):
- a task is claimed by one session with an atomic ``queued -> dispatched`` update;
- a read whose session breaks before the answer is re-queued (up to ``max_attempts``);
- a write is never re-sent blindly: it waits for the next Inform, whose ParameterKey
  (SetParameterValues, AddObject, DeleteObject) or ``M Reboot`` + CommandKey (Reboot) proves it
  happened; otherwise it fails with the reason;
- a transfer (Download, Upload, ScheduleDownload) is settled by TransferComplete with its CommandKey;
- a task the ACS does itself (``TaskKind.in_acs``: a re-provision) is done when a session claims it,
  under the device's lease, and the claims go on (what it queued goes out in the same session).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pymongo.errors import PyMongoError

from cwmp import CwmpVersion, Envelope, Fault, Inform, Message, ProtocolError, TransferComplete, serialize
from cwmp.logtext import loggable
from cwmp.serialize import available_in
from schemas.tasks import TaskStatus
from tasks import params as task_params
from tasks.kinds import kind_of
from tasks.kinds.outcome import InformEvents
from tasks.lifecycle import TaskMove, TaskPhase, advance, phase_of, stored
from tasks.notify import TaskNotifier
from tasks.records import Document, TaskRecord
from tasks.rpc import (
    CacheUpdate,
    Next,
    Outcome,
    TaskProtocolError,
    apply_fault,
    apply_response,
    build_request,
)
from tasks.secretbox import SecretBox
from tasks.store.parameters import ParameterRepository
from tasks.store.tasks import OPEN, TaskRepository

log = logging.getLogger("acs.dispatch")
DISPATCHED = [TaskStatus.DISPATCHED.value]
# What the ACS does for a task of an ``in_acs`` kind: (the task) -> its result.
InAcs = Callable[[TaskRecord], Awaitable[Document]]


class InAcsRefused(Exception):
    """A task the ACS does itself cannot be done; the message is the task's reason."""


@dataclass(frozen=True)
class SessionContext:
    device_id: str
    session_id: str
    version: CwmpVersion
    lease_until: datetime


@dataclass(frozen=True)
class SessionTasks:
    """What a session already knows about its device's in-flight tasks, so that choosing the next
    RPC asks the database only for queued work (one claim), not for every task in flight.

    A value: the dispatcher takes the one the session holds and returns the next one; the session
    keeps what it is given back (``resumable`` in its record, ``sent`` in its worker).

    A task of this session needs another step only right after its answer was applied (``step``);
    a task waits to resume only when the session's Inform released it (``resumable``, kept in the
    session record until every such task was sent). No other process can create either while this
    session holds the device's lease.
    """

    step: TaskRecord | None = None
    resumable: bool = False
    # The task whose RPC this session sent last, as sent: its answer needs no read of the task when
    # the same worker gets it (every later write is conditional on the task's status, so a copy
    # that an expiry made stale changes nothing).
    sent: TaskRecord | None = None
    # How many claims may still find a queued task (the tasks the Inform found queued and those it
    # queued itself, less the claims made since); None: unknown, claim until the queue is empty.
    claims_left: int | None = None


@dataclass(frozen=True)
class OutgoingRequest:
    request_id: str
    message: Message
    task_id: str
    ends_session: bool
    # The task as sent: its answer needs no read of the task when the same worker gets it.
    task: TaskRecord


def _reason(exc: Exception) -> str:
    if isinstance(exc, ProtocolError | TaskProtocolError | ValueError):
        return exc.reason if isinstance(exc, ProtocolError) else str(exc)
    return f"{type(exc).__name__}: {exc}"  # a malformed stored task: say what broke


def request_id_for(task_id: str, step: int) -> str:
    return f"{task_id}:{step}"


def task_id_of(request_id: str) -> str:
    return request_id.partition(":")[0]


class Dispatcher:
    def __init__(
        self,
        repository: TaskRepository,
        parameters: ParameterRepository,
        box: SecretBox,
        notifier: TaskNotifier,
        clock: Callable[[], datetime],
        max_attempts: int = 3,
    ) -> None:
        self.repository = repository
        self.parameters = parameters
        self.box = box
        self.notifier = notifier
        self.clock = clock
        self.max_attempts = max_attempts
        self.final_hooks: list[Callable[[TaskRecord], Awaitable[None]]] = []
        # Kind name -> what the ACS does for such a task (``acs serve`` registers the re-provision).
        self.in_acs: dict[str, InAcs] = {}

    # -- sending -----------------------------------------------------------------------------

    async def next_request(
        self, ctx: SessionContext, known: SessionTasks
    ) -> tuple[OutgoingRequest | None, SessionTasks]:
        """The next RPC of this session (a task's next step, a resumed task, else the oldest queued
        task; None: nothing to send) and what the session then knows of its tasks."""
        if known.step is not None:
            outgoing = await self._send(ctx, known.step)
            if outgoing is not None:
                return outgoing, replace(known, step=None, sent=outgoing.task)
        resumable = known.resumable
        while resumable:
            # A step that waited for an Inform event (Next.AWAIT_EVENT) continues in this session.
            resumed = await self.repository.resume(ctx.device_id, ctx.session_id, ctx.lease_until)
            if resumed is None:
                resumable = False
                break
            outgoing = await self._send(ctx, resumed)
            if outgoing is not None:
                return outgoing, replace(known, step=None, resumable=True, sent=outgoing.task)
        claimed, claims_left = await self._claim(ctx, known.claims_left)
        sent = None if claimed is None else claimed.task
        return claimed, SessionTasks(resumable=resumable, sent=sent, claims_left=claims_left)

    async def _claim(self, ctx: SessionContext, claims_left: int | None) -> tuple[OutgoingRequest | None, int | None]:
        """One claim of the oldest queued task (several when one cannot be sent), at most
        ``claims_left`` of them; the outgoing request and the claims then left."""
        while True:
            if claims_left is not None:
                if claims_left <= 0:
                    return None, 0
                claims_left -= 1
            now = self.clock()
            claimed = await self.repository.claim_next(ctx.device_id, ctx.session_id, ctx.lease_until, now)
            if claimed is None:
                return None, None if claims_left is None else 0
            if claimed["expires_at"] <= now:
                await self._finish(claimed, TaskStatus.EXPIRED, reason="expired before the device was reached")
                continue
            if kind_of(claimed["kind"]).in_acs:
                await self._do_in_acs(claimed)
                claims_left = None  # it may have queued tasks for this session: claim until none is left
                continue
            outgoing = await self._send(ctx, claimed)
            if outgoing is not None:
                return outgoing, claims_left

    async def _do_in_acs(self, task: TaskRecord) -> None:
        """A claimed task the ACS does itself, finished with its result or why it could not be done.
        Under the device's lease, like any claim; a session that breaks before the end puts it back in
        the queue as a task never sent (``_settle_broken``), so it is done in the next one."""
        handler = self.in_acs.get(task["kind"])
        if handler is None:
            await self._finish(task, TaskStatus.FAILED, reason=f"this ACS process does no {task['kind']} tasks")
            return
        try:
            result = await handler(task)
        except PyMongoError:
            raise  # the database, not the task: the session breaks and the task goes back to the queue
        except InAcsRefused as refused:
            await self._finish(task, TaskStatus.FAILED, reason=str(refused))
            return
        except Exception as exc:  # a defect of ours, said in the task and logged whole
            log.exception("task %s %s for %s failed in the ACS", task["_id"], task["kind"], task["device_id"])
            await self._finish(task, TaskStatus.FAILED, reason=f"failed in the ACS: {_reason(exc)}")
            return
        await self._finish(task, TaskStatus.DONE, result=result)

    async def _send(self, ctx: SessionContext, task: TaskRecord) -> OutgoingRequest | None:
        state: Document = task.get("state") or {}
        try:
            params = task_params.unseal(task["params"], self.box)
            message = build_request({**task, "params": params}, state, await self._types(task, params))
            if not available_in(message, ctx.version):
                reason = f"{message.kind} does not exist in CWMP {ctx.version}, which this device speaks"
                await self._finish(task, TaskStatus.FAILED, reason=reason)
                return None
            # A value XML cannot carry (an ESC, U+FFFE) stored before the API refused them, or put
            # there by hand, fails this task here, before it is recorded as sent: the session goes
            # on with the next task instead of breaking on the reply.
            serialize(Envelope(id=request_id_for(task["_id"], 0), body=message, version=ctx.version))
        except PyMongoError:
            raise  # the database, not the task
        except Exception as exc:  # anything else in building this task's RPC is this task's fault
            await self._finish(task, TaskStatus.FAILED, reason=f"cannot build the RPC: {_reason(exc)}")
            return None
        step = int(task.get("step", 0))
        if not await self.repository.record_send(
            task["_id"], int(task["attempts"]), step, ctx.session_id, self.clock()
        ):
            log.error(
                "task %s attempt %s step %s is already being sent elsewhere; not sending it again",
                task["_id"],
                task["attempts"],
                step,
            )
            return None
        phase = phase_of(task.get("phase"))
        sent_phase = advance(phase, TaskMove.SEND)
        if phase != sent_phase:  # a later step or a resumed task; a claim marks it sent already
            fields = {"phase": stored(sent_phase)}
            await self.repository.update_dispatched(task["_id"], ctx.session_id, fields, task["device_id"])
        request_id = request_id_for(task["_id"], step)
        sent: TaskRecord = {**task, "phase": stored(sent_phase), "session_id": ctx.session_id}
        ends = kind_of(task["kind"]).ends_session
        return OutgoingRequest(request_id, message, task["_id"], ends, sent)

    async def _types(self, task: TaskRecord, params: Document) -> dict[str, str]:
        """xsi:types for values given without one: the device's own, from the cache."""
        values = [*(params.get("values") or []), *(params.get("other_values") or [])]
        if not kind_of(task["kind"]).needs_cached_types and not any(not setting.get("type") for setting in values):
            return {}
        cached = await self.parameters.get(task["device_id"])
        return {name: parameter.type for name, parameter in cached.items() if parameter.type}

    # -- answers in the session ----------------------------------------------------------------

    async def on_response(
        self, ctx: SessionContext, request_id: str, request: Message, response: Message, known: SessionTasks
    ) -> SessionTasks:
        """Apply the answer to its task; the task comes back as ``step`` when its next step is due."""
        task = await self._sent_task(ctx, request_id, known.sent)
        if task is None:
            return replace(known, step=None, sent=None)
        try:
            outcome = apply_response(task, task.get("state") or {}, request, response)
        except TaskProtocolError as exc:
            outcome = Outcome(Next.FAILED, reason=f"unexpected answer: {exc}")
        return replace(known, step=await self._apply(ctx, task, outcome), sent=None)

    async def on_fault(
        self, ctx: SessionContext, request_id: str, request: Message, fault: Fault, known: SessionTasks
    ) -> SessionTasks:
        task = await self._sent_task(ctx, request_id, known.sent)
        if task is None:
            return replace(known, step=None, sent=None)
        step = await self._apply(ctx, task, apply_fault(task, task.get("state") or {}, fault))
        return replace(known, step=step, sent=None)

    async def claimed_task(self, ctx: SessionContext, task_id: str) -> TaskRecord | None:
        """A task stored already claimed for this session and not sent yet, read back (the session's
        next message reached a worker that did not store it); None if it is no longer so."""
        task = await self.repository.get(task_id, ctx.device_id)
        if task is None or task["status"] != TaskStatus.DISPATCHED or task.get("session_id") != ctx.session_id:
            return None
        if phase_of(task.get("phase")) is not TaskPhase.SENT or await self.repository.was_sent(task):
            return None
        return task

    async def _sent_task(
        self, ctx: SessionContext, request_id: str, sent: TaskRecord | None
    ) -> TaskRecord | None:
        if sent is not None and request_id_for(sent["_id"], int(sent.get("step", 0))) == request_id:
            return sent
        task = await self.repository.get(task_id_of(request_id), ctx.device_id)
        if task is None or task.get("session_id") != ctx.session_id or task["status"] != TaskStatus.DISPATCHED:
            log.warning("answer %s matches no task dispatched in session %s", loggable(request_id), ctx.session_id)
            return None
        return task

    async def _apply(self, ctx: SessionContext, task: TaskRecord, outcome: Outcome) -> TaskRecord | None:
        if "replaced_values" not in task:
            # A task whose values were cached when it was stored (a BOOTSTRAP's provisioning, in the
            # Inform's tree write) writes no cache; one not done puts them back (its final hook).
            await self._update_cache(task["device_id"], outcome.cache)
        result = {**(task.get("result") or {}), **(outcome.result or {})} if outcome.result else task.get("result")
        phase = phase_of(task.get("phase"))
        match outcome.next:
            case Next.DONE:
                await self._finish(task, TaskStatus.DONE, result=result)
            case Next.FAILED:
                await self._finish(task, TaskStatus.FAILED, result=result, fault=outcome.fault, reason=outcome.reason)
            case Next.STEP:
                step = int(task.get("step", 0)) + 1
                next_phase = stored(advance(phase, TaskMove.NEXT_STEP))
                fields = {"phase": next_phase, "state": outcome.state, "step": step, "result": result}
                if await self.repository.update_dispatched(task["_id"], ctx.session_id, fields, task["device_id"]):
                    return {**task, "phase": next_phase, "state": outcome.state, "step": step, "result": result}
            case Next.AWAIT_EVENT:
                # Detached until an Inform carries state["await_event"]; then resumed in that session.
                fields = {
                    "phase": stored(advance(phase, TaskMove.WAIT_EVENT)),
                    "session_id": None,
                    "state": outcome.state,
                    "step": int(task.get("step", 0)) + 1,
                    "result": result,
                }
                await self.repository.update_dispatched(task["_id"], ctx.session_id, fields, task["device_id"])
            case Next.AWAIT_INFORM | Next.AWAIT_TRANSFER:
                # Detached from the session: the proof arrives in a later session.
                move = TaskMove.WAIT_INFORM if outcome.next is Next.AWAIT_INFORM else TaskMove.WAIT_TRANSFER
                fields = {"phase": stored(advance(phase, move)), "session_id": None, "result": result}
                await self.repository.update_dispatched(task["_id"], ctx.session_id, fields, task["device_id"])
        return None

    async def _update_cache(self, device_id: str, cache: CacheUpdate) -> None:
        now = self.clock()
        for object_name in cache.delete:
            await self.parameters.delete_subtree(device_id, object_name)
        if cache.names:
            await self.parameters.set_names(device_id, cache.names, now)
        if cache.values:
            await self.parameters.set_values(device_id, cache.values, now)

    async def _finish(
        self,
        task: TaskRecord,
        status: TaskStatus,
        *,
        result: Document | None = None,
        fault: Document | None = None,
        reason: str | None = None,
    ) -> None:
        advance(phase_of(task.get("phase")), TaskMove.FINISH)
        fields: Document = {"finished_at": self.clock(), "reason": reason, "phase": None}
        if result is not None:
            fields["result"] = task_params.seal_result(result, self.box)  # a read's Wi-Fi key, sealed
        if fault is not None:
            fields["fault"] = fault
        finished = await self.repository.finish_known(task, OPEN, status, fields)
        if finished is not None:
            log.info(
                "task %s %s for %s: %s%s",
                task["_id"],
                task["kind"],
                task["device_id"],
                status.value,
                f" ({loggable(reason)})" if reason else "",
            )
            self.notifier.notify(task["_id"])
            for hook in self.final_hooks:
                await hook(finished)

    async def withdraw(self, task: TaskRecord, session_id: str) -> None:
        """A task claimed for a reply that was never sent (the session had moved on elsewhere):
        back to the queue, as a read of a broken session is; it never reached the device."""
        await self.repository.requeue(
            task["_id"], session_id, {"reason": "claimed for a reply that was never sent"}, task["device_id"]
        )

    # -- a session that broke --------------------------------------------------------------------

    async def on_session_broken(self, session_id: str, why: str, requeue_unsent: bool = True) -> None:
        """The session ended without the device answering: settle what was in flight
        (``requeue_unsent`` False: a task never sent is settled like a sent one)."""
        for task in await self.repository.in_session(session_id):
            await self._settle_broken(task, session_id, why, requeue_unsent)

    async def settle_orphaned(self, tasks: list[TaskRecord]) -> None:
        """Tasks the device's new session found still held by a session of the device that is gone
        (``OpenTasks.orphaned``: one that ended without sending the task it was given, such as a
        BOOTSTRAP's provisioning when its next message reached a worker that did not know it)."""
        for task in tasks:
            await self._settle_broken(task, str(task["session_id"]), "its session ended without settling it")

    async def _settle_broken(self, task: TaskRecord, session_id: str, why: str, requeue_unsent: bool = True) -> None:
        kind, phase = kind_of(task["kind"]), phase_of(task.get("phase"))
        if phase is TaskPhase.STEP:
            # The last RPC was answered (e.g. AddObject created an instance, a refresh learned the
            # names); the rest was never sent. Before the read case: a step is never re-queued.
            await self._finish(task, TaskStatus.FAILED, reason=f"{why} before the task's next step was sent")
            return
        unsent = (
            requeue_unsent
            and phase is TaskPhase.SENT
            and int(task.get("step", 0)) == 0
            and int(task.get("attempts", 0)) < self.max_attempts
            and not await self.repository.was_sent(task)
        )
        if unsent:
            # Claimed, but its send was never recorded (it is recorded before the RPC goes out): it
            # never reached the device, so whatever its kind it goes back to the queue (a bounded
            # number of times, like a read).
            advance(phase, TaskMove.REQUEUE)
            await self.repository.requeue(
                task["_id"], session_id, {"reason": f"re-queued, never sent: {why}"}, task["device_id"]
            )
            return
        if kind.read:
            if int(task.get("attempts", 0)) < self.max_attempts:
                # A read changes nothing on the device: sending it again is safe.
                advance(phase, TaskMove.REQUEUE)  # checked here; the repository stores the result
                await self.repository.requeue(
                    task["_id"], session_id, {"reason": f"re-queued: {why}"}, task["device_id"]
                )
                return
            await self._finish(task, TaskStatus.FAILED, reason=f"{why}; gave up after {task['attempts']} attempts")
            return
        move = TaskMove.BROKEN_AWAIT_TRANSFER if kind.transfer else TaskMove.BROKEN_UNCONFIRMED
        if kind.ends_session:
            move = TaskMove.BROKEN_AWAIT_INFORM
        note = f"{why} before the device answered; not re-sent, waiting for the next Inform to prove it"
        await self.repository.update_dispatched(
            task["_id"],
            session_id,
            {"phase": stored(advance(phase, move)), "session_id": None, "reason": note},
            task["device_id"],
        )

    # -- proof in a later session ----------------------------------------------------------------

    async def on_inform(self, device_id: str, inform: Inform, parameter_key: str | None) -> bool:
        """Settle what this Inform proves; True when a task now waits to resume in this session."""
        waiting = (await self.repository.open_for_device(device_id)).awaiting_proof
        return await self.settle_inform(waiting, inform, parameter_key)

    async def settle_inform(self, awaiting_proof: list[TaskRecord], inform: Inform, parameter_key: str | None) -> bool:
        """Settle what this Inform proves of the tasks waiting for it (``OpenTasks.awaiting_proof``,
        read by the session at its Inform); True when a task now waits to resume in this session."""
        events = frozenset((event.event_code, event.command_key) for event in inform.events)
        proof = InformEvents(events, parameter_key)
        resumable = False
        for task in awaiting_proof:
            resumable = await self._settle_by_inform(task, proof) or resumable
        return resumable

    async def _settle_by_inform(self, task: TaskRecord, inform: InformEvents) -> bool:
        """Settle the task if this Inform proves it; True when it was released to resume in this session."""
        kind, phase = kind_of(task["kind"]), phase_of(task.get("phase"))
        if kind.prove_by_inform is not None:
            proof = kind.prove_by_inform(task, inform, self.clock())
            if proof is not None and proof.done:
                await self._finish(task, TaskStatus.DONE, result={**(task.get("result") or {}), **(proof.result or {})})
            elif proof is not None:
                await self._finish(task, TaskStatus.FAILED, reason=proof.reason)
            return False
        if phase is TaskPhase.AWAIT_EVENT:
            if (task.get("state") or {}).get("await_event") in inform.codes:
                released = stored(advance(phase, TaskMove.EVENT_ARRIVED))
                return await self.repository.update_dispatched(
                    task["_id"], None, {"phase": released}, task["device_id"]
                )
            return False
        if phase is TaskPhase.RESUME:
            return True  # released by an earlier Inform whose session ended before sending it
        if phase is TaskPhase.UNCONFIRMED:
            await self._settle_unconfirmed(task, inform.parameter_key)
        return False  # an unconfirmed write settled, or a transfer: TransferComplete settles it

    async def _settle_unconfirmed(self, task: TaskRecord, parameter_key: str | None) -> None:
        if kind_of(task["kind"]).proven_by_parameter_key and parameter_key == task["command_key"]:
            # TR-069 A.3.2.1: ParameterKey changes only when the whole change was applied.
            await self._finish(task, TaskStatus.DONE, result={"confirmed_by": "ParameterKey"})
            return
        reason = task.get("reason") or "session broke before the device answered"
        await self._finish(task, TaskStatus.FAILED, reason=f"{reason}; the next Inform did not confirm it")

    async def on_transfer_complete(self, device_id: str, message: TransferComplete) -> None:
        task = await self.repository.by_command_key(device_id, message.command_key)
        if task is None or task["status"] != TaskStatus.DISPATCHED:
            log.info("TransferComplete from %s with unknown CommandKey %s", device_id, loggable(message.command_key))
            return
        times = {"start_time": message.start_time, "complete_time": message.complete_time}
        result = {**(task.get("result") or {}), **times}
        if message.fault.fault_code == 0:
            await self._finish(task, TaskStatus.DONE, result=result)
            return
        fault = {"code": message.fault.fault_code, "string": message.fault.fault_string, "detail": []}
        await self._finish(
            task,
            TaskStatus.FAILED,
            result=result,
            fault=fault,
            reason=f"transfer failed with fault {message.fault.fault_code}",
        )
