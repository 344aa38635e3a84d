"""Which values are secrets (issue 11 item 3), and how task parameters seal and show them; pure."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tasks import params
from tasks.secret_values import is_secret, mask_url, shown
from tasks.secretbox import SecretBox


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("InternetGatewayDevice.ManagementServer.ConnectionRequestPassword", "x", True),
        ("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase", "x", True),
        ("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.PreSharedKey", "x", True),
        ("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.WEPKey.1.WEPKey", "x", True),
        ("Device.WiFi.AccessPoint.1.Security.SAEPassphrase", "x", True),
        ("Device.WiFi.AccessPoint.1.Security.RadiusSecret", "x", True),
        ("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.WEPKeyIndex", "1", False),
        ("InternetGatewayDevice.ManagementServer.URL", "http://acs.example:7547/", False),
        ("InternetGatewayDevice.ManagementServer.URL", "http://cpe:pw@acs.example:7547/", True),
        ("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "V1", False),
    ],
)
def test_secret_names_and_urls(name: str, value: str, secret: bool) -> None:
    assert is_secret(name, value) is secret


def test_urls_keep_all_but_their_password() -> None:
    assert mask_url("ftp://fw:hunter2@files.example/a@b") == "ftp://fw:***@files.example/a@b"
    assert shown("X.URL", "http://user@host/") == "http://user@host/"  # no password, nothing hidden


def test_task_params_sealed_opened_and_shown() -> None:
    box = SecretBox(Fernet.generate_key())
    request = {
        "values": [{"name": "A.KeyPassphrase", "value": "wifi-key"}, {"name": "A.SSID", "value": "home"}],
        "url": "http://u:p4ss@h/f",
    }
    sealed = params.seal(request, box)
    assert "wifi-key" not in repr(sealed) and "p4ss" not in repr(sealed)
    assert sealed["values"][1]["value"] == "home"
    assert params.unseal(sealed, box) == request
    assert params.redact(sealed, box) == {
        "values": [{"name": "A.KeyPassphrase", "value": "***"}, {"name": "A.SSID", "value": "home"}],
        "url": "http://u:***@h/f",
    }
    result = params.seal_result({"values": [{"name": "A.PreSharedKey", "value": "psk"}]}, box)
    assert "psk'" not in repr(result)
    assert params.redact_result(result) == {"values": [{"name": "A.PreSharedKey", "value": "***"}]}


def test_an_add_objects_other_values_are_sealed_like_its_own() -> None:
    """A profile's plain values ride on its AddObject task (``other_values``): a PPPoE password
    among them is sealed at rest and hidden from the API as the instance's own values are."""
    box = SecretBox(Fernet.generate_key())
    request = {
        "object": "A.PortMapping.",
        "values": [{"name": "ExternalPort", "value": 8080}],
        "other_values": [{"name": "A.Password", "value": "ppp-pw"}, {"name": "A.Username", "value": "u"}],
    }
    sealed = params.seal(request, box)
    assert "ppp-pw" not in repr(sealed) and sealed["other_values"][1]["value"] == "u"
    assert params.unseal(sealed, box) == request
    assert params.redact(sealed, box)["other_values"][0] == {"name": "A.Password", "value": "***"}


def test_sealing_opening_and_showing_never_change_what_they_were_given() -> None:
    box = SecretBox(Fernet.generate_key())
    request = {
        "values": [{"name": "A.KeyPassphrase", "value": "wifi-key"}, {"name": "A.SSID", "value": "home"}],
        "password": "ftp-pw",
        "url": "http://u:p4ss@h/f",
        "names": ["A."],
    }
    before = repr(request)
    sealed = params.seal(request, box)
    assert repr(request) == before
    sealed_before = repr(sealed)
    opened = params.unseal(sealed, box)
    params.redact(sealed, box)
    assert repr(sealed) == sealed_before and opened == request
    opened["values"][0]["value"] = "changed"  # the opened copy is the caller's own
    assert params.unseal(sealed, box)["values"][0]["value"] == "wifi-key"
