"""The simulator stops when asked (``acs sim`` on SIGTERM, the benchmarks' fleet runner)."""

from __future__ import annotations

import asyncio

import pytest

from acs.sim.fleet import Fleet, FleetConfig
from acs.sim.scenarios import OltOutage


@pytest.mark.parametrize("turns", range(6))
async def test_the_fleet_stops_when_a_change_wakes_its_scheduler_as_the_stop_begins(turns: int) -> None:
    """A session ending (the scheduler's event set) in the loop turns just before a stop: the stop
    must still end (Python 3.11's ``wait_for`` can swallow the scheduler's cancel in that turn; seen as
    ``acs sim`` not exiting on SIGTERM in CI)."""
    fleet = Fleet(FleetConfig(url="http://127.0.0.1:9/", devices=1, cr_listen=None, autostart=False))
    await fleet.start()
    fleet.power_on(fleet.devices[0].serial, boot_delay=3600.0)  # the scheduler waits with a timeout
    for _ in range(3):
        await asyncio.sleep(0)
    fleet._changed.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    stopping = asyncio.ensure_future(fleet.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "the fleet did not stop"


async def test_scenarios_on_trigger_wait_for_it_then_count_from_it() -> None:
    """``acs sim --scenarios-on-signal``: an outage due "at once" waits for the trigger (SIGUSR1), so a
    test or a drill starts it once the ACS knows the fleet, however long that took."""
    outage = OltOutage(start=0.0, duration=3600.0, olt="OLT-0001", pons=1)
    config = FleetConfig(url="http://127.0.0.1:9/", devices=8, onts_per_pon=4, cr_listen=None, autostart=False,
                         scenarios=[outage], scenarios_on_trigger=True)
    fleet = Fleet(config)
    await fleet.start()
    try:
        affected = outage.affected(fleet.devices)
        assert affected
        for device in affected:
            fleet.power_on(device.serial, boot_delay=3600.0)  # plugged in: a boot pending (power_off drops it)

        def booting() -> list[bool]:
            return [any(timer.kind == "boot" for timer in device.timers) for device in affected]

        for _ in range(10):  # loop turns enough for an untriggered scenario due at once to begin
            await asyncio.sleep(0)
        assert all(booting())
        assert fleet.start_scenarios() and not fleet.start_scenarios()
        deadline = asyncio.get_running_loop().time() + 5
        while any(booting()):
            assert asyncio.get_running_loop().time() < deadline, "the outage did not begin"
            await asyncio.sleep(0.01)
    finally:
        await fleet.stop()
