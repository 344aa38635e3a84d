"""The ``diagnostic`` task as pure functions: request, wait for the event, read and judge results."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from cwmp import (
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValue,
    SetParameterValues,
    SetParameterValuesResponse,
)
from schemas.tasks import DiagnosticTask, TaskRequest
from tasks import diagnostics
from tasks.rpc import Next, apply_response, build_request

TR098_TYPES = {"InternetGatewayDevice.DeviceInfo.SoftwareVersion": "xsd:string"}
TR181_TYPES = {"Device.DeviceInfo.SoftwareVersion": "xsd:string"}


def _task(**params: object) -> dict[str, object]:
    return {"kind": "diagnostic", "params": params, "command_key": "k1"}


@pytest.mark.parametrize(
    ("types", "test", "target", "object_name"),
    [
        (TR098_TYPES, "ping", {"host": "8.8.8.8"}, "InternetGatewayDevice.IPPingDiagnostics."),
        (TR181_TYPES, "ping", {"host": "8.8.8.8"}, "Device.IP.Diagnostics.IPPing."),
        (TR098_TYPES, "traceroute", {"host": "example.net"}, "InternetGatewayDevice.TraceRouteDiagnostics."),
        (TR181_TYPES, "download", {"url": "http://x/f"}, "Device.IP.Diagnostics.DownloadDiagnostics."),
    ],
)
def test_first_step_sets_inputs_and_requested_on_the_object_of_the_data_model(
    types: dict[str, str], test: str, target: dict[str, str], object_name: str
) -> None:
    message = build_request(_task(test=test, **target), {}, types)
    assert isinstance(message, SetParameterValues)
    assert message.parameter_key == "k1"
    names = [parameter.name for parameter in message.parameters]
    assert names[-1] == object_name + "DiagnosticsState"
    assert message.parameters[-1].value == "Requested"
    assert all(name.startswith(object_name) for name in names)


def test_ping_inputs_are_typed() -> None:
    message = build_request(_task(test="ping", host="h", repetitions=4, timeout_ms=500), {}, TR098_TYPES)
    assert isinstance(message, SetParameterValues)
    typed = {p.name.rsplit(".", 1)[-1]: (p.value, p.type) for p in message.parameters}
    assert typed["Host"] == ("h", "xsd:string")
    assert typed["NumberOfRepetitions"] == ("4", "xsd:unsignedInt")
    assert typed["Timeout"] == ("500", "xsd:unsignedInt")


def test_unknown_root_cannot_build() -> None:
    with pytest.raises(diagnostics.DiagnosticsUnsupported):
        build_request(_task(test="ping", host="h"), {}, {})


def test_walk_through_request_event_and_results() -> None:
    task = _task(test="ping", host="h")
    request = build_request(task, {}, TR098_TYPES)
    outcome = apply_response(task, {}, request, SetParameterValuesResponse(status=0))
    assert outcome.next is Next.AWAIT_EVENT
    assert outcome.state == {"object": "InternetGatewayDevice.IPPingDiagnostics.",
                             "await_event": "8 DIAGNOSTICS COMPLETE"}
    read = build_request(task, outcome.state, TR098_TYPES)
    assert read == GetParameterValues(names=("InternetGatewayDevice.IPPingDiagnostics.",))
    obj = "InternetGatewayDevice.IPPingDiagnostics."
    answer = GetParameterValuesResponse(parameters=(
        ParameterValue(name=obj + "DiagnosticsState", value="Complete", type="xsd:string"),
        ParameterValue(name=obj + "AverageResponseTime", value="12", type="xsd:unsignedInt"),
    ))
    done = apply_response(task, outcome.state, read, answer)
    assert done.next is Next.DONE
    assert done.result is not None and done.result["diagnostics_state"] == "Complete"
    assert {"name": "AverageResponseTime", "value": "12"} in done.result["values"]


def test_an_error_state_fails_the_task_with_the_state_named() -> None:
    obj = "Device.IP.Diagnostics.IPPing."
    state = {"object": obj, "await_event": diagnostics.COMPLETE_EVENT}
    answer = GetParameterValuesResponse(parameters=(
        ParameterValue(name=obj + "DiagnosticsState", value="Error_CannotResolveHostName", type="xsd:string"),
    ))
    outcome = apply_response(_task(test="ping", host="x"), state, GetParameterValues(names=(obj,)), answer)
    assert outcome.next is Next.FAILED
    assert outcome.reason is not None and "Error_CannotResolveHostName" in outcome.reason


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "diagnostic", "test": "ping"},
        {"kind": "diagnostic", "test": "ping", "url": "http://x"},
        {"kind": "diagnostic", "test": "download", "host": "x"},
        {"kind": "diagnostic", "test": "download", "url": "file:///etc/passwd"},
        {"kind": "diagnostic", "test": "nslookup", "host": "x"},
    ],
)
def test_bad_requests_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(TaskRequest).validate_python(body)


def test_good_request_parses() -> None:
    parsed = TypeAdapter(TaskRequest).validate_python({"kind": "diagnostic", "test": "traceroute", "host": "a.b"})
    assert isinstance(parsed, DiagnosticTask)
