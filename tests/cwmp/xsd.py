"""Validate serialized CWMP envelopes against the BBF XSDs (see ../shared/bbf/README.md).

Importable by other test packages as `tests.cwmp.xsd`. Compiled schemas are cached.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SCHEMA_FILE_BY_NAMESPACE = {
    "urn:dslforum-org:cwmp-1-0": "cwmp-1-0.xsd",
    "urn:dslforum-org:cwmp-1-1": "cwmp-1-1.xsd",
    "urn:dslforum-org:cwmp-1-2": "cwmp-1-4.xsd",  # 1.2, 1.3 and 1.4 share it; 1-4 is the superset
}
# In the schemas only for information: deprecated NoMoreRequests has no global element.
_UNSCHEMATIZED_HEADERS = {"NoMoreRequests"}


def shared_dir() -> Path:
    override = os.environ.get("ACS_SHARED_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2].parent / "shared"


class _LocalResolver(etree.Resolver):
    """Maps the schemas' http:// imports to the local copies; nothing goes to the network."""

    def __init__(self, bbf: Path) -> None:
        super().__init__()
        self._bbf = bbf

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        if system_url.startswith("http://schemas.xmlsoap.org/soap/envelope"):
            return self.resolve_filename(str(self._bbf / "soap11/soap-envelope-1.1.xsd"), context)
        if system_url.startswith("http://schemas.xmlsoap.org/soap/encoding"):
            return self.resolve_filename(str(self._bbf / "soap11/soap-encoding-1.1.xsd"), context)
        for prefix in ("http://www.broadband-forum.org/cwmp/", "https://www.broadband-forum.org/cwmp/"):
            if system_url.startswith(prefix):
                return self.resolve_filename(str(self._bbf / system_url[len(prefix) :]), context)
        return None


@cache
def schema_for_namespace(namespace: str) -> etree.XMLSchema:
    bbf = shared_dir() / "bbf"
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalResolver(bbf))
    return etree.XMLSchema(etree.parse(str(bbf / SCHEMA_FILE_BY_NAMESPACE[namespace]), parser))


def _payload(body: etree._Element) -> etree._Element:
    first = body[0]
    if first.tag == f"{{{SOAP_ENV}}}Fault":
        detail = first.find("detail")
        assert detail is not None, "SOAP Fault without detail"
        return detail[0]
    return first


def validation_errors(data: bytes) -> list[str]:
    """Schema errors of the body payload and the cwmp header entries; [] when valid."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    body = root.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None, "no SOAP Body"
    elements = [_payload(body)]
    header = root.find(f"{{{SOAP_ENV}}}Header")
    if header is not None:
        elements += [h for h in header if etree.QName(h).localname not in _UNSCHEMATIZED_HEADERS]
    errors: list[str] = []
    for element in elements:
        schema = schema_for_namespace(etree.QName(element).namespace or "")
        if not schema.validate(element):
            errors += [f"{etree.QName(element).localname}: {e.message}" for e in schema.error_log]
    return errors


def assert_valid(data: bytes) -> None:
    errors = validation_errors(data)
    assert not errors, "\n".join(errors) + "\n" + data.decode("utf-8", "replace")
