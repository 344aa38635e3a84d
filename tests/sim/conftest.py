from __future__ import annotations

from collections.abc import Callable

import pytest

from acs.sim.device import DeviceSettings, SimDevice
from acs.sim.population import PopulationPlan, make_device

T0 = 1_750_000_000.0

MakeDevice = Callable[..., SimDevice]


def booted(profile: str = "huawei-hg8245", cwmp_version: str = "1.0", index: int = 0) -> SimDevice:
    """A device that has booted and completed its BOOTSTRAP session at T0."""
    settings = DeviceSettings(cr_base_url="http://127.0.0.1:7999/cr/", periodic_interval=300)
    device = make_device(PopulationPlan(profile=profile, cwmp_version=cwmp_version, seed=3), index, settings)
    device.power_on(T0)
    assert device.tick(T0)
    device.start_session(T0)
    device.inform_accepted(T0)
    device.end_session(T0, ok=True)
    return device


@pytest.fixture
def new_device() -> MakeDevice:
    return booted
