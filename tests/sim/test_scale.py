"""10,000 devices of a profile in one process: they share the base tree and stay small."""

from __future__ import annotations

import resource

from acs.sim.device import DeviceSettings
from acs.sim.population import PopulationPlan, make_device
from acs.sim.profile import load_profile
from tests.sim.conftest import T0

DEVICES = 10_000


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def test_ten_thousand_devices_fit_a_modest_memory_budget() -> None:
    load_profile("huawei-hg8245")
    settings = DeviceSettings(cr_base_url="http://127.0.0.1:7547/cr/")
    plan = PopulationPlan(profile="huawei-hg8245", seed=5)
    before = rss_mb()
    devices = [make_device(plan, i, settings) for i in range(DEVICES)]
    for device in devices:  # booted and past their first Inform, as in a running fleet
        device.power_on(T0)
        device.tick(T0)
        device.start_session(T0)
        device.inform_accepted(T0)
        device.end_session(T0, ok=True)
    grown = rss_mb() - before
    per_device_kb = grown * 1024 / DEVICES
    print(f"\n{DEVICES} devices: +{grown:.1f} MB RSS ({per_device_kb:.2f} KB per device), total {rss_mb():.1f} MB")
    assert len({d.serial for d in devices}) == DEVICES
    assert all(d.tree._base is devices[0].tree._base for d in devices)  # one shared base tree
    assert per_device_kb < 10.0
