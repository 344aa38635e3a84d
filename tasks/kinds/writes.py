"""Writes to the parameter tree. TR-069 A.3.2.1: each carries the task id as ParameterKey, which
the device reports in its next Inform only once the change was applied, so an unanswered write is
proven (or failed) by that Inform instead of being sent twice."""

from __future__ import annotations

from cwmp import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    Fault,
    Message,
    ParameterValue,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
)
from schemas.tasks import AddObjectTask, DeleteObjectTask, SetParameterAttributesTask, SetParameterValuesTask
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import (
    CacheUpdate,
    Document,
    Next,
    Outcome,
    cached_values,
    failed_by_fault,
    settings,
    unexpected,
)
from tasks.records import TaskRecord


def _set_values(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    return SetParameterValues(parameters=settings(task["params"]["values"], types), parameter_key=task["command_key"])


def _values_set(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, SetParameterValuesResponse) or not isinstance(request, SetParameterValues):
        raise unexpected(task["kind"], response)
    # TR-069 A.3.2.1: status 1 means the values are committed but take effect after a reboot.
    result = {"status": response.status, "applied_after_reboot": response.status == 1}
    return Outcome(Next.DONE, result=result, cache=cached_values(request.parameters))


def _set_attributes(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    return SetParameterAttributes(
        parameters=tuple(
            SetParameterAttributesStruct(
                name=attribute["name"],
                notification_change=attribute.get("notification") is not None,
                notification=attribute.get("notification") or 0,
                access_list_change=attribute.get("access_list") is not None,
                access_list=tuple(attribute.get("access_list") or ()),
            )
            for attribute in task["params"]["attributes"]
        )
    )


def _attributes_set(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, SetParameterAttributesResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.DONE, result={})


def _delete(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    return DeleteObject(object_name=task["params"]["object"], parameter_key=task["command_key"])


def _deleted(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, DeleteObjectResponse) or not isinstance(request, DeleteObject):
        raise unexpected(task["kind"], response)
    result = {"status": response.status, "applied_after_reboot": response.status == 1}
    return Outcome(Next.DONE, result=result, cache=CacheUpdate(delete=[request.object_name]))


def _add(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    params, key = task["params"], task["command_key"]
    if state.get("instance") is None and state.get("add_fault") is None:
        return AddObject(object_name=params["object"], parameter_key=key)
    return SetParameterValues(parameters=_second_step(params, state, types), parameter_key=key)


def _second_step(params: Document, state: Document, types: dict[str, str]) -> tuple[ParameterValue, ...]:
    """One SetParameterValues: the instance's values, named relative to the instance the device
    created, and the values outside it the task carries (full names). TR-069 A.3.2.1 applies them
    all or none, and its fault names each refused parameter."""
    own: tuple[ParameterValue, ...] = ()
    if state.get("instance") is not None:
        own = settings(params.get("values") or [], types, f"{params['object']}{state['instance']}.")
    return own + settings(params.get("other_values") or [], types)


def _added(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    params = task["params"]
    if isinstance(response, AddObjectResponse):
        instance = f"{params['object']}{response.instance_number}."
        result = {"instance_number": response.instance_number, "status": response.status, "object": instance}
        cache = CacheUpdate(names=[(instance, True)])
        if params.get("values") or params.get("other_values"):
            return Outcome(Next.STEP, result=result, state={"instance": response.instance_number}, cache=cache)
        return Outcome(Next.DONE, result=result, cache=cache)
    if isinstance(response, SetParameterValuesResponse) and isinstance(request, SetParameterValues):
        cache = cached_values(request.parameters)
        if state.get("add_fault") is not None:
            # The other values are set; the object is still missing: the task fails with the AddObject's fault.
            fault = state["add_fault"]
            return Outcome(Next.FAILED, fault=fault, reason=f"device fault {fault['code']}", cache=cache)
        result = {
            "instance_number": state["instance"],
            "object": f"{params['object']}{state['instance']}.",
            "set_status": response.status,
        }
        return Outcome(Next.DONE, result=result, cache=cache)
    raise unexpected("add_object", response)


def _add_refused(task: TaskRecord, state: Document, fault: Fault) -> Outcome:
    """A refused AddObject (e.g. 9004, the table at its limit) fails the task; the values outside
    the instance it carries are still sent, alone, as they would have been without it."""
    failed = failed_by_fault(task, state, fault)
    if state.get("instance") is None and state.get("add_fault") is None and task["params"].get("other_values"):
        return Outcome(Next.STEP, state={"add_fault": failed.fault}, reason=failed.reason)
    return failed


KINDS = (
    TaskKind("set_parameter_values", SetParameterValuesTask, _set_values, _values_set, proven_by_parameter_key=True),
    TaskKind("set_parameter_attributes", SetParameterAttributesTask, _set_attributes, _attributes_set),
    TaskKind("add_object", AddObjectTask, _add, _added, _add_refused, proven_by_parameter_key=True),
    TaskKind("delete_object", DeleteObjectTask, _delete, _deleted, proven_by_parameter_key=True),
)
