"""Pure builder of the ``diagnostic`` task: the device's own TR-069 diagnostics.

Three steps (the ``DiagnosticsState`` protocol of the TR-098 and TR-181 diagnostics objects):

1. SetParameterValues of the test's inputs plus ``DiagnosticsState = Requested`` on the object
   for the device's data model (TR-098 ``InternetGatewayDevice.IPPingDiagnostics.``, TR-181
   ``Device.IP.Diagnostics.IPPing.``, ...); the ParameterKey is the task's key.
2. Wait for an Inform carrying ``8 DIAGNOSTICS COMPLETE`` (TR-069 3.7.1.5): the device runs the
   test after the session ends and opens a new one to say so.
3. GetParameterValues of the whole object: its ``DiagnosticsState`` says whether the test
   completed, and the other values are the results.

No I/O: :mod:`tasks.rpc` calls these with the task, its state and the device's cached types.
"""

from __future__ import annotations

from collections.abc import Iterable

from cwmp import GetParameterValues, GetParameterValuesResponse, ParameterValue, SetParameterValues
from tasks.records import Document

COMPLETE_EVENT = "8 DIAGNOSTICS COMPLETE"
TR098 = "InternetGatewayDevice."
TR181 = "Device."
OBJECTS: dict[str, dict[str, str]] = {
    TR098: {
        "ping": "InternetGatewayDevice.IPPingDiagnostics.",
        "traceroute": "InternetGatewayDevice.TraceRouteDiagnostics.",
        "download": "InternetGatewayDevice.DownloadDiagnostics.",
    },
    TR181: {
        "ping": "Device.IP.Diagnostics.IPPing.",
        "traceroute": "Device.IP.Diagnostics.TraceRoute.",
        "download": "Device.IP.Diagnostics.DownloadDiagnostics.",
    },
}
# Task parameter -> (diagnostics parameter, xsi:type); the same names in TR-098 and TR-181.
INPUTS: dict[str, dict[str, tuple[str, str]]] = {
    "ping": {
        "host": ("Host", "xsd:string"),
        "repetitions": ("NumberOfRepetitions", "xsd:unsignedInt"),
        "timeout_ms": ("Timeout", "xsd:unsignedInt"),
    },
    "traceroute": {
        "host": ("Host", "xsd:string"),
        "timeout_ms": ("Timeout", "xsd:unsignedInt"),
        "max_hops": ("MaxHopCount", "xsd:unsignedInt"),
    },
    "download": {"url": ("DownloadURL", "xsd:string")},
}
# TR-098 DownloadDiagnostics says "Completed", the IPPing/TraceRoute objects and TR-181 "Complete".
COMPLETED_STATES = frozenset({"Complete", "Completed"})


class DiagnosticsUnsupported(ValueError):
    """The device's data model has no object for this test."""


def root_of(names: Iterable[str]) -> str:
    """The data model root of a device, from any of its cached parameter names."""
    for name in names:
        if name.startswith(TR098):
            return TR098
        if name.startswith(TR181):
            return TR181
    raise DiagnosticsUnsupported("the device's data model root is unknown (no cached parameters yet)")


def object_for(test: str, root: str) -> str:
    return OBJECTS[root][test]


def request(params: Document, key: str, root: str) -> SetParameterValues:
    """Step 1: the test's inputs and DiagnosticsState = Requested, set in one RPC."""
    obj = object_for(params["test"], root)
    values = [
        ParameterValue(name=obj + name, value=str(params[field]), type=value_type)
        for field, (name, value_type) in INPUTS[params["test"]].items()
        if params.get(field) is not None
    ]
    values.append(ParameterValue(name=obj + "DiagnosticsState", value="Requested", type="xsd:string"))
    return SetParameterValues(parameters=tuple(values), parameter_key=key)


def read_results(obj: str) -> GetParameterValues:
    """Step 3: the whole diagnostics object (a partial path: TR-069 A.3.2.2)."""
    return GetParameterValues(names=(obj,))


def results(obj: str, response: GetParameterValuesResponse) -> tuple[bool, Document]:
    """Whether the test completed, and its results with names relative to the object."""
    values = [
        {"name": parameter.name[len(obj) :], "value": parameter.value}
        for parameter in response.parameters
        if parameter.name.startswith(obj)
    ]
    state = next((value["value"] for value in values if value["name"] == "DiagnosticsState"), "")
    return state in COMPLETED_STATES, {"object": obj, "diagnostics_state": state, "values": values}
