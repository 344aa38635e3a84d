"""The simulator stops when asked (``acs sim`` on SIGTERM, the benchmarks' fleet runner)."""

from __future__ import annotations

import asyncio

import pytest

from acs.sim.fleet import Fleet, FleetConfig


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
