"""Every real device capture in ../shared/samples parses, with the quirks SOURCES.md lists."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cwmp import models as m
from cwmp.codec import parse, serialize
from cwmp.errors import MalformedMessage
from cwmp.versions import CwmpVersion
from tests.cwmp.conftest import SAMPLES, soap_bytes
from tests.cwmp.xsd import assert_valid

Load = Callable[[str], bytes]
AVM = "avm-fritzbox7170-inform-bootstrap-fragment.xml"
ALL = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".xml", ".http"))


@pytest.mark.parametrize("name", [n for n in ALL if n != AVM])
def test_sample_parses_and_reserializes_valid_when_the_device_was(name: str) -> None:
    envelope = parse(soap_bytes(SAMPLES / name))
    assert envelope.version is CwmpVersion.V1_0
    assert parse(serialize(envelope)) == envelope


def test_thomson_780_inform_quirks(sample: Load) -> None:
    envelope = parse(sample("thomson-speedtouch780-inform-boot-periodic-valuechange.xml"))
    inform = envelope.body
    assert isinstance(inform, m.Inform)
    assert envelope.id == "0_THOM_TR69_ID"
    assert [e.event_code for e in inform.events] == ["1 BOOT", "2 PERIODIC", "4 VALUE CHANGE"]
    assert inform.retry_count == 5  # zero-padded "05"
    assert inform.max_envelopes == 2
    assert inform.current_time == datetime(1970, 1, 1, 0, 1, 31, tzinfo=UTC)
    # The impossible date stays a string in the value, as sent.
    assert inform.inform_parameter("InternetGatewayDevice.DeviceInfo.VendorConfigFile.1.Date") == "0000-00-00T00:00:00"
    assert inform.inform_parameter(".ExternalIPAddress") == "192.168.1.254"
    assert inform.device_id == m.DeviceIdStruct(
        manufacturer="THOMSON", oui="00147F", product_class="SpeedTouch 780", serial_number="CP0644JTHJ4"
    )


def test_thomson_706_nomorerequests_header(sample: Load) -> None:
    envelope = parse(sample("thomson-speedtouch706-inform-periodic-nomorerequests.http"))
    assert envelope.no_more_requests is True
    assert envelope.id == "THOM_CPE_ALC_ID_9"
    assert isinstance(envelope.body, m.Inform) and envelope.body.retry_count == 0  # "00"


def test_thomson_fault_with_unqualified_faultcode(sample: Load) -> None:
    fault = parse(sample("thomson-speedtouch780-fault-9001.xml")).body
    assert fault == m.Fault(fault_code=9001, fault_string="Request Denied", soap_faultcode="Client")


def test_thomson_rpc_methods_with_soap_prefix_on_encoding_namespace(sample: Load) -> None:
    body = parse(sample("thomson-speedtouch780-getrpcmethodsresponse.xml")).body
    assert isinstance(body, m.GetRPCMethodsResponse)
    assert body.methods[0] == "GetRPCMethods" and len(body.methods) == 9


def test_thomson_values_keep_strings_and_unknown_time(sample: Load) -> None:
    body = parse(sample("thomson-speedtouch780-getparametervaluesresponse.http")).body
    assert isinstance(body, m.GetParameterValuesResponse)
    values = {p.name: p for p in body.parameters}
    date = values["InternetGatewayDevice.DeviceInfo.VendorConfigFile.1.Date"]
    assert (date.value, date.type) == ("0001-01-01T00:00:00Z", "xsd:dateTime")
    assert values["InternetGatewayDevice.DeviceInfo.X_000E50_Country"].value == ""
    assert len(body.parameters) == 6


def test_thomson_attributes_lowercase_subscriber_kept(sample: Load) -> None:
    body = parse(sample("thomson-speedtouch780-getparameterattributesresponse.http")).body
    assert isinstance(body, m.GetParameterAttributesResponse)
    assert body.parameters[0] == m.ParameterAttribute(
        name="InternetGatewayDevice.DeviceInfo.SerialNumber", notification=0, access_list=("subscriber",)
    )


def test_thomson_585_parameter_names(sample: Load) -> None:
    body = parse(sample("thomson-speedtouch585-getparameternamesresponse.http")).body
    assert isinstance(body, m.GetParameterNamesResponse)
    writable = {p.name for p in body.parameters if p.writable}
    assert "InternetGatewayDevice.DeviceInfo.ProvisioningCode" in writable
    assert m.ParameterInfo(name="InternetGatewayDevice.DeviceInfo.Manufacturer", writable=False) in body.parameters


def test_broadcom_lowercase_oui_and_zero_padded_array(sample: Load) -> None:
    envelope = parse(sample("broadcom-968380gerg-inform-connectionrequest.xml"))
    inform = envelope.body
    assert isinstance(inform, m.Inform)
    assert inform.device_id.oui == "a06518"  # kept as sent
    assert len(inform.parameters) == 8  # arrayType [0008]
    assert inform.inform_parameter("InternetGatewayDevice.DeviceInfo.ProvisioningCode") == ""  # <Value/>
    assert inform.events == (m.EventStruct(event_code="6 CONNECTION REQUEST"),)
    assert inform.current_time == datetime(1970, 1, 4, 18, 5, 55, tzinfo=UTC)


def test_cisco_wrong_xsi_types_are_kept(sample: Load) -> None:
    body = parse(sample("cisco-femto-cjj005b00009-getparametervaluesresponse.xml")).body
    assert isinstance(body, m.GetParameterValuesResponse)
    values = {p.name: p for p in body.parameters}
    boot = values["InternetGatewayDevice.DeviceInfo.X_00000C_BootTime"]
    assert (boot.value, boot.type) == ("0001-01-01T00:00:00", "xsd:unsignedInt")
    enable = values["InternetGatewayDevice.ManagementServer.PeriodicInformEnable"]
    assert (enable.value, enable.type) == ("1", "xsd:boolean")
    assert values["InternetGatewayDevice.Services.FAPService.1.Capabilities.MaxTxPower"].type == "xsd:int"
    assert len(body.parameters) == soap_bytes(
        SAMPLES / "cisco-femto-cjj005b00009-getparametervaluesresponse.xml"
    ).count(b"<ParameterValueStruct>")


def test_mikrotik_no_header_single_quotes_tr181(sample: Load) -> None:
    envelope = parse(sample("mikrotik-haplite-inform-diagnosticscomplete.http"))
    inform = envelope.body
    assert envelope.id is None and envelope.hold_requests is None
    assert isinstance(inform, m.Inform)
    assert inform.events[0].event_code == "8 DIAGNOSTICS COMPLETE"
    assert inform.inform_parameter("Device.RootDataModelVersion") == "2.11"
    assert inform.current_time == datetime(2018, 4, 1, 19, 45, 2, tzinfo=timezone(timedelta(hours=-4)))
    assert next(p for p in inform.parameters if p.type == "xsd:boolean").value == "0"


def test_transfer_complete_9015_in_1_0_envelope(sample: Load) -> None:
    envelope = parse(sample("unknown-cpe-transfercomplete-9015-genieacs-issue171.xml"))
    assert envelope.body == m.TransferComplete(
        command_key="",
        fault=m.FaultStruct(fault_code=9015, fault_string="File transfer failure: unable to contact file server"),
        start_time=None,
        complete_time=None,
    )
    assert envelope.id == "XXXXXXXYYYYZZZ"


def test_avm_fragment_is_rejected_cleanly(sample: Load) -> None:
    # SOURCES.md: damaged by the article's HTML conversion (no Envelope, undeclared prefixes,
    # "</ Value="Value">" end tags). Not device output, so no tolerance for it: a clean error.
    with pytest.raises(MalformedMessage, match="not well-formed XML") as caught:
        parse(sample(AVM))
    assert caught.value.fault_code == 8003


def test_avm_fragment_once_repaired_parses_with_its_real_quirks(sample: Load) -> None:
    """What the FRITZ!Box itself did (element order, no zone) is tolerated once the damage is undone."""
    fragment = sample(AVM).decode()
    fragment = re.sub(r'</ (\w+)="\w+">', r"</\1>", fragment)
    wrapped = (
        '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soap-env:Body>{fragment}</soap-env:Body></soap-env:Envelope>"
    )
    inform = parse(wrapped.encode()).body
    assert isinstance(inform, m.Inform)
    assert inform.events == (m.EventStruct(event_code="0 BOOTSTRAP"),)  # Event after MaxEnvelopes
    assert inform.current_time == datetime(2007, 1, 26, 10, 33, 12, tzinfo=UTC)  # no zone -> UTC
    assert len(inform.parameters) == 7
    software = inform.inform_parameter("InternetGatewayDevice.DeviceInfo.SoftwareVersion")
    assert software == "29.05.01-release-build_1818-2904"


@pytest.mark.parametrize(
    "name",
    [
        "thomson-speedtouch706-inform-periodic-nomorerequests.http",
        "thomson-speedtouch780-fault-9001.xml",
        "mikrotik-haplite-inform-diagnosticscomplete.http",
        "thomson-speedtouch585-getparameternamesresponse.http",
    ],
)
def test_samples_valid_at_source_stay_valid_when_reserialized(name: str) -> None:
    envelope = parse(soap_bytes(SAMPLES / name))
    assert_valid(serialize(envelope.model_copy(update={"no_more_requests": None})))
