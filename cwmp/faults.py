"""Standard CWMP fault codes and strings (TR-069 A.5.1, as enumerated in cwmp-1-4.xsd).

`make_fault` builds the SOAP Fault body we send (TR-069 3.5: faultstring "CWMP fault", the
detail carries cwmp:Fault with FaultCode/FaultString).
"""

from __future__ import annotations

from cwmp.models.fault import Fault

# ACS fault codes (8000-8005 since CWMP 1.0, 8006 added in 1.4) and CPE fault codes
# (9000-9013 in 1.0, 9014-9019 in 1.1, 9020-9032 in 1.2).
FAULT_STRINGS: dict[int, str] = {
    8000: "Method not supported",
    8001: "Request denied (no reason specified)",
    8002: "Internal error",
    8003: "Invalid arguments",
    8004: "Resources exceeded",
    8005: "Retry request",
    8006: "ACS version incompatible with CPE",
    9000: "Method not supported",
    9001: "Request denied (no reason specified)",
    9002: "Internal error",
    9003: "Invalid arguments",
    9004: "Resources exceeded",
    9005: "Invalid parameter name",
    9006: "Invalid parameter type",
    9007: "Invalid parameter value",
    9008: "Attempt to set a non-writable parameter",
    9009: "Notification request rejected",
    9010: "File transfer failure",
    9011: "Upload failure",
    9012: "File transfer server authentication failure",
    9013: "Unsupported protocol for file transfer",
    9014: "File transfer failure: unable to join multicast group",
    9015: "File transfer failure: unable to contact file server",
    9016: "File transfer failure: unable to access file",
    9017: "File transfer failure: unable to complete download",
    9018: "File transfer failure: file corrupted",
    9019: "File transfer failure: file authentication failure",
    9020: "File transfer failure: unable to complete download within specified time windows",
    9021: "Cancelation of file transfer not permitted in current transfer state",
    9022: "Invalid UUID Format",
    9023: "Unknown Execution Environment",
    9024: "Disabled Execution Environment",
    9025: "Deployment Unit to Execution Environment Mismatch",
    9026: "Duplicate Deployment Unit",
    9027: "System Resources Exceeded",
    9028: "Unknown Deployment Unit",
    9029: "Invalid Deployment Unit State",
    9030: "Invalid Deployment Unit Update - Downgrade not permitted",
    9031: "Invalid Deployment Unit Update - Version not specified",
    9032: "Invalid Deployment Unit Update - Version already exists",
}

# TR-069 A.5.1 gives each fault a type: "Client" when the request itself was wrong (bad
# arguments, names, values), "Server" otherwise. TR-069 3.5 lets the receiver ignore it.
CLIENT_FAULTS: frozenset[int] = frozenset(
    {8003, 9003, 9005, 9006, 9007, 9008, 9022, 9023, 9024, 9025, 9026, 9028, 9029, 9030, 9031, 9032}
)


def fault_string(code: int) -> str:
    if code in FAULT_STRINGS:
        return FAULT_STRINGS[code]
    if 8800 <= code <= 8899 or 9800 <= code <= 9899:
        return "Vendor defined fault"
    return "Unknown fault"


def soap_faultcode(code: int) -> str:
    return "Client" if code in CLIENT_FAULTS else "Server"


def make_fault(code: int, string: str | None = None) -> Fault:
    """A Fault body with the standard string for `code` unless `string` is given."""
    return Fault(
        fault_code=code,
        fault_string=fault_string(code) if string is None else string,
        soap_faultcode=soap_faultcode(code),
    )
