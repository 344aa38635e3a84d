"""Pure translation between tasks and CWMP RPCs: what to send for a task, and what an answer means.

No I/O here: the dispatcher loads the task, calls :func:`build_request`, sends it in the session,
then feeds the answer to :func:`apply_response` / :func:`apply_fault` and stores the
:class:`Outcome`. Each kind's own rules live in its home in :mod:`tasks.kinds`; this module looks
the kind up. Multi-step tasks (``refresh``, ``add_object`` with values, ``diagnostic``) carry
their progress in ``state`` between steps.
"""

from __future__ import annotations

from cwmp import Fault, Message
from tasks.kinds import kind_of
from tasks.kinds.outcome import (
    CacheUpdate,
    Document,
    Next,
    Outcome,
    TaskProtocolError,
    fault_document,
    wire_value,
)
from tasks.kinds.refresh import REFRESH_CHUNK, SUBTREE_REFUSED
from tasks.records import TaskRecord

__all__ = [
    "REFRESH_CHUNK",
    "SUBTREE_REFUSED",
    "CacheUpdate",
    "Next",
    "Outcome",
    "TaskProtocolError",
    "apply_fault",
    "apply_response",
    "build_request",
    "fault_document",
    "wire_value",
]


def build_request(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    """The RPC to send for this task at its current step."""
    return kind_of(task["kind"]).build(task, state, types)


def apply_response(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    """What the CPE's answer to this task's RPC means for the task and the parameter cache."""
    return kind_of(task["kind"]).answer(task, state, request, response)


def apply_fault(task: TaskRecord, state: Document, fault: Fault) -> Outcome:
    """What a CPE fault in answer to this task's RPC means (most kinds: failed, the fault kept)."""
    return kind_of(task["kind"]).fault(task, state, fault)
