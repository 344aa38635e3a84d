"""Hostile and broken input: rejected with MalformedMessage, nothing read, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from cwmp import xmlsafe
from cwmp.codec import ParserLimits, parse
from cwmp.errors import MalformedMessage

ENV = (
    '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-0">{}</soap-env:Envelope>'
)


def envelope(inner: str) -> bytes:
    return ENV.format(inner).encode()


def rejected(data: bytes, limits: ParserLimits | None = None) -> str:
    with pytest.raises(MalformedMessage) as caught:
        parse(data) if limits is None else parse(data, limits)
    return caught.value.reason


def test_billion_laughs_is_rejected_before_expansion() -> None:
    entities = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    lol = "".join(entities)
    data = f'<?xml version="1.0"?><!DOCTYPE lolz [{lol}]>' + ENV.format("<soap-env:Body>&l9;</soap-env:Body>")
    assert "DTD" in rejected(data.encode())


def test_xxe_to_a_local_file_is_rejected_and_nothing_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = (
        f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        + ENV.format("<soap-env:Body><cwmp:Reboot><CommandKey>&xxe;</CommandKey></cwmp:Reboot></soap-env:Body>")
    ).encode()
    reason = rejected(data)
    assert "DTD" in reason and "TOP-SECRET" not in reason


def test_xxe_to_http_is_rejected_without_network() -> None:
    data = (
        '<!DOCTYPE x [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/evil">]>'
        + ENV.format("<soap-env:Body><cwmp:Reboot><CommandKey>&xxe;</CommandKey></cwmp:Reboot></soap-env:Body>")
    ).encode()
    assert "DTD" in rejected(data)


def test_external_dtd_and_parameter_entities_are_rejected() -> None:
    assert "DTD" in rejected(b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><x/>')
    assert "DTD" in rejected(b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><x/>')


def test_dtd_hidden_in_utf16_is_rejected() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16")
    assert "DTD" in rejected(data)


def test_undefined_entity_is_not_well_formed() -> None:
    assert "not well-formed" in rejected(envelope("<soap-env:Body>&xxe;</soap-env:Body>"))


def test_oversized_message_is_rejected_before_parsing() -> None:
    reason = rejected(b"<" * 2048, ParserLimits(max_bytes=1024))
    assert "too large" in reason


def test_too_deep_message_is_rejected() -> None:
    deep = "<a>" * 100 + "</a>" * 100
    assert "too deep" in rejected(envelope(f"<soap-env:Body>{deep}</soap-env:Body>"))


@pytest.mark.parametrize("levels", [65, 100])
def test_a_message_past_the_depth_limit_is_too_deep(levels: int) -> None:
    """A small message is parsed in one call and its depth checked after the parse (fault 8004)."""
    deep = "<a>" * (levels - 2) + "</a>" * (levels - 2)  # below Envelope and Body
    with pytest.raises(MalformedMessage) as caught:
        parse(envelope(f"<soap-env:Body>{deep}</soap-env:Body>"))
    assert "too deep" in caught.value.reason and caught.value.fault_code == 8004
    assert xmlsafe.load(b"<a>" * 64 + b"x" + b"</a>" * 64).tag == "a", "64 levels are allowed"
    # deeper than libxml2's own limit (256): the parse itself fails
    assert "Excessive depth" in rejected(envelope("<soap-env:Body>" + "<a>" * 300 + "</a>" * 300 + "</soap-env:Body>"))


def test_too_many_elements_is_rejected() -> None:
    many = "<a/>" * 50
    assert "too many elements" in rejected(
        envelope(f"<soap-env:Body>{many}</soap-env:Body>"), ParserLimits(max_elements=20)
    )


@pytest.mark.parametrize("data", [b"", b"   ", b"not xml at all", b"<a><b></a>", b"\xff\xfe\x00<"])
def test_not_xml(data: bytes) -> None:
    assert "not well-formed" in rejected(data)


def test_not_a_soap_envelope() -> None:
    assert "not a SOAP 1.1 Envelope" in rejected(b"<Envelope/>")
    soap12 = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    assert "not a SOAP 1.1 Envelope" in rejected(soap12)


def test_soap_without_body() -> None:
    assert "no Body" in rejected(envelope("<soap-env:Header/>"))


def test_empty_body() -> None:
    assert "Body is empty" in rejected(envelope("<soap-env:Body>  </soap-env:Body>"))


def test_two_messages_in_one_body() -> None:
    body = "<soap-env:Body><cwmp:GetRPCMethods/><cwmp:GetRPCMethods/></soap-env:Body>"
    assert "expected one" in rejected(envelope(body))


def test_body_element_without_namespace() -> None:
    assert "no namespace" in rejected(envelope("<soap-env:Body><Inform/></soap-env:Body>"))


def test_bad_numbers_and_booleans_name_the_element() -> None:
    bad_int = "<cwmp:SetParameterValuesResponse><Status>x</Status></cwmp:SetParameterValuesResponse>"
    assert "Status" in rejected(envelope(f"<soap-env:Body>{bad_int}</soap-env:Body>"))
    bad_bool = "<cwmp:GetParameterNames><ParameterPath/><NextLevel>yes</NextLevel></cwmp:GetParameterNames>"
    assert "NextLevel" in rejected(envelope(f"<soap-env:Body>{bad_bool}</soap-env:Body>"))


def test_missing_required_number() -> None:
    assert "missing" in rejected(envelope("<soap-env:Body><cwmp:AddObjectResponse/></soap-env:Body>"))


def test_unknown_must_understand_header_is_rejected_with_mustunderstand_fault() -> None:
    header = '<soap-env:Header><x:Secret xmlns:x="urn:x" soap-env:mustUnderstand="1">1</x:Secret></soap-env:Header>'
    with pytest.raises(MalformedMessage) as caught:
        parse(envelope(header + "<soap-env:Body><cwmp:GetRPCMethods/></soap-env:Body>"))
    assert caught.value.soap_faultcode == "MustUnderstand"


def test_unknown_optional_header_is_ignored() -> None:
    header = '<soap-env:Header><x:Hint xmlns:x="urn:x">1</x:Hint></soap-env:Header>'
    assert parse(envelope(header + "<soap-env:Body><cwmp:GetRPCMethods/></soap-env:Body>")).id is None
