"""Captured SOAP keeps no secret in clear (issue 16 item 8): values of secret parameters, transfer
passwords and passwords in URLs are masked; a body that is not XML is not kept at all."""

from __future__ import annotations

from cwmp.models import Download, Envelope, ParameterValue, SetParameterValues
from cwmp.serialize import serialize
from tasks.soap_mask import masked

WLAN = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."


def test_secret_values_and_transfer_passwords_are_masked() -> None:
    values = (ParameterValue(name=WLAN + "KeyPassphrase", value="wifi-key-in-clear", type="xsd:string"),
              ParameterValue(name=WLAN + "SSID", value="home", type="xsd:string"),
              ParameterValue(name="InternetGatewayDevice.ManagementServer.URL",
                             value="http://acs:url-pass@acs.example/", type="xsd:string"))
    text = masked(serialize(Envelope(id="1", body=SetParameterValues(parameters=values, parameter_key="k"))))
    assert "wifi-key-in-clear" not in text and "url-pass" not in text
    assert "***" in text and "home" in text and "http://acs:***@acs.example/" in text
    download = Download(command_key="c", file_type="1 Firmware Upgrade Image", url="http://fw.example/img",
                        username="fw", password="download-pass-in-clear", file_size=10, target_file_name="")
    text = masked(serialize(Envelope(id="2", body=download)))
    assert "download-pass-in-clear" not in text and "Download" in text and ">***<" in text


def test_a_body_that_is_not_xml_is_not_kept() -> None:
    assert masked(b"password=hunter2 not xml") == "(not kept: 24 bytes that are not a readable SOAP message)"
    assert masked(b"") == ""
