"""Stopping a background task whose first cancel is lost (Python 3.11's asyncio.wait_for race, as
inside the database driver): it is cancelled again until it ends, and the wait is bounded."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tasks.stopping import cancel_and_wait


async def _loses_first_cancel(cancels_seen: list[int]) -> None:
    """A poller whose read swallows the first cancel for good, then goes on polling."""
    while True:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            cancels_seen.append(1)
            if len(cancels_seen) > 1:
                raise
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()


async def test_a_task_that_loses_its_first_cancel_is_cancelled_again_and_ends() -> None:
    seen: list[int] = []
    poller = asyncio.create_task(_loses_first_cancel(seen))
    await asyncio.sleep(0)  # it starts polling
    assert await cancel_and_wait(poller, "the poller", timeout=10)
    assert poller.cancelled() and len(seen) == 2
    # The pattern this replaces waited for ever: cancel once, then await the task.
    seen.clear()
    poller = asyncio.create_task(_loses_first_cancel(seen))
    await asyncio.sleep(0)
    poller.cancel()
    done, _ = await asyncio.wait({poller}, timeout=1)
    assert not done and len(seen) == 1
    assert await cancel_and_wait(poller, "the poller", timeout=10)


async def test_a_task_that_never_ends_is_given_up_on_and_logged(caplog: Any) -> None:
    deaf_until = asyncio.Event()

    async def deaf() -> None:
        while not deaf_until.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()

    caplog.set_level(logging.WARNING, logger="acs.stopping")
    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    assert not await cancel_and_wait(task, "the deaf task", timeout=0.6)
    assert any("the deaf task did not end" in record.getMessage() for record in caplog.records)
    deaf_until.set()
    await task
