"""A connection request the CPE answered but did not act on is sent again.

TR-069 3.2.2: a CPE that gets a connection request during a session may not end that session
early; it answers 503, or opens the requested session once the current one is over. Much
firmware (and ``acs sim``) answers 200 and forgets the request instead. A task queued while the
device is finishing a session (its last message in flight: the session did not claim the task)
then waits for the device's next periodic Inform, up to its interval (an hour is common), while
line 2 has the subscriber on the phone. A UDP request (Annex G) can also be lost on the way.

So a request the device answered (or, over UDP, may have got) is followed up: when no Inform of
the device arrived ``FOLLOW_UP_AFTER`` seconds after it, it is sent again, at most once per delay.
A CPE that had opened the requested session meanwhile answers the repeat and opens no second one
(3.2.2: one session for any number of requests received before it). One follow-up per device runs
at a time in a process; past ``MAX_FOLLOWING`` devices at once (a bulk action's wave), further
requests are not followed up, which is logged.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from acs.connreq import ConnectionRequester, ConnectionRequestResult, Via
from cwmp.logtext import loggable
from tasks.secretbox import SecretBox
from tasks.store.devices import DeviceRepository

log = logging.getLogger("acs.connreq")
# Seconds after the first request at which the device's last Inform is checked (and the request
# sent again when none came): a CPE that ignored it during a session has ended that session by the
# first, a slow one has opened the session by the second.
FOLLOW_UP_AFTER = (3.0, 10.0)
MAX_FOLLOWING = 10_000
STORED_PRECISION = timedelta(milliseconds=1)  # the database keeps times to the millisecond


class FollowingRequester(ConnectionRequester):
    """``ConnectionRequester`` whose answered requests are followed up (the module's docstring)."""

    def __init__(
        self,
        box: SecretBox,
        timeout: float,
        attempts: int,
        devices: DeviceRepository,
        clock: Callable[[], datetime],
        follow_up_after: tuple[float, ...] = FOLLOW_UP_AFTER,
        max_following: int = MAX_FOLLOWING,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(box, timeout, attempts, monotonic=monotonic)
        self.devices = devices
        self.clock = clock
        self.follow_up_after = follow_up_after
        self.max_following = max_following
        self.following: dict[str, asyncio.Task[None]] = {}
        self.repeated = 0  # requests sent again, since the process started
        self._warned_full = False

    async def wake(self, device: Mapping[str, Any], via: Via = "auto") -> ConnectionRequestResult:
        sent_at = self.clock()
        result = await super().wake(device, via)
        if result.answered is not False and "_id" in device:  # a "none" result is never answered
            self._follow(str(device["_id"]), via, sent_at)
        return result

    def _follow(self, device_id: str, via: Via, sent_at: datetime) -> None:
        if device_id in self.following:
            return  # its follow-up looks for an Inform after an earlier request: any later one is too
        if len(self.following) >= self.max_following:
            if not self._warned_full:
                log.warning("connection requests: %d devices followed up already; later requests are not "
                            "sent again when ignored", self.max_following)
                self._warned_full = True
            return
        # A fresh context: the follow-up must not inherit the request's time limit (pymongo.timeout).
        task = asyncio.get_running_loop().create_task(self._follow_up(device_id, via, sent_at),
                                                      context=contextvars.Context())
        self.following[device_id] = task
        task.add_done_callback(lambda _: self._done(device_id, task))

    def _done(self, device_id: str, task: asyncio.Task[None]) -> None:
        if self.following.get(device_id) is task:
            del self.following[device_id]
        if len(self.following) < self.max_following:
            self._warned_full = False
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("follow-up of the connection request to %s failed: %s: %s",
                        loggable(device_id), type(exc).__name__, exc)

    async def _follow_up(self, device_id: str, via: Via, sent_at: datetime) -> None:
        waited = 0.0
        for delay in self.follow_up_after:
            await asyncio.sleep(delay - waited)
            waited = delay
            device = await self.devices.get(device_id)
            if device is None:
                return
            last_inform = device.get("last_inform")
            if last_inform is not None and last_inform >= sent_at - STORED_PRECISION:
                return  # a session followed the request
            self.repeated += 1
            log.info("connection request to %s sent again: no Inform %.0f s after it (a CPE may ignore "
                     "one during a session)", loggable(device_id), delay)
            result = await super().wake(device, via)
            if result.answered is False:
                return  # unreachable now: the caller was told of the first answer; nothing more to do

    async def close(self) -> None:
        for task in list(self.following.values()):
            task.cancel()
        if self.following:
            await asyncio.gather(*self.following.values(), return_exceptions=True)
        await super().close()
