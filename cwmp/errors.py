"""Typed errors that say whose fault a failure is (h11 style)."""

from __future__ import annotations


class CwmpFault(Exception):
    """A CWMP fault we answer with (TR-069 A.5.1), e.g. 8000 Method not supported."""

    def __init__(self, code: int, string: str) -> None:
        super().__init__(f"{code} {string}")
        self.code = code
        self.string = string


class ProtocolError(Exception):
    """A protocol rule was broken. `fault_code` is the CWMP fault to answer with, if any."""

    def __init__(self, fault_code: int, reason: str) -> None:
        super().__init__(reason)
        self.fault_code = fault_code
        self.reason = reason


class RemoteProtocolError(ProtocolError):
    """The peer (usually the CPE) broke the rules."""


class LocalProtocolError(ProtocolError):
    """Our side tried an illegal move (a bug in the caller, not in the device)."""


class MalformedMessage(RemoteProtocolError):
    """Bytes that are not a readable CWMP SOAP envelope.

    `soap_faultcode` is "Client" except for an unknown mustUnderstand header, where SOAP 1.1
    section 4.2.3 requires the "MustUnderstand" fault code.
    """

    def __init__(self, reason: str, fault_code: int = 8003, soap_faultcode: str = "Client") -> None:
        super().__init__(fault_code, reason)
        self.soap_faultcode = soap_faultcode
