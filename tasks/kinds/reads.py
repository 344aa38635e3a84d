"""Reads: they change nothing on the device, so a broken session re-sends them (TR-069 A.3.2)."""

from __future__ import annotations

from cwmp import (
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
)
from schemas.tasks import (
    GetAllQueuedTransfersTask,
    GetParameterAttributesTask,
    GetParameterNamesTask,
    GetParameterValuesTask,
    GetQueuedTransfersTask,
    GetRpcMethodsTask,
)
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import CacheUpdate, Document, Next, Outcome, cached_values, unexpected, value_result
from tasks.records import TaskRecord


def _values_answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, GetParameterValuesResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.DONE, result=value_result(response.parameters), cache=cached_values(response.parameters))


def _names_answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, GetParameterNamesResponse):
        raise unexpected(task["kind"], response)
    names = [(p.name, p.writable) for p in response.parameters]
    result = {"names": [{"name": name, "writable": writable} for name, writable in names]}
    return Outcome(Next.DONE, result=result, cache=CacheUpdate(names=names))


def _attributes_answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, GetParameterAttributesResponse):
        raise unexpected(task["kind"], response)
    attributes = [
        {"name": p.name, "notification": p.notification, "access_list": list(p.access_list)}
        for p in response.parameters
    ]
    return Outcome(Next.DONE, result={"attributes": attributes})


def _methods_answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, GetRPCMethodsResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.DONE, result={"methods": list(response.methods)})


def _transfers_answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, GetQueuedTransfersResponse | GetAllQueuedTransfersResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.DONE, result={"transfers": [transfer.model_dump() for transfer in response.transfers]})


KINDS = (
    TaskKind(
        "get_parameter_values",
        GetParameterValuesTask,
        lambda task, state, types: GetParameterValues(names=tuple(task["params"]["names"])),
        _values_answer,
        read=True,
    ),
    TaskKind(
        "get_parameter_attributes",
        GetParameterAttributesTask,
        lambda task, state, types: GetParameterAttributes(names=tuple(task["params"]["names"])),
        _attributes_answer,
        read=True,
    ),
    TaskKind(
        "get_parameter_names",
        GetParameterNamesTask,
        lambda task, state, types: GetParameterNames(
            parameter_path=task["params"]["path"], next_level=task["params"]["next_level"]
        ),
        _names_answer,
        read=True,
    ),
    TaskKind(
        "get_rpc_methods", GetRpcMethodsTask, lambda task, state, types: GetRPCMethods(), _methods_answer, read=True
    ),
    TaskKind(
        "get_queued_transfers",
        GetQueuedTransfersTask,
        lambda task, state, types: GetQueuedTransfers(),
        _transfers_answer,
        read=True,
    ),
    TaskKind(
        "get_all_queued_transfers",
        GetAllQueuedTransfersTask,
        lambda task, state, types: GetAllQueuedTransfers(),
        _transfers_answer,
        read=True,
    ),
)
