"""Sans-IO CWMP (TR-069) protocol core: message models, SOAP codec, ACS session state machine.

No I/O, no clock, no randomness: bytes and values in, bytes and values out.
"""

from cwmp.codec import DEFAULT_LIMITS, ParserLimits, parse, serialize
from cwmp.device_id import make_device_id
from cwmp.errors import CwmpFault, LocalProtocolError, MalformedMessage, ProtocolError, RemoteProtocolError
from cwmp.faults import FAULT_STRINGS, make_fault
from cwmp.models import *  # noqa: F403
from cwmp.models import __all__ as _models_all
from cwmp.versions import CwmpVersion, negotiate

__all__ = [
    "DEFAULT_LIMITS",
    "FAULT_STRINGS",
    "CwmpFault",
    "CwmpVersion",
    "LocalProtocolError",
    "MalformedMessage",
    "ParserLimits",
    "ProtocolError",
    "RemoteProtocolError",
    "make_device_id",
    "make_fault",
    "negotiate",
    "parse",
    "serialize",
    *_models_all,
]
