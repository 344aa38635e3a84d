"""The simulated devices carry a subscriber's services (issue 14): PPPoE account, VLAN, Wi-Fi, each
under the path the profiles' aliases name for that vendor and data model, and lose them on a
factory reset; VoIP lines (TR-104 VoiceService:1) are added, set, deleted and lost on a factory reset."""

from __future__ import annotations

import pytest

from acs.sim.device import SimDevice
from acs.sim.rpc import answer
from cwmp import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    FactoryReset,
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValue,
    SetParameterValues,
)
from tasks.profiles.aliases import AliasTable
from tests.sim.conftest import T0, MakeDevice

SERVICE = {"wan.pppoe.username": "a100@isp", "wan.pppoe.password": "secret", "wan.vlan": "10", "wifi.ssid": "home"}


@pytest.mark.parametrize("profile", ["huawei-hg8245", "zte-f660", "tr181-gateway"])
def test_a_subscriber_service_is_taken_and_lost_on_factory_reset(new_device: MakeDevice, profile: str) -> None:
    device = new_device(profile)
    aliases = AliasTable.default()
    paths = {alias: aliases.resolve(alias, device.profile.root, device.oui).path for alias in SERVICE}
    request = SetParameterValues(
        parameters=tuple(
            ParameterValue(name=paths[a], value=v, type="xsd:string" if a != "wan.vlan" else "xsd:unsignedInt")
            for a, v in SERVICE.items()
        ),
        parameter_key="cfg-1",
    )
    assert not isinstance(answer(device, request, T0 + 5), Fault)
    names = tuple(paths[a] for a in ("wan.pppoe.username", "wan.vlan", "wifi.ssid"))
    read = answer(device, GetParameterValues(names=names), T0 + 6)
    assert isinstance(read, GetParameterValuesResponse)
    assert [p.value for p in read.parameters] == ["a100@isp", "10", "home"]
    answer(device, FactoryReset(), T0 + 7)
    device.end_session(T0 + 7, ok=True)
    after = answer(device, GetParameterValues(names=names), T0 + 60)
    assert isinstance(after, GetParameterValuesResponse)
    assert "a100@isp" not in [p.value for p in after.parameters] and "home" not in [p.value for p in after.parameters]


@pytest.mark.parametrize("profile", ["huawei-hg8245", "zte-f660", "tr181-gateway"])
def test_voip_lines_are_added_set_deleted_and_lost_on_factory_reset(new_device: MakeDevice, profile: str) -> None:
    device = new_device(profile)
    table = AliasTable.default().resolve("voip.line.", device.profile.root, device.oui).path
    lines = names_below(device, table)
    assert lines == [table], "from the factory the line table is there and empty"
    numbers = []
    for key in ("cfg-a", "cfg-b"):
        added = answer(device, AddObject(object_name=table, parameter_key=key), T0 + 5)
        assert isinstance(added, AddObjectResponse)
        numbers.append(added.instance_number)
    assert numbers == [1, 2]
    first = f"{table}1."
    request = SetParameterValues(
        parameters=(
            ParameterValue(name=first + "Enable", value="Enabled", type="xsd:string"),
            ParameterValue(name=first + "DirectoryNumber", value="+3725551001", type="xsd:string"),
            ParameterValue(name=first + "SIP.AuthUserName", value="5551001", type="xsd:string"),
            ParameterValue(name=first + "SIP.AuthPassword", value="sip-secret", type="xsd:string"),
        ),
        parameter_key="cfg-c",
    )
    assert not isinstance(answer(device, request, T0 + 6), Fault)
    read = answer(device, GetParameterValues(names=(first,)), T0 + 7)
    assert isinstance(read, GetParameterValuesResponse)
    values = {p.name: p.value for p in read.parameters}
    assert values[first + "DirectoryNumber"] == "+3725551001" and values[first + "Enable"] == "Enabled"
    assert values[first + "SIP.AuthPassword"] == ""  # TR-069 A.3.2.2: a password reads back empty
    assert device.tree.stored_value(first + "SIP.AuthPassword") == "sip-secret"
    count = table.removesuffix("Line.") + "NumberOfLines"
    assert device.read(count, T0 + 7) == "2"
    assert isinstance(
        answer(device, DeleteObject(object_name=f"{table}2.", parameter_key="cfg-d"), T0 + 8), DeleteObjectResponse
    )
    assert device.read(count, T0 + 8) == "1"
    answer(device, FactoryReset(), T0 + 9)
    device.end_session(T0 + 9, ok=True)
    assert names_below(device, table) == [table] and device.read(count, T0 + 60) == "0"


@pytest.mark.parametrize(
    ("relative", "value", "code"),
    [("Enable", "On", 9007), ("DirectoryNumber", "1" * 33, 9007), ("Status", "Up", 9008)],
)
def test_a_voip_line_refuses_values_outside_tr104(new_device: MakeDevice, relative: str, value: str, code: int) -> None:
    device = new_device("huawei-hg8245")
    table = "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line."
    assert isinstance(answer(device, AddObject(object_name=table, parameter_key="k"), T0 + 5), AddObjectResponse)
    request = SetParameterValues(
        parameters=(ParameterValue(name=f"{table}1.{relative}", value=value, type="xsd:string"),), parameter_key="k2"
    )
    refused = answer(device, request, T0 + 6)
    assert isinstance(refused, Fault) and [f.fault_code for f in refused.set_parameter_values_faults] == [code]


def test_huawei_voice_profile_carries_its_vendor_extensions() -> None:
    from acs.sim.profile import load_profile

    names = load_profile("huawei-hg8245").base.names
    profile = "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1."
    assert profile + "SIP.X_HUAWEI_SIPDomain" in names and profile + "X_HUAWEI_FaxOption" in names
    assert not any("X_HUAWEI" in n for n in load_profile("zte-f660").base.names)


def names_below(device: SimDevice, table: str) -> list[str]:
    found = answer(device, GetParameterNames(parameter_path=table, next_level=False), T0 + 1)
    assert isinstance(found, GetParameterNamesResponse)
    return [p.name for p in found.parameters if p.name.endswith(".")]
