"""Health checks as pure functions: the data file per vendor, unit conversion, thresholds and reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.health.advice import DeviceState, next_steps
from tasks.health.catalog import default_catalog
from tasks.health.evaluate import HealthResult, Level, Reason, Thresholds, evaluate, summarize
from tasks.health.policies import default_policies

PROFILES = Path(__file__).parents[2] / "acs" / "sim" / "profiles"
LIMITS = Thresholds()


@pytest.mark.parametrize(
    ("profile_file", "device", "family"),
    [
        ("huawei-hg8245.json", {"product_class": "HG8245H", "root": "InternetGatewayDevice."}, "huawei-gpon"),
        ("zte-f660.json", {"product_class": "F660", "root": "InternetGatewayDevice."}, "zte-gpon"),
        ("tr181-gateway.json", {"product_class": "HGW-181", "root": "Device."}, "tr181-optical"),
    ],
)
def test_each_simulated_vendor_maps_its_optical_and_topology_parameters(
    profile_file: str, device: dict[str, str], family: str
) -> None:
    roles = json.loads((PROFILES / profile_file).read_text())["roles"]
    profile = default_catalog().for_device(device)
    assert profile.name == family
    for role in ("rx_power", "tx_power", "temperature", "pon_state", "olt_id", "pon_port"):
        assert profile.metrics[role].name == roles[role], role
    tree = {entry[0] for entry in json.loads((PROFILES / profile_file).read_text())["tree"]}
    assert set(profile.names()) <= tree, "every name exists on the device (else the whole read faults)"


def test_unknown_families_fall_back_to_the_generic_profile_of_their_data_model() -> None:
    catalog = default_catalog()
    assert catalog.for_device({"product_class": "X", "root": "Device."}).name == "tr181-generic"
    assert catalog.for_device({"product_class": "X"}).name == "tr098-generic"


def test_a_healthy_zte_reading_in_thousandths_of_a_dbm_is_ok() -> None:
    profile = default_catalog().for_device({"product_class": "F660"})
    readings = profile.readings([{"name": profile.metrics["rx_power"].name, "value": "-21500"},
                                 {"name": profile.metrics["pon_state"].name, "value": "Up"},
                                 {"name": profile.metrics["olt_id"].name, "value": "OLT-0003"}])
    result = evaluate(readings, profile, LIMITS, reboots_24h=0)
    assert result.level is Level.OK and result.reasons == []
    assert result.values["rx_power"] == -21.5 and result.values["olt_id"] == "OLT-0003"


def test_low_rx_power_is_critical_and_says_by_how_much() -> None:
    profile = default_catalog().for_device({"product_class": "HG8245H"})
    result = evaluate({"rx_power": "-29.50", "temperature": "75"}, profile, LIMITS, reboots_24h=1)
    assert result.status == "critical"
    assert [reason.message for reason in result.reasons] == [
        "optical RX power -29.5 dBm below -27 dBm", "temperature 75 C above 70 C"]


@pytest.mark.parametrize(("rx", "level"), [("-24.9", Level.OK), ("-25.5", Level.WARN), ("-27.01", Level.CRITICAL)])
def test_rx_thresholds(rx: str, level: Level) -> None:
    profile = default_catalog().for_device({"product_class": "HG8245H"})
    assert evaluate({"rx_power": rx}, profile, LIMITS).level is level


def test_states_reboots_and_wan_errors() -> None:
    profile = default_catalog().for_device({"product_class": "HG8245H"})
    readings = {"pon_state": "O1", "wan_status": "Disconnected", "wan_last_error": "ERROR_AUTHENTICATION_FAILURE"}
    result = evaluate(readings, profile, LIMITS, reboots_24h=4)
    messages = [reason.message for reason in result.reasons]
    assert result.level is Level.CRITICAL
    assert "PON state O1 (healthy: O5)" in messages
    assert "WAN connection Disconnected (healthy: Connected)" in messages
    assert "last WAN connection error ERROR_AUTHENTICATION_FAILURE" in messages
    assert "4 reboots in the last 24 hours" in messages
    assert evaluate({}, profile, LIMITS, reboots_24h=6).level is Level.CRITICAL
    assert evaluate({"rx_power": "n/a"}, profile, LIMITS).level is Level.OK, "unreadable values are not judged"


def test_default_policies_poll_watched_devices_first() -> None:
    policies = default_policies(21600, "watch", 300)
    assert [(p.name, p.interval, p.tag) for p in policies] == [("watch", 300, "watch"), ("all", 21600, None)]
    assert [p.name for p in default_policies(0, "watch", 300)] == ["watch"]


def test_a_failed_read_is_told_as_such_with_the_last_good_read_never_as_healthy() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    weak = Reason("optical", Level.CRITICAL, "optical RX power -29 dBm below -27 dBm")
    critical = HealthResult(Level.CRITICAL, [weak])
    failed = HealthResult(Level.UNKNOWN, [Reason("device", Level.UNKNOWN, "health read failed: 9002 Internal error")])
    health = summarize(summarize({}, critical, now), failed, now + timedelta(minutes=5))
    assert health["status"] == "unknown" and health["last_definite"]["status"] == "critical"
    assert next_steps(DeviceState(online=True, health=health)) == [
        "health read failed: 9002 Internal error; the last successful read said critical (optical RX power -29 dBm "
        "below -27 dBm): tag the device 'watch' to read it again"]
    never = summarize({}, failed, now)
    assert never["last_definite"] is None
    assert next_steps(DeviceState(online=True, health=never)) == [
        "health read failed: 9002 Internal error: tag the device 'watch' to read it again"]


def test_a_device_of_a_bad_firmware_incident_is_never_told_its_line_or_hardware_is_at_fault() -> None:
    """Advice never contradicts the problem a device is part of, also right after a hand resolution."""
    sick = {"status": "critical", "reasons": [
        {"check": "rx", "level": "critical", "message": "optical RX -31.0 dBm below -28.0"},
        {"check": "reboots", "level": "critical", "message": "5 reboots in 24 h"}]}
    firmware = {"_id": 12, "title": "Software version S120 (HG8245H): 20 of 20 devices in critical health"}
    alone = " ".join(next_steps(DeviceState(online=True, health=sick)))
    assert "send a technician" in alone and "replace the device" in alone
    member = next_steps(DeviceState(online=True, health=sick, incidents=[{**firmware, "status": "open"}]))
    assert member[0].startswith("part of incident #12") and "technician" not in " ".join(member)
    assert "replace" not in " ".join(member)
    resolved = {**firmware, "status": "resolved", "resolved_by": "user:olga", "resolve_reason": "rolled back"}
    after = next_steps(DeviceState(online=True, health=sick, resolved_by_hand=[resolved]))
    assert "incident #12" in after[0] and "resolved by user:olga (rolled back)" in after[0]
    assert "technician" not in " ".join(after) and "replace" not in " ".join(after)
    # Recovered since: nothing to wait for, and nothing said about the old incident.
    healthy = {"status": "ok", "reasons": []}
    assert "incident" not in " ".join(next_steps(DeviceState(online=True, health=healthy, resolved_by_hand=[resolved])))
