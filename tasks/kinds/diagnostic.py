"""``diagnostic``: the device's own test (TR-098 / TR-181 IPPing, TraceRoute, DownloadDiagnostics).

Step 1 sets the inputs and ``DiagnosticsState=Requested``; the task then waits for an Inform with
``8 DIAGNOSTICS COMPLETE`` (TR-069 3.7.1.5) and, resumed in that session, reads the results.
The objects and parameters per data model are in :mod:`tasks.diagnostics`.
"""

from __future__ import annotations

from cwmp import GetParameterValuesResponse, Message, SetParameterValues, SetParameterValuesResponse
from schemas.tasks import DiagnosticTask
from tasks import diagnostics
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import Document, Next, Outcome, cached_values, unexpected
from tasks.records import TaskRecord


def build(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    if "object" not in state:
        return diagnostics.request(task["params"], task["command_key"], diagnostics.root_of(types))
    return diagnostics.read_results(state["object"])


def answer(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if isinstance(response, SetParameterValuesResponse) and isinstance(request, SetParameterValues):
        obj = request.parameters[-1].name.removesuffix("DiagnosticsState")
        wait = {"object": obj, "await_event": diagnostics.COMPLETE_EVENT}
        return Outcome(
            Next.AWAIT_EVENT, result={"requested": True}, state=wait, cache=cached_values(request.parameters)
        )
    if isinstance(response, GetParameterValuesResponse) and "object" in state:
        completed, found = diagnostics.results(state["object"], response)
        cache = cached_values(response.parameters)
        if completed:
            return Outcome(Next.DONE, result=found, cache=cache)
        reason = f"the device's diagnostics ended in {found['diagnostics_state'] or 'no state'}"
        return Outcome(Next.FAILED, result=found, cache=cache, reason=reason)
    raise unexpected("diagnostic", response)


KINDS = (TaskKind("diagnostic", DiagnosticTask, build, answer, needs_cached_types=True),)
