"""Codec details: tolerance rules, version detection, what serialize refuses, faults, device ids."""

from __future__ import annotations

import pytest

from cwmp import CwmpVersion, LocalProtocolError, make_device_id, make_fault, negotiate, parse, serialize
from cwmp import models as m
from cwmp.faults import FAULT_STRINGS
from tests.cwmp.xsd import assert_valid

NS = {
    "1-0": "urn:dslforum-org:cwmp-1-0",
    "1-1": "urn:dslforum-org:cwmp-1-1",
    "1-2": "urn:dslforum-org:cwmp-1-2",
}


def wrap(body: str, header: str = "", ns: str = "1-0") -> bytes:
    return (
        f'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="{NS[ns]}" '
        'xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        f"<e:Header>{header}</e:Header><e:Body>{body}</e:Body></e:Envelope>"
    ).encode()


def test_any_prefixes_and_xsd_prefix_normalised_in_xsi_type() -> None:
    body = (
        "<c:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A</Name>"
        '<Value i:type="s:unsignedInt"> 5 </Value></ParameterValueStruct>'
        "<ParameterValueStruct><Name>B</Name><Value>x</Value></ParameterValueStruct>"
        "</ParameterList></c:GetParameterValuesResponse>"
    )
    parsed = parse(wrap(body)).body
    assert isinstance(parsed, m.GetParameterValuesResponse)
    # String values are kept exactly (spaces included); a missing xsi:type is xsd:string.
    assert parsed.parameters == (
        m.ParameterValue(name="A", value=" 5 ", type="xsd:unsignedInt"),
        m.ParameterValue(name="B", value="x", type="xsd:string"),
    )


@pytest.mark.parametrize(("text", "expected"), [("1", True), (" true ", True), ("0", False), ("FALSE", False)])
def test_booleans(text: str, expected: bool) -> None:
    body = (
        "<c:GetParameterNames><ParameterPath>Device.</ParameterPath>"
        f"<NextLevel>{text}</NextLevel></c:GetParameterNames>"
    )
    assert parse(wrap(body)).body == m.GetParameterNames(parameter_path="Device.", next_level=expected)


def test_numbers_with_whitespace_and_padding() -> None:
    body = "<c:AddObjectResponse><Status>\n 0 </Status><InstanceNumber>007</InstanceNumber></c:AddObjectResponse>"
    assert parse(wrap(body)).body == m.AddObjectResponse(instance_number=7, status=0)


def test_unknown_rpc_and_vendor_namespace_become_unknown_message() -> None:
    kicked = parse(wrap("<c:Kicked><Command>x</Command></c:Kicked>")).body
    assert kicked == m.UnknownMessage(name="Kicked", namespace=NS["1-0"])
    vendor = parse(wrap('<v:X_Reset xmlns:v="urn:vendor"/>')).body
    assert vendor == m.UnknownMessage(name="X_Reset", namespace="urn:vendor")


def test_soap_fault_without_cwmp_detail_is_kept_as_internal_error() -> None:
    body = "<e:Fault><faultcode>e:Server</faultcode><faultstring>boom</faultstring></e:Fault>"
    assert parse(wrap(body)).body == m.Fault(fault_code=9002, fault_string="boom", soap_faultcode="Server")


def test_set_parameter_values_fault_details() -> None:
    body = (
        "<e:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><c:Fault>"
        "<FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>"
        "<SetParameterValuesFault><ParameterName>A.B</ParameterName><FaultCode>9007</FaultCode>"
        "<FaultString>bad</FaultString></SetParameterValuesFault>"
        "<SetParameterValuesFault><ParameterName>A.C</ParameterName><FaultCode>9008</FaultCode>"
        "</SetParameterValuesFault></c:Fault></detail></e:Fault>"
    )
    fault = parse(wrap(body)).body
    assert isinstance(fault, m.Fault)
    assert [(f.parameter_name, f.fault_code) for f in fault.set_parameter_values_faults] == [
        ("A.B", 9007),
        ("A.C", 9008),
    ]


@pytest.mark.parametrize(
    ("ns", "header", "version"),
    [
        ("1-0", "", CwmpVersion.V1_0),
        ("1-1", "", CwmpVersion.V1_1),
        ("1-2", "", CwmpVersion.V1_2),
        ("1-2", "<c:SessionTimeout>60</c:SessionTimeout>", CwmpVersion.V1_3),
        ("1-2", "<c:SupportedCWMPVersions>1.0,1.2,1.3,1.4</c:SupportedCWMPVersions>", CwmpVersion.V1_4),
        ("1-2", "<c:SupportedCWMPVersions>1.0,1.2</c:SupportedCWMPVersions>", CwmpVersion.V1_2),
        ("1-2", "<c:UseCWMPVersion>1.4</c:UseCWMPVersion>", CwmpVersion.V1_4),
        ("1-2", "<c:UseCWMPVersion>1.3</c:UseCWMPVersion>", CwmpVersion.V1_3),
        # Headers never move a 1-0 message: its schema is 1-0's.
        ("1-0", "<c:SessionTimeout>60</c:SessionTimeout>", CwmpVersion.V1_0),
    ],
)
def test_version_detection(ns: str, header: str, version: CwmpVersion) -> None:
    assert parse(wrap("<c:GetRPCMethods/>", header, ns)).version is version


def test_fault_version_comes_from_detail_namespace() -> None:
    detail = "<detail><c:Fault><FaultCode>9001</FaultCode></c:Fault></detail>"
    body = f"<e:Fault><faultcode>Client</faultcode>{detail}</e:Fault>"
    assert parse(wrap(body, ns="1-1")).version is CwmpVersion.V1_1


def test_headers_round_trip_and_mustunderstand_values() -> None:
    envelope = m.Envelope(id="42", hold_requests=True, body=m.GetRPCMethods(), version=CwmpVersion.V1_0)
    data = serialize(envelope)
    assert b'<cwmp:ID soap-env:mustUnderstand="1">42</cwmp:ID>' in data
    assert b'<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>' in data
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert parse(data) == envelope
    assert_valid(data)


def test_serialize_writes_array_types_and_xsi_types() -> None:
    body = m.SetParameterValues(parameters=(m.ParameterValue(name="A", value="1", type="xsd:unsignedInt"),))
    data = serialize(m.Envelope(body=body))
    assert b'soap-enc:arrayType="cwmp:ParameterValueStruct[1]"' in data
    assert b'<Value xsi:type="xsd:unsignedInt">1</Value>' in data
    names = serialize(m.Envelope(body=m.GetParameterValues(names=("A.", "B"))))
    assert b'soap-enc:arrayType="xsd:string[2]"' in names


@pytest.mark.parametrize(
    ("body", "version"),
    [
        (m.AutonomousTransferComplete(), CwmpVersion.V1_0),
        (m.GetAllQueuedTransfers(), CwmpVersion.V1_0),
        (m.ScheduleDownload(command_key="", file_type="1 Firmware Upgrade Image", url="u"), CwmpVersion.V1_1),
        (m.CancelTransfer(command_key="k"), CwmpVersion.V1_1),
    ],
)
def test_messages_absent_from_a_version_are_refused(body: m.Message, version: CwmpVersion) -> None:
    with pytest.raises(LocalProtocolError, match="does not exist"):
        serialize(m.Envelope(body=body, version=version))


def test_unknown_message_and_impossible_text_are_refused() -> None:
    with pytest.raises(LocalProtocolError):
        serialize(m.Envelope(body=m.UnknownMessage(name="Kicked", namespace=NS["1-0"])))
    with pytest.raises(LocalProtocolError):
        serialize(m.Envelope(body=m.Reboot(command_key="\x00")))
    with pytest.raises(LocalProtocolError):
        serialize(m.Envelope(body=m.GetRPCMethods(), session_timeout=30, version=CwmpVersion.V1_0))


def test_make_fault_uses_standard_strings() -> None:
    assert make_fault(8000) == m.Fault(fault_code=8000, fault_string="Method not supported", soap_faultcode="Server")
    assert make_fault(8003).soap_faultcode == "Client"
    assert make_fault(9005, "no such name").fault_string == "no such name"
    assert set(range(9000, 9033)) <= set(FAULT_STRINGS) and set(range(8000, 8007)) <= set(FAULT_STRINGS)
    assert make_fault(8850).fault_string == "Vendor defined fault"


def test_negotiate_picks_highest_common_version() -> None:
    assert negotiate("1.0,1.1,1.2,1.3,1.4", CwmpVersion.V1_2) is CwmpVersion.V1_4
    assert negotiate("1.0,1.2,1.5", CwmpVersion.V1_2) is CwmpVersion.V1_2  # 1.5 unknown to us
    assert negotiate(None, CwmpVersion.V1_1) is CwmpVersion.V1_1
    assert CwmpVersion.V1_3.namespace == CwmpVersion.V1_4.namespace == NS["1-2"]


def test_device_id_format_and_encoding() -> None:
    assert make_device_id("00147F", "SpeedTouch 780", "CP0644JTHJ4") == "00147F-SpeedTouch%20780-CP0644JTHJ4"
    assert make_device_id("a06518", "", "a0651806d37f") == "a06518-a0651806d37f"
    assert make_device_id("00040E", "FRITZ!Box", "x/y~z_1.2") == "00040E-FRITZ%21Box-x%2Fy~z_1.2"
    assert make_device_id("000000", "Ä", "%") == "000000-%C3%84-%25"


def test_device_id_dash_ambiguity_is_documented_behaviour() -> None:
    # "-" is unreserved so it is kept: two different identities can give the same id.
    assert make_device_id("00147F", "A-B", "C") == make_device_id("00147F", "A", "B-C") == "00147F-A-B-C"
