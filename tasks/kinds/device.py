"""Actions on the device as a whole: Reboot, FactoryReset, ScheduleInform."""

from __future__ import annotations

from datetime import datetime

from cwmp import (
    FactoryReset,
    FactoryResetResponse,
    Message,
    Reboot,
    RebootResponse,
    ScheduleInform,
    ScheduleInformResponse,
)
from schemas.tasks import FactoryResetTask, RebootTask, ScheduleInformTask
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import Document, InformEvents, Next, Outcome, Proof, unexpected
from tasks.records import TaskRecord


def _accepted(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, RebootResponse | FactoryResetResponse):
        raise unexpected(task["kind"], response)
    # Done only when the device proves it: M Reboot with our CommandKey, or BOOTSTRAP after a reset.
    return Outcome(Next.AWAIT_INFORM, result={"accepted": True})


def _rebooted(task: TaskRecord, inform: InformEvents, now: datetime) -> Proof | None:
    # TR-069 3.7.1.5: "M Reboot" carries the CommandKey of the Reboot that caused it.
    if ("M Reboot", task["command_key"]) in inform.events:
        took = (now - task["dispatched_at"]).total_seconds()
        return Proof(done=True, result={"rebooted_after_seconds": round(took, 3)})
    if "1 BOOT" in inform.codes:
        return Proof(done=False, reason="device booted without 'M Reboot' for this task")
    return None


def _reset(task: TaskRecord, inform: InformEvents, now: datetime) -> Proof | None:
    # TR-069 3.7.1.5: a factory reset makes the device start over with "0 BOOTSTRAP".
    return Proof(done=True, result={"bootstrapped": True}) if "0 BOOTSTRAP" in inform.codes else None


def _scheduled(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, ScheduleInformResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.DONE, result={})


KINDS = (
    TaskKind(
        "reboot",
        RebootTask,
        lambda task, state, types: Reboot(command_key=task["command_key"]),
        _accepted,
        prove_by_inform=_rebooted,
        ends_session=True,
    ),
    TaskKind(
        "factory_reset",
        FactoryResetTask,
        lambda task, state, types: FactoryReset(),
        _accepted,
        prove_by_inform=_reset,
        ends_session=True,
    ),
    TaskKind(
        "schedule_inform",
        ScheduleInformTask,
        lambda task, state, types: ScheduleInform(
            delay_seconds=task["params"]["delay_seconds"], command_key=task["command_key"]
        ),
        _scheduled,
    ),
)
