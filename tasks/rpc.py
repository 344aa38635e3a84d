"""Pure translation between tasks and CWMP RPCs: what to send for a task, and what an answer means.

No I/O here: the dispatcher loads the task, calls :func:`build_request`, sends it in the session,
then feeds the answer to :func:`apply_response` / :func:`apply_fault` and stores the
:class:`Outcome`. Multi-step tasks (``refresh``, ``add_object`` with values) carry their progress
in ``state`` between steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cwmp import (
    AddObject,
    AddObjectResponse,
    CancelTransfer,
    DeleteObject,
    Download,
    DownloadResponse,
    FactoryReset,
    Fault,
    GetAllQueuedTransfers,
    GetAllQueuedTransfersResponse,
    GetParameterAttributes,
    GetParameterAttributesResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetQueuedTransfers,
    GetQueuedTransfersResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    Message,
    ParameterValue,
    Reboot,
    ScheduleDownload,
    ScheduleDownloadResponse,
    ScheduleInform,
    SetParameterAttributes,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
    TimeWindowStruct,
    Upload,
    UploadResponse,
)
from tasks import diagnostics

Document = dict[str, Any]
# TR-069 A.3.2.2: a partial path in GetParameterValues returns the whole subtree in one answer;
# devices short of memory refuse that with 9004 (resources exceeded) or 9002, so refresh then
# falls back to explicit names in chunks of this size.
REFRESH_CHUNK = 100
SUBTREE_REFUSED = frozenset({9002, 9004})


class Next(StrEnum):
    DONE = "done"  # final: the task succeeded
    FAILED = "failed"  # final: the device refused it
    STEP = "step"  # send another RPC for this task in the same session
    AWAIT_INFORM = "await_inform"  # done when the next Inform proves it (M Reboot, BOOTSTRAP)
    AWAIT_TRANSFER = "await_transfer"  # done by TransferComplete with our CommandKey
    AWAIT_EVENT = "await_event"  # the next step waits for an Inform with state["await_event"]


# Kinds whose request depends on the device's cached tree (the data model root picks the object).
NEEDS_CACHED_TYPES = frozenset({"diagnostic"})


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


class TaskProtocolError(Exception):
    """The answer does not fit the request this task sent (a bug or a confused device)."""


def wire_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _settings(values: list[Document], types: dict[str, str], base: str = "") -> tuple[ParameterValue, ...]:
    return tuple(
        ParameterValue(
            name=base + setting["name"],
            value=wire_value(setting["value"]),
            type=setting.get("type") or types.get(base + setting["name"], "xsd:string"),
        )
        for setting in values
    )


def _attributes(attributes: list[Document]) -> tuple[SetParameterAttributesStruct, ...]:
    return tuple(
        SetParameterAttributesStruct(
            name=attribute["name"],
            notification_change=attribute.get("notification") is not None,
            notification=attribute.get("notification") or 0,
            access_list_change=attribute.get("access_list") is not None,
            access_list=tuple(attribute.get("access_list") or ()),
        )
        for attribute in attributes
    )


def build_request(task: Document, state: Document, types: dict[str, str]) -> Message:
    """The RPC to send for this task at its current step."""
    kind: str = task["kind"]
    params: Document = task["params"]
    key: str = task["command_key"]
    if kind == "refresh":
        return _refresh_request(params["path"], state)
    if kind == "diagnostic":
        if "object" not in state:
            return diagnostics.request(params, key, diagnostics.root_of(types))
        return diagnostics.read_results(state["object"])
    if kind == "add_object":
        if state.get("instance") is None:
            return AddObject(object_name=params["object"], parameter_key=key)
        base = f"{params['object']}{state['instance']}."
        return SetParameterValues(parameters=_settings(params["values"], types, base), parameter_key=key)
    return _single_request(kind, params, key, types)


def _refresh_request(path: str, state: Document) -> Message:
    if "names" not in state:
        return GetParameterNames(parameter_path=path, next_level=False)
    if state.get("chunked"):
        offset = int(state.get("offset", 0))
        return GetParameterValues(names=tuple(state["names"][offset : offset + REFRESH_CHUNK]))
    return GetParameterValues(names=(path,))


def _single_request(kind: str, params: Document, key: str, types: dict[str, str]) -> Message:
    simple: dict[str, Message] = {
        "reboot": Reboot(command_key=key),
        "factory_reset": FactoryReset(),
        "get_rpc_methods": GetRPCMethods(),
        "get_queued_transfers": GetQueuedTransfers(),
        "get_all_queued_transfers": GetAllQueuedTransfers(),
    }
    if kind in simple:
        return simple[kind]
    match kind:
        case "get_parameter_values":
            return GetParameterValues(names=tuple(params["names"]))
        case "get_parameter_attributes":
            return GetParameterAttributes(names=tuple(params["names"]))
        case "get_parameter_names":
            return GetParameterNames(parameter_path=params["path"], next_level=params["next_level"])
        case "set_parameter_values":
            return SetParameterValues(parameters=_settings(params["values"], types), parameter_key=key)
        case "set_parameter_attributes":
            return SetParameterAttributes(parameters=_attributes(params["attributes"]))
        case "delete_object":
            return DeleteObject(object_name=params["object"], parameter_key=key)
        case "schedule_inform":
            return ScheduleInform(delay_seconds=params["delay_seconds"], command_key=key)
        case "cancel_transfer":
            return CancelTransfer(command_key=params["command_key"])
        case "download":
            return _download(params, key)
        case "upload":
            return Upload(**_transfer(params, key, sized=False), delay_seconds=params.get("delay_seconds", 0))
        case "schedule_download":
            return _schedule_download(params, key)
    raise TaskProtocolError(f"no RPC for task kind {kind!r}")


def _transfer(params: Document, key: str, *, sized: bool) -> dict[str, Any]:
    """The arguments Download, ScheduleDownload and Upload share (TR-069 A.3.2.8, A.4.1.7, A.3.2.9)."""
    fields: dict[str, Any] = {
        "command_key": key,
        "file_type": params["file_type"],
        "url": params["url"],
        "username": params.get("username", ""),
        "password": params.get("password", ""),
    }
    if sized:
        fields["file_size"] = params.get("file_size", 0)
        fields["target_file_name"] = params.get("target_file_name", "")
    return fields


def _download(params: Document, key: str) -> Download:
    return Download(**_transfer(params, key, sized=True), delay_seconds=params.get("delay_seconds", 0))


def _schedule_download(params: Document, key: str) -> ScheduleDownload:
    windows = tuple(TimeWindowStruct(**window) for window in params["time_windows"])
    return ScheduleDownload(**_transfer(params, key, sized=True), time_windows=windows)


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


def apply_fault(task: Document, state: Document, fault: Fault) -> Outcome:
    refusing_subtree = task["kind"] == "refresh" and "names" in state and not state.get("chunked")
    if refusing_subtree and fault.fault_code in SUBTREE_REFUSED:
        return Outcome(Next.STEP, state={**state, "chunked": True, "offset": 0})
    return Outcome(Next.FAILED, fault=fault_document(fault), reason=f"device fault {fault.fault_code}")


def _values(parameters: tuple[ParameterValue, ...]) -> CacheUpdate:
    return CacheUpdate(values=[(p.name, p.value, p.type) for p in parameters])


def _value_result(parameters: tuple[ParameterValue, ...]) -> Document:
    # A list, not a mapping: parameter names contain dots, which MongoDB field names may not.
    return {"values": [{"name": p.name, "value": p.value, "type": p.type} for p in parameters]}


def apply_response(task: Document, state: Document, request: Message, response: Message) -> Outcome:
    """What the CPE's answer to this task's RPC means for the task and the parameter cache."""
    kind: str = task["kind"]
    if kind == "refresh":
        return _refresh_response(task, state, response)
    if kind == "add_object":
        return _add_object_response(task, state, request, response)
    if kind == "diagnostic":
        return _diagnostic_response(state, request, response)
    match response:
        case GetParameterValuesResponse():
            return Outcome(Next.DONE, result=_value_result(response.parameters), cache=_values(response.parameters))
        case GetParameterNamesResponse():
            names = [(p.name, p.writable) for p in response.parameters]
            result = {"names": [{"name": name, "writable": writable} for name, writable in names]}
            return Outcome(Next.DONE, result=result, cache=CacheUpdate(names=names))
        case SetParameterValuesResponse():
            return _set_values_response(request, response)
        case GetParameterAttributesResponse():
            attributes = [
                {"name": p.name, "notification": p.notification, "access_list": list(p.access_list)}
                for p in response.parameters
            ]
            return Outcome(Next.DONE, result={"attributes": attributes})
        case GetRPCMethodsResponse():
            return Outcome(Next.DONE, result={"methods": list(response.methods)})
        case GetQueuedTransfersResponse() | GetAllQueuedTransfersResponse():
            transfers = [transfer.model_dump() for transfer in response.transfers]
            return Outcome(Next.DONE, result={"transfers": transfers})
        case DownloadResponse() | UploadResponse():
            return _transfer_response(response)
        case ScheduleDownloadResponse():
            return Outcome(Next.AWAIT_TRANSFER, result={"accepted": True})
    return _other_response(kind, request, response)


def _other_response(kind: str, request: Message, response: Message) -> Outcome:
    if kind in {"reboot", "factory_reset"}:
        # Done only when the device proves it: M Reboot with our CommandKey, or BOOTSTRAP after a reset.
        return Outcome(Next.AWAIT_INFORM, result={"accepted": True})
    if kind == "delete_object":
        status = getattr(response, "status", 0)
        result = {"status": status, "applied_after_reboot": status == 1}
        object_name: str = getattr(request, "object_name")  # noqa: B009 - typed by the kind
        return Outcome(Next.DONE, result=result, cache=CacheUpdate(delete=[object_name]))
    return Outcome(Next.DONE, result={})


def _set_values_response(request: Message, response: SetParameterValuesResponse) -> Outcome:
    assert isinstance(request, SetParameterValues)
    # TR-069 A.3.2.1: status 1 means the values are committed but take effect after a reboot.
    result = {"status": response.status, "applied_after_reboot": response.status == 1}
    return Outcome(Next.DONE, result=result, cache=_values(request.parameters))


def _transfer_response(response: DownloadResponse | UploadResponse) -> Outcome:
    if response.status == 0:
        times = {"start_time": response.start_time, "complete_time": response.complete_time}
        return Outcome(Next.DONE, result={"status": 0, **times})
    # TR-069 A.3.2.8: status 1 means the transfer will be reported by TransferComplete.
    return Outcome(Next.AWAIT_TRANSFER, result={"status": 1})


def _refresh_response(task: Document, state: Document, response: Message) -> Outcome:
    if isinstance(response, GetParameterNamesResponse):
        names = [(p.name, p.writable) for p in response.parameters]
        leaves = [name for name, _ in names if not name.endswith(".")]
        next_state = {"names": leaves, "name_count": len(names)}
        cache = CacheUpdate(names=names)
        if not leaves:
            return Outcome(Next.DONE, result={"names": len(names), "values": 0}, cache=cache)
        return Outcome(Next.STEP, state=next_state, cache=cache)
    if not isinstance(response, GetParameterValuesResponse):
        raise TaskProtocolError(f"refresh got {type(response).__name__}")
    cache = _values(response.parameters)
    fetched = int(state.get("fetched", 0)) + len(response.parameters)
    if state.get("chunked"):
        offset = int(state.get("offset", 0)) + REFRESH_CHUNK
        if offset < len(state["names"]):
            return Outcome(Next.STEP, state={**state, "offset": offset, "fetched": fetched}, cache=cache)
    result = {"names": state.get("name_count", 0), "values": fetched}
    return Outcome(Next.DONE, result=result, cache=cache)


def _add_object_response(task: Document, state: Document, request: Message, response: Message) -> Outcome:
    if isinstance(response, AddObjectResponse):
        instance = f"{task['params']['object']}{response.instance_number}."
        result = {"instance_number": response.instance_number, "status": response.status, "object": instance}
        cache = CacheUpdate(names=[(instance, True)])
        if task["params"].get("values"):
            return Outcome(Next.STEP, result=result, state={"instance": response.instance_number}, cache=cache)
        return Outcome(Next.DONE, result=result, cache=cache)
    if isinstance(response, SetParameterValuesResponse) and isinstance(request, SetParameterValues):
        result = {
            "instance_number": state["instance"],
            "object": f"{task['params']['object']}{state['instance']}.",
            "set_status": response.status,
        }
        return Outcome(Next.DONE, result=result, cache=_values(request.parameters))
    raise TaskProtocolError(f"add_object got {type(response).__name__}")


def _diagnostic_response(state: Document, request: Message, response: Message) -> Outcome:
    if isinstance(response, SetParameterValuesResponse) and isinstance(request, SetParameterValues):
        obj = request.parameters[-1].name.removesuffix("DiagnosticsState")
        wait = {"object": obj, "await_event": diagnostics.COMPLETE_EVENT}
        return Outcome(Next.AWAIT_EVENT, result={"requested": True}, state=wait, cache=_values(request.parameters))
    if isinstance(response, GetParameterValuesResponse) and "object" in state:
        completed, found = diagnostics.results(state["object"], response)
        if completed:
            return Outcome(Next.DONE, result=found, cache=_values(response.parameters))
        reason = f"the device's diagnostics ended in {found['diagnostics_state'] or 'no state'}"
        return Outcome(Next.FAILED, result=found, cache=_values(response.parameters), reason=reason)
    raise TaskProtocolError(f"diagnostic got {type(response).__name__}")
