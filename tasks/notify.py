"""In-process wake-ups for waiters on a task (``wait=SECONDS`` in the API).

The session that finishes a task calls :meth:`TaskNotifier.notify`; API requests waiting on
that task in the same process return at once. Waiters in other processes fall back to their
slow re-read of the database (see ``TaskQueue.wait_final``).
"""

from __future__ import annotations

import asyncio
import contextlib


class TaskNotifier:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}

    def notify(self, task_id: str) -> None:
        event = self._events.get(task_id)
        if event is not None:
            event.set()

    async def wait(self, task_id: str, timeout: float) -> bool:
        """True when notified within ``timeout`` seconds."""
        event = self._events.setdefault(task_id, asyncio.Event())
        self._waiters[task_id] = self._waiters.get(task_id, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
            return event.is_set()
        finally:
            self._waiters[task_id] -= 1
            if self._waiters[task_id] == 0:
                del self._waiters[task_id]
                del self._events[task_id]
