"""Envelope -> bytes, in the namespace of `envelope.version`, valid against that version's XSD.

Used by the ACS (responses and requests to CPEs) and by the CPE simulator (Informs and
responses), so every message of the union except UnknownMessage can be written.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from cwmp import models as m
from cwmp.errors import LocalProtocolError
from cwmp.timefmt import format_time
from cwmp.versions import CwmpVersion, version_order
from cwmp.wire import (
    FAULT_DETAIL,
    MESSAGE_FIELDS,
    MIN_VERSION,
    SOAP_ENC,
    SOAP_ENV,
    XSD,
    XSI,
    Array,
    Codec,
    FieldSpec,
    Repeated,
    Scalar,
    Struct,
)

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def serialize(envelope: m.Envelope) -> bytes:
    """UTF-8 bytes with an XML declaration. Raises LocalProtocolError for an impossible message."""
    cwmp_ns = envelope.version.namespace
    nsmap = {"soap-env": SOAP_ENV, "soap-enc": SOAP_ENC, "xsd": XSD, "xsi": XSI, "cwmp": cwmp_ns}
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=nsmap)
    try:
        _write_header(root, envelope, cwmp_ns)
        body = etree.SubElement(root, f"{{{SOAP_ENV}}}Body")
        _write_body(body, envelope.body, envelope.version)
    except ValueError as error:
        # lxml refuses text XML cannot carry (NUL and other control characters).
        raise LocalProtocolError(8002, f"cannot serialize {envelope.body.kind}: {error}") from error
    # Double-quoted declaration written by hand: some CPE XML parsers choke on lxml's quotes.
    return _XML_DECLARATION + bytes(etree.tostring(root, encoding="UTF-8"))


def _write_header(root: etree._Element, envelope: m.Envelope, cwmp_ns: str) -> None:
    entries = _header_entries(envelope)
    if not entries:
        return
    header = etree.SubElement(root, f"{{{SOAP_ENV}}}Header")
    for name, text, must_understand in entries:
        element = etree.SubElement(header, f"{{{cwmp_ns}}}{name}")
        element.set(f"{{{SOAP_ENV}}}mustUnderstand", must_understand)
        element.text = text


def _header_entries(envelope: m.Envelope) -> list[tuple[str, str, str]]:
    """(element, text, mustUnderstand) for each header the envelope carries (TR-069 3.4.2)."""
    _check_header_version(envelope)
    entries: list[tuple[str, str, str]] = []
    if envelope.id is not None:
        entries.append(("ID", envelope.id, "1"))
    if envelope.hold_requests is not None:
        entries.append(("HoldRequests", _bool(envelope.hold_requests), "1"))
    if envelope.no_more_requests is not None:
        # Deprecated since CWMP 1.1 and absent from the XSDs; written only when asked for.
        entries.append(("NoMoreRequests", _bool(envelope.no_more_requests), "0"))
    if envelope.session_timeout is not None:
        entries.append(("SessionTimeout", str(envelope.session_timeout), "0"))
    if envelope.supported_cwmp_versions is not None:
        entries.append(("SupportedCWMPVersions", envelope.supported_cwmp_versions, "0"))
    if envelope.use_cwmp_version is not None:
        entries.append(("UseCWMPVersion", envelope.use_cwmp_version, "1"))
    return entries


def _check_header_version(envelope: m.Envelope) -> None:
    # SessionTimeout (1.3) and the version headers (1.4) exist only in the cwmp-1-2 namespace.
    newer = envelope.session_timeout, envelope.supported_cwmp_versions, envelope.use_cwmp_version
    if any(value is not None for value in newer) and _older(envelope.version, CwmpVersion.V1_2):
        raise LocalProtocolError(
            8003, f"SessionTimeout and CWMP version headers need CWMP >= 1.3, not {envelope.version}"
        )


def _write_body(body: etree._Element, message: Any, version: CwmpVersion) -> None:
    cwmp_ns = version.namespace
    if isinstance(message, m.Fault):
        _write_fault(body, message, cwmp_ns)
        return
    if isinstance(message, m.UnknownMessage):
        raise LocalProtocolError(8002, f"UnknownMessage {message.name} cannot be serialized")
    cls = type(message)
    minimum = MIN_VERSION.get(cls)
    if minimum is not None and _older(version, minimum):
        raise LocalProtocolError(8000, f"{cls.__name__} does not exist in CWMP {version} (needs {minimum})")
    element = etree.SubElement(body, f"{{{cwmp_ns}}}{cls.__name__}")
    _write_fields(element, message, MESSAGE_FIELDS[cls])


def _write_fault(body: etree._Element, fault: m.Fault, cwmp_ns: str) -> None:
    # TR-069 3.5: faultcode Client/Server, faultstring "CWMP fault", detail holds cwmp:Fault.
    element = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    code = fault.soap_faultcode if ":" in fault.soap_faultcode else f"soap-env:{fault.soap_faultcode}"
    etree.SubElement(element, "faultcode").text = code
    etree.SubElement(element, "faultstring").text = "CWMP fault"
    detail = etree.SubElement(element, "detail")
    _write_fields(etree.SubElement(detail, f"{{{cwmp_ns}}}Fault"), fault, FAULT_DETAIL)


def _write_fields(parent: etree._Element, model: m.CwmpModel, fields: tuple[FieldSpec, ...]) -> None:
    for spec in fields:
        value = getattr(model, spec.attr)
        if isinstance(spec.codec, Repeated):
            for item in value:
                _write(etree.SubElement(parent, spec.element), item, spec.codec.item)
        elif spec.codec is Scalar.TYPED_VALUE:
            xsi_type = model.type if isinstance(model, m.ParameterValue) else "xsd:string"
            _write_typed_value(etree.SubElement(parent, spec.element), value, xsi_type)
        else:
            _write(etree.SubElement(parent, spec.element), value, spec.codec)


def _write(element: etree._Element, value: Any, codec: Codec) -> None:
    if isinstance(codec, Scalar):
        element.text = _scalar_text(value, codec)
    elif isinstance(codec, Struct):
        _write_fields(element, value, codec.fields)
    elif isinstance(codec, Array):
        _write_array(element, value, codec)


def _write_array(element: etree._Element, items: tuple[Any, ...], array: Array) -> None:
    # SOAP 1.1 section 5.4.2: arrayType names the item type and the item count.
    element.set(f"{{{SOAP_ENC}}}arrayType", f"{array.array_type}[{len(items)}]")
    for item in items:
        _write(etree.SubElement(element, array.item_element), item, array.item)


def _write_typed_value(element: etree._Element, value: str, xsi_type: str) -> None:
    # TR-069 A.2.1: every Value carries xsi:type; the string is written as stored.
    element.set(f"{{{XSI}}}type", xsi_type or "xsd:string")
    element.text = value


def _scalar_text(value: Any, codec: Scalar) -> str:
    if codec is Scalar.BOOL:
        return _bool(value)
    if codec is Scalar.TIME:
        return format_time(value)
    return str(value)


def _bool(value: bool) -> str:
    # xsd:boolean allows 1/0 and true/false; "1"/"0" is what TR-069 examples and devices use.
    return "1" if value else "0"


def available_in(message: Any, version: CwmpVersion) -> bool:
    """Whether ``message`` exists in CWMP ``version`` (e.g. ScheduleDownload needs 1.2)."""
    minimum = MIN_VERSION.get(type(message))
    return minimum is None or not _older(version, minimum)


def _older(version: CwmpVersion, minimum: CwmpVersion) -> bool:
    return version_order(version) < version_order(minimum)
