"""Bytes -> Envelope. Strict about safety (see xmlsafe), tolerant about what real firmware does.

Tolerated, each seen in ../shared/samples: any namespace prefixes, `soap:` bound to the SOAP
encoding namespace, elements in any order (AVM sends MaxEnvelopes before Event), zero-padded
arrayType and numbers ("05"), booleans as 1/0/true/false, whitespace around numbers and booleans,
missing or wrong xsi:type (kept as sent), declared array sizes that do not match, no SOAP Header,
an unqualified SOAP faultcode. String values are kept exactly as sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree
from pydantic import ValidationError

from cwmp import models as m
from cwmp.errors import MalformedMessage
from cwmp.timefmt import parse_time
from cwmp.versions import BASE_VERSION_OF_NAMESPACE, CwmpVersion, is_cwmp_namespace, parse_version_list
from cwmp.wire import (
    FAULT_DETAIL,
    MESSAGE_BY_NAME,
    MESSAGE_FIELDS,
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
from cwmp.xmlsafe import DEFAULT_LIMITS, ParserLimits, load

_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_HEADER_FIELDS = {
    "ID": "id",
    "HoldRequests": "hold_requests",
    "NoMoreRequests": "no_more_requests",
    "SessionTimeout": "session_timeout",
    "SupportedCWMPVersions": "supported_cwmp_versions",
    "UseCWMPVersion": "use_cwmp_version",
}
_HEADER_CODECS = {
    "hold_requests": Scalar.BOOL,
    "no_more_requests": Scalar.BOOL,
    "session_timeout": Scalar.INT,
}


def parse(data: bytes, limits: ParserLimits = DEFAULT_LIMITS) -> m.Envelope:
    """Parse one SOAP envelope. Raises MalformedMessage with the reason when it cannot."""
    root = load(data, limits)
    if _local(root.tag) != "Envelope" or _namespace(root.tag) != SOAP_ENV:
        raise MalformedMessage(f"not a SOAP 1.1 Envelope: root element is {root.tag}")
    header = _find(root, "Header", SOAP_ENV)
    body_element = _body_element(root)
    headers, header_namespace = _parse_header(header) if header is not None else ({}, None)
    body, body_namespace = _parse_body(body_element)
    namespace = body_namespace or header_namespace
    version = detect_version(namespace, headers)
    envelope: m.Envelope = _build(m.Envelope, {**headers, "body": body, "version": version}, "Envelope")
    return envelope


def detect_version(namespace: str | None, headers: dict[str, Any]) -> CwmpVersion:
    """Protocol version of a received envelope.

    1. The namespace of the RPC element (or of detail/cwmp:Fault, or of the cwmp header
       elements when the body has none) gives 1.0, 1.1 or 1.2; no cwmp namespace at all -> 1.0.
    2. Only in the cwmp-1-2 namespace (1.3 and 1.4 reuse it, TR-069 Amd 4/5):
       - UseCWMPVersion naming 1.2, 1.3 or 1.4 decides (the version chosen for the session);
       - otherwise the highest of: 1.2; 1.3 when SessionTimeout is present (a header that only
         exists since 1.3); the highest 1.2-family version in SupportedCWMPVersions (a 1.4
         header: a CPE listing "...,1.4" speaks 1.4).
    Headers never move a cwmp-1-0 or cwmp-1-1 message to another version: the namespace is
    what the schema of that message is.
    """
    base = BASE_VERSION_OF_NAMESPACE.get(namespace or "", CwmpVersion.V1_0)
    if base is not CwmpVersion.V1_2:
        return base
    family = (CwmpVersion.V1_2, CwmpVersion.V1_3, CwmpVersion.V1_4)
    chosen = [v for v in parse_version_list(headers.get("use_cwmp_version")) if v in family]
    if chosen:
        return chosen[-1]
    candidates = [CwmpVersion.V1_2]
    if headers.get("session_timeout") is not None:
        candidates.append(CwmpVersion.V1_3)
    candidates += [v for v in parse_version_list(headers.get("supported_cwmp_versions")) if v in family]
    return max(candidates, key=family.index)


def _body_element(root: etree._Element) -> etree._Element:
    body = _find(root, "Body", SOAP_ENV)
    if body is None:
        raise MalformedMessage("SOAP Envelope has no Body")
    children = _elements(body)
    if not children:
        raise MalformedMessage("SOAP Body is empty")
    if len(children) > 1:
        # TR-069 3.5: exactly one RPC per envelope (MaxEnvelopes is 1 in both directions).
        raise MalformedMessage(f"SOAP Body holds {len(children)} elements, expected one")
    return children[0]


def _parse_header(header: etree._Element) -> tuple[dict[str, Any], str | None]:
    values: dict[str, Any] = {}
    namespace: str | None = None
    for element in _elements(header):
        attr = _HEADER_FIELDS.get(_local(element.tag))
        if attr is None or not is_cwmp_namespace(_namespace(element.tag)):
            _check_must_understand(element)
            continue
        namespace = namespace or _namespace(element.tag)
        values[attr] = _decode_scalar(element, _HEADER_CODECS.get(attr, Scalar.TEXT), f"Header/{attr}")
    return values, namespace


def _check_must_understand(element: etree._Element) -> None:
    # SOAP 1.1 section 4.2.3 (which TR-069 3.4.2 builds on): a header entry with
    # mustUnderstand="1" that the recipient does not understand MUST be answered with a
    # MustUnderstand fault and the message not processed. Unknown optional entries are ignored.
    flag = element.get(f"{{{SOAP_ENV}}}mustUnderstand", element.get("mustUnderstand", "0"))
    if flag.strip() in ("1", "true"):
        raise MalformedMessage(
            f"header element {element.tag} has mustUnderstand=1 and is not understood",
            soap_faultcode="MustUnderstand",
        )


def _parse_body(element: etree._Element) -> tuple[Any, str | None]:
    name, namespace = _local(element.tag), _namespace(element.tag)
    if name == "Fault" and namespace == SOAP_ENV:
        return _parse_soap_fault(element)
    if namespace is None:
        raise MalformedMessage(f"body element {name} has no namespace (expected a cwmp namespace)")
    cls = MESSAGE_BY_NAME.get(name)
    if cls is None or not is_cwmp_namespace(namespace):
        # Kicked, SetVouchers, ChangeDUState, vendor RPCs: the session answers 8000.
        return m.UnknownMessage(name=name, namespace=namespace), namespace
    values = _decode_fields(element, MESSAGE_FIELDS[cls], cls, name)
    return _build(cls, values, name), namespace


def _parse_soap_fault(element: etree._Element) -> tuple[m.Fault, str | None]:
    faultcode = _text(_find(element, "faultcode")).strip()
    # TR-069 3.5: faultcode is "Client"/"Server", unqualified or SOAP-ENV-qualified (the
    # Thomson 780 sends it bare); keep only the local part.
    soap_faultcode = faultcode.rsplit(":", 1)[-1] or "Client"
    detail = _find(element, "detail")
    cwmp_fault = _find(detail, "Fault") if detail is not None else None
    if cwmp_fault is None:
        # A SOAP fault from the peer's SOAP stack without a CWMP detail: record it as an
        # internal error of the peer rather than losing the faultstring.
        fault_string = _text(_find(element, "faultstring"))
        return m.Fault(fault_code=9002, fault_string=fault_string, soap_faultcode=soap_faultcode), None
    values = _decode_fields(cwmp_fault, FAULT_DETAIL, m.Fault, "Fault")
    return _build(m.Fault, {**values, "soap_faultcode": soap_faultcode}, "Fault"), _namespace(cwmp_fault.tag)


def _decode_fields(
    element: etree._Element, fields: tuple[FieldSpec, ...], model: type[m.CwmpModel], path: str
) -> dict[str, Any]:
    """One pass over the children: the first child of each name wins (elements in any order);
    repeated specs gather every child of their name; an absent field gets `_missing_value`."""
    plan = _plan(fields, model)
    values: dict[str, Any] = {}
    gathered: dict[str, list[etree._Element]] = {}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # a comment or processing instruction the parser kept
        spec = plan.by_element.get(_local(tag))
        if spec is None:
            continue  # an element this message does not define: ignored
        codec = spec.codec
        if isinstance(codec, Repeated):
            gathered.setdefault(spec.attr, []).append(child)
        elif spec.attr in values:
            continue
        elif codec is Scalar.TEXT or codec is Scalar.TYPED_VALUE:
            values[spec.attr] = _text(child)  # no path built for the commonest field (text cannot fail)
            if codec is Scalar.TYPED_VALUE:
                values["type"] = _xsi_type(child)
        else:
            values[spec.attr] = _decode(child, codec, f"{path}/{spec.element}")
    for spec, item in plan.repeated:
        where = f"{path}/{spec.element}"
        values[spec.attr] = tuple(_decode_struct(child, item, where) for child in gathered.get(spec.attr, ()))
    for spec in plan.required:
        if spec.attr not in values:
            values[spec.attr] = _missing_value(spec, f"{path}/{spec.element}")
    return values


@dataclass(frozen=True)
class _Plan:
    fields: tuple[FieldSpec, ...]
    by_element: dict[str, FieldSpec]
    repeated: tuple[tuple[FieldSpec, Struct], ...]  # with the struct each repetition holds
    required: tuple[FieldSpec, ...]  # not Repeated and without a default in the model


_PLANS: dict[tuple[int, type[m.CwmpModel]], _Plan] = {}


def _plan(fields: tuple[FieldSpec, ...], model: type[m.CwmpModel]) -> _Plan:
    """The decoding plan of a field list for a model, made once (field lists are module constants of
    cwmp.wire; the identity check guards against a reused id)."""
    key = (id(fields), model)  # one field list can serve several models (the empty one does)
    plan = _PLANS.get(key)
    if plan is None or plan.fields is not fields:
        plan = _Plan(
            fields=fields,
            by_element={spec.element: spec for spec in reversed(fields)},
            repeated=tuple((spec, spec.codec.item) for spec in fields if isinstance(spec.codec, Repeated)),
            required=tuple(
                spec for spec in fields if not isinstance(spec.codec, Repeated) and not _has_default(model, spec.attr)
            ),
        )
        _PLANS[key] = plan
    return plan


def _missing_value(spec: FieldSpec, where: str) -> Any:
    # Tolerate absent strings and times (e.g. an EventStruct without CommandKey); an absent
    # number or boolean has no sensible value.
    if spec.codec is Scalar.TEXT:
        return ""
    if spec.codec is Scalar.TIME:
        return None
    if isinstance(spec.codec, Array):
        return ()
    raise MalformedMessage(f"{where}: missing element")


def _has_default(model: type[m.CwmpModel], attr: str) -> bool:
    field = model.model_fields.get(attr)
    return field is not None and not field.is_required()


def _decode(element: etree._Element, codec: Codec, where: str) -> Any:
    if isinstance(codec, Scalar):
        return _decode_scalar(element, codec, where)
    if isinstance(codec, Struct):
        return _decode_struct(element, codec, where)
    if isinstance(codec, Array):
        # Every child is an item whatever its name; the declared arrayType size is ignored
        # (the Cisco femto dump declares 213 items, Broadcom zero-pads it as [0008]).
        return tuple(_decode(item, codec.item, f"{where}[{i}]") for i, item in enumerate(_elements(element)))
    raise MalformedMessage(f"{where}: repeated element where one was expected")


def _decode_struct(element: etree._Element, struct: Struct, where: str) -> Any:
    return _build(struct.model, _decode_fields(element, struct.fields, struct.model, where), where)


def _decode_scalar(element: etree._Element, codec: Scalar, where: str) -> Any:
    text = _text(element)
    if codec is Scalar.INT:
        if not _INTEGER.match(text.strip()):
            raise MalformedMessage(f"{where}: not an integer: {text[:40]!r}")
        return int(text.strip())
    if codec is Scalar.BOOL:
        return _boolean(text, where)
    if codec is Scalar.TIME:
        return parse_time(text)
    return text


def _boolean(text: str, where: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true"):
        return True
    if word in ("0", "false"):
        return False
    raise MalformedMessage(f"{where}: not a boolean: {text[:40]!r}")


def _xsi_type(element: etree._Element) -> str:
    """The Value's xsi:type with the XML Schema namespace written as "xsd:" whatever the prefix.

    Devices send wrong types (Cisco femto: strings as xsd:unsignedInt); we keep the local name
    as sent, and default to xsd:string when there is none (TR-069 A.2.1 default).
    """
    raw = element.get(f"{{{XSI}}}type")
    if raw is None or not raw.strip():
        return "xsd:string"
    prefix, _, local = raw.strip().rpartition(":")
    if prefix == "xsd":
        # Written as sent either way; lxml builds nsmap anew on every call (2 µs a Value).
        return f"xsd:{local}"
    namespace = element.nsmap.get(prefix or None)
    return f"xsd:{local}" if namespace == XSD else raw.strip()


def _build(model: type[m.CwmpModel], values: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise MalformedMessage(f"{where}: invalid content: {error.errors()[0]['msg']}") from error


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _find(parent: etree._Element, name: str, namespace: str | None = None) -> etree._Element | None:
    """First child element called `name` in any namespace (or in `namespace` when given)."""
    for child in _elements(parent):
        if _local(child.tag) == name and (namespace is None or _namespace(child.tag) == namespace):
            return child
    return None


def _text(element: etree._Element | None) -> str:
    return "" if element is None or element.text is None else element.text


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str | None:
    return tag[1:].partition("}")[0] if tag.startswith("{") else None
