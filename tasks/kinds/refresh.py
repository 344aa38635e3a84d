"""``refresh``: a subtree's names, then its values, in as many RPCs as the device needs.

TR-069 A.3.2.2: a partial path in GetParameterValues returns the whole subtree in one answer;
devices short of memory refuse that with 9004 (resources exceeded) or 9002, so refresh then
falls back to explicit names in chunks of REFRESH_CHUNK. Progress lives in the task's ``state``.
"""

from __future__ import annotations

from cwmp import (
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    Message,
)
from schemas.tasks import RefreshTask
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import CacheUpdate, Document, Next, Outcome, cached_values, failed_by_fault, unexpected
from tasks.records import TaskRecord

REFRESH_CHUNK = 100
SUBTREE_REFUSED = frozenset({9002, 9004})


def build(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    path: str = task["params"]["path"]
    if "names" not in state:
        return GetParameterNames(parameter_path=path, next_level=False)
    if state.get("chunked"):
        offset = int(state.get("offset", 0))
        return GetParameterValues(names=tuple(state["names"][offset : offset + REFRESH_CHUNK]))
    return GetParameterValues(names=(path,))


def answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if isinstance(response, GetParameterNamesResponse):
        names = [(p.name, p.writable) for p in response.parameters]
        leaves = [name for name, _ in names if not name.endswith(".")]
        cache = CacheUpdate(names=names)
        if not leaves:
            return Outcome(Next.DONE, result={"names": len(names), "values": 0}, cache=cache)
        return Outcome(Next.STEP, state={"names": leaves, "name_count": len(names)}, cache=cache)
    if not isinstance(response, GetParameterValuesResponse):
        raise unexpected("refresh", response)
    cache = cached_values(response.parameters)
    fetched = int(state.get("fetched", 0)) + len(response.parameters)
    if state.get("chunked"):
        offset = int(state.get("offset", 0)) + REFRESH_CHUNK
        if offset < len(state["names"]):
            return Outcome(Next.STEP, state={**state, "offset": offset, "fetched": fetched}, cache=cache)
    result = {"names": state.get("name_count", 0), "values": fetched}
    return Outcome(Next.DONE, result=result, cache=cache)


def fault(task: TaskRecord, state: Document, device_fault: Fault) -> Outcome:
    refusing_subtree = "names" in state and not state.get("chunked")
    if refusing_subtree and device_fault.fault_code in SUBTREE_REFUSED:
        return Outcome(Next.STEP, state={**state, "chunked": True, "offset": 0})
    return failed_by_fault(task, state, device_fault)


KINDS = (TaskKind("refresh", RefreshTask, build, answer, fault, read=True),)
