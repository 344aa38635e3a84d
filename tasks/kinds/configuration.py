"""reprovision: the device's configuration applied again, by the ACS inside the device's session.

No RPC of its own (``TaskKind.in_acs``): the dispatcher hands the claimed task to the profiles
engine (``Dispatcher.in_acs``), whose plan's tasks the same session then claims and sends.
"""

from __future__ import annotations

from cwmp import Message
from schemas.tasks import ReprovisionTask
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import Document, Outcome, TaskProtocolError
from tasks.records import TaskRecord


def _no_rpc(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    raise TaskProtocolError(f"a {task['kind']} task is done by the ACS, not sent to the device")


def _no_answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    raise TaskProtocolError(f"a {task['kind']} task sends no RPC, so no answer belongs to it")


KINDS = (TaskKind("reprovision", ReprovisionTask, _no_rpc, _no_answer, in_acs=True),)
