"""The shapes of what the store hands out: the one ``Document`` alias of the code base, and typed
records for the collections the session path reads (``TaskRecord``, ``SessionRecord``).

A record is typed where it leaves the store (``tasks/store/tasks.py``, ``tasks/store/sessions.py``):
the driver's decoded dict is the record itself, with its keys and their types checked by mypy
wherever it travels (queue, dispatcher, task kinds, API views); nothing is copied or converted.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Required, TypedDict

Document = dict[str, Any]  # a document as the driver reads and writes it


class TaskRecord(TypedDict, total=False):
    """One document of ``tasks`` (written by ``tasks.queue``, moved by ``tasks.dispatch``).

    The keys every task has since it was created are required; the rest appear as the task
    moves (claimed, stepped, finished), and a listing may leave ``params`` out.
    """

    _id: Required[str]
    device_id: Required[str]
    kind: Required[str]  # a key of tasks/kinds
    status: Required[str]  # schemas.tasks.TaskStatus
    params: Document  # the request's fields, secrets sealed (tasks/params.py)
    created_at: datetime
    created_by: str
    expires_at: datetime
    attempts: int
    command_key: str  # the CommandKey / ParameterKey sent with it (TR-069 A.3.2)
    batch_id: str | None
    idempotency_key: str | None
    retry_of: str
    session_id: str | None  # the session that holds it while dispatched
    dispatched_at: datetime
    lease_until: datetime
    step: int
    phase: str | None  # tasks.lifecycle.TaskPhase, stored
    state: Document  # what a multi-step kind keeps between steps
    result: Document | None
    fault: Document | None
    reason: str | None
    finished_at: datetime
