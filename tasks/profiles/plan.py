"""The fewest RPCs that bring a device to its configuration, as task requests. Pure.

- tables the cache does not know are read first, alone (one GetParameterNames, NextLevel true:
  the instance numbers are all the plan needs), and everything planned once they are answered, so
  the plain values and an existing instance's values go in one SetParameterValues, not two;
- surplus instances of an ``exact`` table: one DeleteObject each;
- every plain difference in **one** SetParameterValues (TR-069 A.3.2.1 applies it all or nothing,
  and the fault names each refused parameter, so a refusal costs one exchange, not a loop);
- each missing instance: AddObject, then one SetParameterValues of its values (its number is
  known only from the AddObject answer); the first one's carries the plain differences too
  (``other_values``), so a device that lacks an instance costs AddObject and one SetParameterValues,
  not a SetParameterValues more (still sent alone if the device refuses the AddObject);
- watched parameters: one SetParameterAttributes (TR-069 A.3.2.4 notification) when they changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from schemas.tasks import (
    AddObjectTask,
    AttributeSetting,
    DeleteObjectTask,
    GetParameterNamesTask,
    ParameterSetting,
    SetParameterAttributesTask,
    SetParameterValuesTask,
    TaskRequest,
)
from tasks.profiles.diff import Change, Drift, wire_type
from tasks.profiles.layering import Desired


@dataclass(frozen=True)
class Plan:
    requests: list[TaskRequest] = field(default_factory=list)
    replan: bool = False  # the requests are reads; plan again once they are answered
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (name, why) values no RPC can carry


def _setting(name: str, desired: Desired, kind: str | None, invalid: list[tuple[str, str]]) -> ParameterSetting | None:
    try:
        return ParameterSetting(name=name, value=desired.value, type=kind)
    except ValidationError as exc:
        invalid.append((name, "; ".join(error["msg"] for error in exc.errors())))
        return None


def plan(drift: Drift) -> Plan:
    """The requests, in order. Tables to read come alone, and ``replan`` asks for another plan once
    they are answered: each task costs its own claim, send and outcome records, and the values of
    an instance the read reveals then share the plain values' SetParameterValues."""
    invalid: list[tuple[str, str]] = []
    if drift.refresh:
        reads = [
            GetParameterNamesTask(kind="get_parameter_names", path=table, next_level=True) for table in drift.refresh
        ]
        return Plan(list(reads), True, invalid)
    requests: list[TaskRequest] = [DeleteObjectTask(kind="delete_object", object=path) for path in drift.deletes]
    settings = [s for s in (_change_setting(c, invalid) for c in drift.changes) if s is not None]
    if settings and not drift.adds:
        requests.append(SetParameterValuesTask(kind="set_parameter_values", values=settings))
    for table, values in drift.adds:
        added = [s for s in (_setting(n, d, wire_type(d, None), invalid) for n, d in values.items()) if s]
        # The plain values ride on the first AddObject: set with its instance's values, one exchange.
        other, settings = settings or None, []
        requests.append(AddObjectTask(kind="add_object", object=table, values=added or None, other_values=other))
    if drift.watch:
        attributes = [AttributeSetting(name=w.name, notification=w.notification) for w in drift.watch]
        requests.append(SetParameterAttributesTask(kind="set_parameter_attributes", attributes=attributes))
    return Plan(requests, False, invalid)


def _change_setting(change: Change, invalid: list[tuple[str, str]]) -> ParameterSetting | None:
    return _setting(change.name, change.desired, change.type, invalid)
