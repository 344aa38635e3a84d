"""Keeps the local development database of ``acs serve`` running: restarts it when it dies.

``acs serve`` with no ``ACS_MONGODB_URI`` runs FerretDB (over its own PostgreSQL) or mongod as
children. If one of them dies (killed, out of memory, a crash), every request would fail with
503 until a person restarted the ACS. The supervisor checks the children every
``check_every`` seconds; when one is gone it logs which, and starts the database again on the
same port (the workers' URI stays valid; their drivers reconnect). A start that fails is retried
with an exponential back-off (1 s, 2 s, 4 s ... ``max_backoff``), each attempt logged; the back-off
is forgotten once the database has stayed up for ``stable_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from acs.localdb import LocalMongo
from tasks.stopping import cancel_and_wait

log = logging.getLogger("acs.localdb")
Starter = Callable[[int], Awaitable[LocalMongo]]  # starts (or adopts) the database on this port


class LocalDatabaseSupervisor:
    def __init__(
        self,
        server: LocalMongo,
        start: Starter,
        *,
        check_every: float = 1.0,
        first_backoff: float = 1.0,
        max_backoff: float = 60.0,
        stable_after: float = 60.0,
    ) -> None:
        self.server = server
        self.restarts = 0
        self._start = start
        self._check_every = check_every
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._stable_after = stable_after
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    async def end(self) -> None:
        """Stop watching (the caller then stops the database it holds in ``server``)."""
        if self._task is not None:
            await cancel_and_wait(self._task, "the local database's supervisor")
            self._task = None

    def dead(self) -> str | None:
        """Which part of the database is gone, in words; None when all runs."""
        if not self.server.running():
            return f"{self.server.kind} (pid {self.server.pid})"
        postgres = self.server.postgres
        if postgres is not None and not postgres.running():
            return f"its PostgreSQL (pid {postgres.pid})"
        return None

    async def _watch(self) -> None:
        backoff = 0.0  # the first restart is immediate; a database that keeps dying is restarted less often
        up_since = time.monotonic()
        while True:
            await asyncio.sleep(self._check_every)
            gone = self.dead()
            if gone is None:
                if time.monotonic() - up_since >= self._stable_after:
                    backoff = 0.0
                continue
            log.warning("the local database stopped: %s is gone", gone)
            while not await self._restart(backoff):
                backoff = self._next(backoff)
            backoff = self._next(backoff)
            up_since = time.monotonic()

    def _next(self, backoff: float) -> float:
        return self._first_backoff if backoff == 0 else min(backoff * 2, self._max_backoff)

    async def _restart(self, delay: float) -> bool:
        """One attempt at starting the database again on its port, after ``delay`` seconds."""
        port = self.server.port
        if delay:
            log.warning("restarting the local database on port %d in %.0f s", port, delay)
            await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            await self.server.stop(grace=5.0)  # whatever part still runs (its PostgreSQL), and the pid file
        try:
            self.server = await self._start(port)
        except Exception as exc:
            log.error("restarting the local database on port %d failed: %s", port, exc)
            return False
        self.restarts += 1
        log.warning("the local database runs again: %s at %s (pid %d)", self.server.kind, self.server.uri,
                    self.server.pid)
        return True
