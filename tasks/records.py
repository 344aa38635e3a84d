"""The shapes of what the store hands out: the one ``Document`` alias of the code base, and typed
records for the collections the session path reads (``TaskRecord``, ``SessionRecord``).

A record is typed where it leaves the store (``tasks/store/tasks.py``, ``tasks/store/sessions.py``):
the driver's decoded dict is the record itself, with its keys and their types checked by mypy
wherever it travels (queue, dispatcher, task kinds, the CWMP service, API views); nothing is copied
or converted.
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
    open_on: str  # its device id while queued or dispatched (tasks/store/tasks.py OPEN_ON)
    expiry_due: int  # the minute ``expires_at`` falls in (tasks/store/tasks.py EXPIRY_DUE)
    dispatched_at: datetime
    lease_until: datetime
    step: int
    phase: str | None  # tasks.lifecycle.TaskPhase, stored
    state: Document  # what a multi-step kind keeps between steps
    result: Document | None
    fault: Document | None
    reason: str | None
    finished_at: datetime
    # On the last task of a profile application: what its success records on the device
    # (``ProfileEngine._concluded_unread``).
    configuration_outcome: Document
    # On a provisioning task whose device fields were stored when it was planned (an authenticated
    # BOOTSTRAP): the device's fields as they were, put back if the device does not accept it.
    replaced_device_fields: Document
    # On such a task whose values the Inform's tree write cached as it sets them: that cache's
    # entries as the Inform reported them (``names``, ``reported``, ``stamp``, ``at``), put back the
    # same way; the task's answer writes no cache (``Dispatcher._apply``).
    replaced_values: Document


class SessionFields(TypedDict, total=False):
    """What a session's saves change in its record (each save a step: ``SessionRepository.save``)."""

    snapshot: Document  # cwmp.session.SessionSnapshot as JSON, the request in flight sealed
    last_message_at: datetime
    expires_at: datetime  # the idle expiry: the reaper ends the session past it
    lease_until: datetime  # the device lease's end as this session last renewed it
    resumable: bool  # a task released by the Inform waits to be sent
    claims_left: int | None  # claims that may still find a queued task (None: until the queue is empty)
    # A task stored already claimed for this session by its Inform (a BOOTSTRAP's provisioning),
    # not sent yet: the next RPC the session sends; None once it went out.
    claimed_task: str | None
    faults: list[Document]  # the CPE's faults, {code, string}, the last 50
    end_after_response: bool  # the RPC sent ends the session (Reboot, FactoryReset, ...)
    # Set by the end of the session (``LIVE_ONLY`` fields then dropped):
    ended_at: datetime
    outcome: str  # ok, protocol_error, timeout, superseded, lease_lost, error
    error: str
    duration_ms: int


class SessionRecord(SessionFields, total=False):
    """A session's record (``tasks/store/sessions.py``): while it runs, the state its lease or latest
    step carries; once it ended, its one document of ``sessions``. ``sent_task`` and
    ``claimed_record`` are the worker's own (``LiveSessions``) and never stored."""

    _id: Required[str]  # the session id, the ``acs_session`` cookie
    device_id: Required[str]
    started_at: Required[datetime]
    remote_ip: str | None
    auth_user: str | None  # who the CPE authenticated as; every request of the session must match
    cwmp_version: str  # cwmp.versions.CwmpVersion value
    events: list[str]  # the Inform's events, "<code> <CommandKey>"
    rpcs: list[Document]  # the exchange, {at, dir, name, id}, bounded (MAX_RPCS_PER_SESSION)
    rpc_count: int
    live: bool
    seq: int  # saves so far: a save names the one it read
    saved_as: str  # token of the last save (group commit tells two saves of one sequence apart)
    # A session with nothing to do held by its worker alone, no lease written (``CwmpService``'s
    # lazy sessions): the worker's own, never stored.
    lazy: bool
    sent_task: TaskRecord | None  # the task as this worker last sent it (in memory only)
    claimed_record: TaskRecord | None  # the ``claimed_task`` as this worker stored it (in memory only)
