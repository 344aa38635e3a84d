"""SOAP Fault with a CWMP fault detail (TR-069 3.5 and A.5), and body elements we do not know."""

from __future__ import annotations

from typing import Literal

from cwmp.models.base import CwmpModel
from cwmp.models.structs import SetParameterValuesFault


class Fault(CwmpModel):
    """A SOAP Fault whose detail holds cwmp:Fault. Sent by either side."""

    kind: Literal["Fault"] = "Fault"
    fault_code: int
    fault_string: str = ""
    set_parameter_values_faults: tuple[SetParameterValuesFault, ...] = ()
    # SOAP faultcode without prefix: "Client" or "Server" (TR-069 3.5).
    soap_faultcode: str = "Client"


class UnknownMessage(CwmpModel):
    """A body element that is no RPC we implement (Kicked, vendor RPCs...): parsed, never sent.

    Kept so the session can answer it with fault 8000 instead of dropping the connection.
    """

    kind: Literal["UnknownMessage"] = "UnknownMessage"
    name: str
    namespace: str
