"""Stopping a background task for good, even when a cancel is lost on the way.

On Python 3.11 a cancel that meets the end of an ``asyncio.wait_for`` is dropped (the wait returns
its result instead), and the driver waits that way in its pool checkout under contention: a loop
that reads the database (a refresher, a poller, a heartbeat) then goes on after its cancel, and
``task.cancel(); await task`` waits for ever. Seen in the outage e2e under load (the scheduler's
heartbeats, ``tasks/scheduler.py``). So the cancel is sent again until the task ends, and the wait
is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("acs.stopping")
RESEND_EVERY = 0.5  # seconds between two cancels of a task that is still running
GIVE_UP_AFTER = 30.0


async def cancel_and_wait(task: asyncio.Task[Any], what: str, timeout: float = GIVE_UP_AFTER) -> bool:
    """Cancel ``task`` and wait until it ended, cancelling again while it runs; False (logged)
    when it still runs after ``timeout`` seconds. Its outcome is consumed, never raised here; a
    cancel of the caller itself still reaches the caller."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            log.warning("%s did not end within %.0f s of being cancelled", what, timeout)
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(RESEND_EVERY, left))
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("%s ended with %s: %s", what, type(error).__name__, error)
    return True
