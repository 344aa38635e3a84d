"""The CWMP SOAP codec: `parse` bytes into an Envelope, `serialize` an Envelope into bytes."""

from cwmp.parse import detect_version, parse
from cwmp.serialize import serialize
from cwmp.xmlsafe import DEFAULT_LIMITS, ParserLimits

__all__ = ["DEFAULT_LIMITS", "ParserLimits", "detect_version", "parse", "serialize"]
