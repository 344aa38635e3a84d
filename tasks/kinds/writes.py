"""Writes to the parameter tree. TR-069 A.3.2.1: each carries the task id as ParameterKey, which
the device reports in its next Inform only once the change was applied, so an unanswered write is
proven (or failed) by that Inform instead of being sent twice."""

from __future__ import annotations

from cwmp import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    Message,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
)
from schemas.tasks import AddObjectTask, DeleteObjectTask, SetParameterAttributesTask, SetParameterValuesTask
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import CacheUpdate, Document, Next, Outcome, cached_values, settings, unexpected
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
    if state.get("instance") is None:
        return AddObject(object_name=params["object"], parameter_key=key)
    # Second step: the values, named relative to the instance the device created.
    base = f"{params['object']}{state['instance']}."
    return SetParameterValues(parameters=settings(params["values"], types, base), parameter_key=key)


def _added(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    params = task["params"]
    if isinstance(response, AddObjectResponse):
        instance = f"{params['object']}{response.instance_number}."
        result = {"instance_number": response.instance_number, "status": response.status, "object": instance}
        cache = CacheUpdate(names=[(instance, True)])
        if params.get("values"):
            return Outcome(Next.STEP, result=result, state={"instance": response.instance_number}, cache=cache)
        return Outcome(Next.DONE, result=result, cache=cache)
    if isinstance(response, SetParameterValuesResponse) and isinstance(request, SetParameterValues):
        result = {
            "instance_number": state["instance"],
            "object": f"{params['object']}{state['instance']}.",
            "set_status": response.status,
        }
        return Outcome(Next.DONE, result=result, cache=cached_values(request.parameters))
    raise unexpected("add_object", response)


KINDS = (
    TaskKind("set_parameter_values", SetParameterValuesTask, _set_values, _values_set, proven_by_parameter_key=True),
    TaskKind("set_parameter_attributes", SetParameterAttributesTask, _set_attributes, _attributes_set),
    TaskKind("add_object", AddObjectTask, _add, _added, proven_by_parameter_key=True),
    TaskKind("delete_object", DeleteObjectTask, _delete, _deleted, proven_by_parameter_key=True),
)
