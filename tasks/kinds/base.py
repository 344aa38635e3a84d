"""A task kind: everything the ACS knows about one kind of operator task, in one value.

Each module of this package defines the kinds of one family; ``tasks.kinds`` collects them, and
everything else (the RPC builder, the dispatcher, the queue) looks a kind up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from cwmp import Fault, Message
from tasks.kinds.outcome import Document, InformEvents, Outcome, Proof, failed_by_fault
from tasks.records import TaskRecord

Build = Callable[[TaskRecord, Document, dict[str, str]], Message]  # (task, state, cached types) -> RPC
Answer = Callable[[TaskRecord, Document, Message, Message], Outcome]  # (task, state, request, response)
OnFault = Callable[[TaskRecord, Document, Fault], Outcome]
# (task, the Inform's events, now) -> Proof, or None while the Inform says nothing about it.
ProveByInform = Callable[[TaskRecord, InformEvents, datetime], Proof | None]


@dataclass(frozen=True)
class TaskKind:
    name: str
    request: type[BaseModel]  # the API's request model (schemas.tasks: the schemas layer sits below tasks)
    build: Build
    answer: Answer
    fault: OnFault = failed_by_fault
    # Proof of a task left waiting for the next Inform (phase await_inform); None: no such proof.
    prove_by_inform: ProveByInform | None = None
    # A read changes nothing on the device: re-sent after a broken session (bounded attempts).
    read: bool = False
    # TR-069 A.3.2.1: ParameterKey changes only when the change was applied, so an unanswered
    # write is proven by the ParameterKey of the next Inform.
    proven_by_parameter_key: bool = False
    # Settled by TransferComplete with the task's CommandKey (TR-069 A.3.2.8, A.4.1.5).
    transfer: bool = False
    # The device restarts after it: TR-069 3.7.2.4 lets the ACS end the session so it can.
    ends_session: bool = False
    # The RPC depends on the device's cached tree (the data-model root picks the object).
    needs_cached_types: bool = False
    # Done by the ACS itself when a session claims it (``Dispatcher.in_acs``), with no RPC of its
    # own: ``build`` and ``answer`` are never called.
    in_acs: bool = False
