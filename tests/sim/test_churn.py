"""The churn scenario: a few devices per minute go silent at random and come back booting."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import pytest

from acs.sim.cli import add_arguments, scenarios_from
from acs.sim.device import DeviceSettings, SimDevice
from acs.sim.fleet import Fleet, FleetConfig
from acs.sim.population import PopulationPlan, make_device
from acs.sim.scenarios import Churn
from tests.sim.conftest import T0
from tests.sim.fake_acs import FakeAcs


def online_fleet(count: int, onts_per_pon: int = 8) -> list[SimDevice]:
    plan = PopulationPlan(profile="huawei-hg8245", seed=4, onts_per_pon=onts_per_pon, pons_per_olt=4)
    devices = [make_device(plan, i, DeviceSettings()) for i in range(count)]
    for device in devices:
        device.power_on(T0)
        assert device.tick(T0)
        device.start_session(T0)
        device.inform_accepted(T0)
        device.end_session(T0, ok=True)
    return devices


def test_events_come_at_the_rate_one_per_slot_and_stop_after_the_duration() -> None:
    churn = Churn(rate=6.0, start=30.0, duration=600.0, seed=3)
    times = []
    k = 0
    while (at := churn.step_at(k)) is not None:
        times.append(at)
        k += 1
    assert len(times) == 60  # 6 a minute for 10 minutes
    assert all(30.0 + 10.0 * i <= t < 30.0 + 10.0 * (i + 1) for i, t in enumerate(times))
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
    assert len(gaps) > 30, "at a random moment of each slot, not a metronome"
    assert Churn(rate=1.0).step_at(10_000) is not None  # no duration: churns until the fleet stops


def test_same_seed_same_run_other_seed_other_run() -> None:
    def run(seed: int) -> list[tuple[float, str, float]]:
        devices = online_fleet(64)
        churn = Churn(rate=4.0, start=0.0, seed=seed)
        out = []
        for k in range(20):
            at = churn.step_at(k)
            assert at is not None
            (device,) = churn.step(k, devices, T0 + at)
            out.append((at, device.serial, churn.down_for(k)))
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_a_silenced_device_returns_with_boot_after_a_bounded_time() -> None:
    devices = online_fleet(32)
    churn = Churn(rate=2.0, start=0.0, min_down=90.0, max_down=180.0, seed=1)
    downs = [churn.down_for(k) for k in range(200)]
    assert all(90.0 <= d <= 180.0 for d in downs) and max(downs) - min(downs) > 60.0
    now = T0 + 100.0
    (device,) = churn.step(0, devices, now)
    assert not device.online and sum(not d.online for d in devices) == 1
    down = churn.down_for(0)
    assert device.next_due() == pytest.approx(now + down)
    assert not device.tick(now + down - 1) and not device.online  # silent: no periodic inform either
    assert device.tick(now + down)
    inform = device.start_session(now + down)
    assert [e.event_code for e in inform.events] == ["1 BOOT"]
    assert device.boot_count == 2


def test_it_picks_only_online_devices_and_spreads_over_olts_and_pons() -> None:
    devices = online_fleet(128)  # 16 PONs of 8, on 4 OLTs
    churn = Churn(rate=10.0, start=0.0, min_down=1e6, max_down=1e6, seed=2)  # nobody comes back
    hit = [churn.step(k, devices, T0)[0] for k in range(64)]
    assert len({d.serial for d in hit}) == 64, "an already silent device is not picked again"
    assert len({d.olt_id for d in hit}) == 4
    assert len({(d.olt_id, d.pon_port) for d in hit}) >= 12
    assert max(sum(1 for d in hit if d.pon_port == p.pon_port and d.olt_id == p.olt_id) for p in hit) <= 8
    for device in devices:
        device.power_off()
    assert churn.step(64, devices, T0) == []


def test_cli_builds_the_scenario() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--scenario", "churn", "--churn-rate", "5", "--churn-down", "30:90",
                              "--churn-start", "10", "--churn-duration", "120", "--seed", "9"])
    (churn,) = scenarios_from(args)
    assert churn == Churn(rate=5.0, start=10.0, min_down=30.0, max_down=90.0, duration=120.0, seed=9)
    with pytest.raises(SystemExit):
        parser.parse_args(["--churn-down", "90:30"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--churn-rate", "0"])


async def test_a_fleet_runs_the_steps_over_http() -> None:
    acs = FakeAcs()
    await acs.start()
    churn = Churn(rate=240.0, start=0.5, min_down=0.5, max_down=1.0, duration=2.0, seed=1)  # 8 events
    fleet = Fleet(FleetConfig(url=acs.url, devices=20, ramp=200.0, boot_seconds=0.2, transfer_io=False,
                              scenarios=[churn]))
    try:
        await fleet.start()
        deadline = time.monotonic() + 15.0
        while sum(d.boot_count >= 2 for d in fleet.devices) < 8 or not all(d.online for d in fleet.devices):
            assert time.monotonic() < deadline, [d.boot_count for d in fleet.devices]
            await asyncio.sleep(0.05)
    finally:
        await fleet.stop()
        await acs.stop()
    assert sum(d.boot_count - 1 for d in fleet.devices) == 8
