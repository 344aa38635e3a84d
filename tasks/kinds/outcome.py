"""What an answer means for a task (:class:`Outcome`), and the pieces every kind shares.

Pure: no I/O. A kind's ``answer`` / ``fault`` returns an Outcome; the dispatcher stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from cwmp import Fault, ParameterValue
from tasks.records import Document as Document  # re-exported: the alias lives in tasks/records.py
from tasks.records import TaskRecord


class Next(StrEnum):
    DONE = "done"  # final: the task succeeded
    FAILED = "failed"  # final: the device refused it
    STEP = "step"  # send another RPC for this task in the same session
    AWAIT_INFORM = "await_inform"  # done when the next Inform proves it (M Reboot, BOOTSTRAP)
    AWAIT_TRANSFER = "await_transfer"  # done by TransferComplete with our CommandKey
    AWAIT_EVENT = "await_event"  # the next step waits for an Inform with state["await_event"]


@dataclass(frozen=True)
class CacheUpdate:
    values: list[tuple[str, str, str]] = field(default_factory=list)
    names: list[tuple[str, bool]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    next: Next
    result: Document | None = None
    fault: Document | None = None
    state: Document = field(default_factory=dict)
    cache: CacheUpdate = field(default_factory=CacheUpdate)
    reason: str | None = None


@dataclass(frozen=True)
class Proof:
    """What a later Inform says of a task waiting for it: done (with result) or failed (with reason)."""

    done: bool
    result: Document | None = None
    reason: str | None = None


@dataclass(frozen=True)
class InformEvents:
    """The events of an Inform as a task's proof reads them (TR-069 3.7.1.5)."""

    events: frozenset[tuple[str, str]]  # (EventCode, CommandKey)
    parameter_key: str | None

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.events)


class TaskProtocolError(Exception):
    """The answer does not fit the request this task sent (a bug or a confused device)."""


def fault_document(fault: Fault) -> Document:
    """TR-069 A.5: the fault as the API shows it, per-parameter faults of SetParameterValues kept."""
    return {
        "code": fault.fault_code,
        "string": fault.fault_string,
        "detail": [
            {"parameter": item.parameter_name, "code": item.fault_code, "string": item.fault_string}
            for item in fault.set_parameter_values_faults
        ],
    }


def failed_by_fault(task: TaskRecord, state: Document, fault: Fault) -> Outcome:
    """The default for every kind: a CPE fault fails the task, the fault kept."""
    return Outcome(Next.FAILED, fault=fault_document(fault), reason=f"device fault {fault.fault_code}")


def wire_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings(values: list[Document], types: dict[str, str], base: str = "") -> tuple[ParameterValue, ...]:
    """SetParameterValues arguments: the request's type, else the device's cached one, else string."""
    return tuple(
        ParameterValue(
            name=base + setting["name"],
            value=wire_value(setting["value"]),
            type=setting.get("type") or types.get(base + setting["name"], "xsd:string"),
        )
        for setting in values
    )


def cached_values(parameters: tuple[ParameterValue, ...]) -> CacheUpdate:
    return CacheUpdate(values=[(p.name, p.value, p.type) for p in parameters])


def value_result(parameters: tuple[ParameterValue, ...]) -> Document:
    # A list, not a mapping: parameter names contain dots, which MongoDB field names may not.
    return {"values": [{"name": p.name, "value": p.value, "type": p.type} for p in parameters]}


def unexpected(kind: str, response: object) -> TaskProtocolError:
    return TaskProtocolError(f"{kind} got {type(response).__name__}")
