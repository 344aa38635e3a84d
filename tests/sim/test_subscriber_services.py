"""The simulated devices carry a subscriber's services (issue 14): PPPoE account, VLAN, Wi-Fi, each
under the path the profiles' aliases name for that vendor and data model, and lose them on a
factory reset."""

from __future__ import annotations

import pytest

from acs.sim.rpc import answer
from cwmp import FactoryReset, Fault, GetParameterValues, GetParameterValuesResponse, ParameterValue, SetParameterValues
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
