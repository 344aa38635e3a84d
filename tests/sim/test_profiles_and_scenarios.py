"""Profiles load, their names exist in the BBF data models, and scenarios hit the right devices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acs.sim.device import DeviceSettings
from acs.sim.population import PopulationPlan, make_device
from acs.sim.profile import PROFILE_DIR, PROFILE_NAMES, generic_name, load_profile
from acs.sim.profiles.datamodel import load
from acs.sim.profiles.specs import voice_params
from acs.sim.scenarios import BadFirmware, OltOutage
from acs.sim.values import rx_power_dbm
from tests.sim.conftest import T0

BBF = Path(__file__).resolve().parents[3] / "shared" / "bbf"
MODELS = {"InternetGatewayDevice.": "tr-098-1-8-0-full.xml", "Device.": "tr-181-2-17-0-cwmp-full.xml"}
VENDOR_MARK = ".X_"
VOICE = ".Services.VoiceService"  # TR-104, not in the TR-098/TR-181 files


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_loads_and_is_small(name: str) -> None:
    profile = load_profile(name)
    assert (PROFILE_DIR / f"{name}.json").stat().st_size < 300_000
    assert profile.base.names[0] == profile.root
    for role in ("olt_id", "pon_port", "rx_power"):
        assert profile.roles[role] in profile.base.position


@pytest.mark.skipif(not BBF.exists(), reason="shared BBF data models not available")
@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_standard_names_types_and_writability_come_from_the_data_model(name: str) -> None:
    profile = load_profile(name)
    objects = load(BBF / MODELS[profile.root])
    model_params = {p.name: p for obj in objects.values() for p in obj.params.values()}
    standard = [
        n for n in profile.specs if VENDOR_MARK not in n and not n.split(".")[-1].startswith("X_") and VOICE not in n
    ]
    assert len(standard) > 300
    for generic in standard:
        spec, model = profile.specs[generic], model_params[generic]
        assert (spec.type, spec.writable) == (model.type, model.writable), generic
    for concrete in profile.base.names:
        if VENDOR_MARK not in concrete and not concrete.endswith(".") and VOICE not in concrete:
            assert generic_name(concrete) in model_params, concrete


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_voice_service_names_are_the_tr104_ones_written_in_specs(name: str) -> None:
    """TR-104 is not among the shared XMLs: its names come from `specs.voice_params` alone."""
    profile = load_profile(name)
    written = {generic_name(param.name): param for param, _ in voice_params(profile.root)}
    standard = [n for n in profile.specs if VOICE in n and VENDOR_MARK not in n]
    assert set(standard) == set(written)
    for generic in standard:
        assert (profile.specs[generic].type, profile.specs[generic].writable) == (
            written[generic].type,
            written[generic].writable,
        )


def test_huawei_profile_carries_vendor_parameters_from_the_real_dump() -> None:
    profile = load_profile("huawei-hg8245")
    vendor = [n for n in profile.base.names if "X_HUAWEI_" in n]
    assert len(vendor) > 100
    document = json.loads((PROFILE_DIR / "huawei-hg8245.json").read_text())
    assert "X_GponInterafceConfig" in document["roles"]["rx_power"]


def fleet_devices(count: int, profile: str = "zte-f660") -> list:  # type: ignore[type-arg]
    settings = DeviceSettings()
    plan = PopulationPlan(profile=profile, seed=9, onts_per_pon=8)
    devices = [make_device(plan, i, settings) for i in range(count)]
    for device in devices:
        device.power_on(T0)
        device.tick(T0)
    return devices


def test_olt_outage_silences_one_pon_and_devices_return_with_boot() -> None:
    devices = fleet_devices(40)
    outage = OltOutage(start=0, duration=60, olt="OLT-0001", pons=2, return_spread=5)
    affected = outage.affected(devices)
    assert len(affected) == 16 and {d.pon_port for d in affected} == {"0/1/0", "0/1/1"}
    for device in devices:
        device.start_session(T0)
        device.inform_accepted(T0)
        device.end_session(T0, ok=True)
    outage.begin(devices, T0 + 10)
    assert not any(d.online for d in affected) and all(d.online for d in devices if d not in affected)
    assert all(d.next_due() is None for d in affected)
    outage.end(devices, T0 + 70)
    for device in affected:
        assert not device.tick(T0 + 70 + 6) or device.start_session(T0 + 76).events[0].event_code == "1 BOOT"


def test_bad_firmware_drops_rx_level_and_loops_reboots_until_upgraded() -> None:
    devices = fleet_devices(30, profile="huawei-hg8245")
    scenario = BadFirmware(rx_drift_db_per_hour=6.0, reboot_interval=100.0)
    bad = scenario.affected(devices)
    good = [d for d in devices if d not in bad]
    assert bad and good
    scenario.begin(devices, T0)
    hour = 3600.0
    sick, healthy = bad[0], good[0]
    assert rx_power_dbm(sick, T0 + hour) < rx_power_dbm(sick, T0) - 5.0
    assert abs(rx_power_dbm(healthy, T0 + hour) - rx_power_dbm(healthy, T0)) < 1.0
    assert any(t.kind == "crash" for t in sick.timers)
    sick.tick(T0 + 100)
    assert not sick.online  # crashed, rebooting
    sick.software_version = sick.profile.identity.software_versions[-1]  # upgraded
    sick.tick(T0 + 103)
    assert sick.online and not any(t.kind == "crash" for t in sick.timers)
