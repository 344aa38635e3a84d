"""SOAP capture: the seam after each CWMP exchange that keeps it, masked, for a device whose
line-3 debug switch is on (``tasks/store/soap_captures.py``).

Nothing here touches the database on the session path of a device that is not captured: the
switches are read every ``REFRESH`` seconds by a background task into a set, and an exchange is
looked at only when that set is not empty. A session is tied to its device by its Inform (the
DeviceId) and the cookie the ACS set in reply; a request answered by another worker is tied by
one read of the session record. A capture that fails is logged and never fails the exchange.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from cwmp.device_id import make_device_id
from cwmp.errors import CwmpFault, ProtocolError
from cwmp.models import Inform
from cwmp.parse import parse
from tasks.soap_mask import masked
from tasks.stopping import cancel_and_wait
from tasks.store.sessions import SessionRepository
from tasks.store.soap_captures import SoapCaptureRepository

log = logging.getLogger("acs.cwmp")
REFRESH = 30.0  # seconds between two reads of the switches: a switch takes effect within this
SESSIONS_KEPT = 10_000  # session -> device pairs remembered per process


def session_of(cookie: str | None) -> str | None:
    """The session id in an ``acs_session`` cookie (``<id>``, ``<id>.<seq>`` or a lazy session's ``<id>.lazy``)."""
    return cookie.split(".", 1)[0] if cookie else None


class SoapCapture:
    def __init__(self, captures: SoapCaptureRepository, sessions: SessionRepository,
                 clock: Callable[[], datetime], refresh: float = REFRESH) -> None:
        self.captures = captures
        self.interval = refresh
        self.sessions = sessions
        self.clock = clock
        self.active: dict[str, datetime] = {}
        self._devices: OrderedDict[str, str] = OrderedDict()  # session id -> device id
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        self.active = await self.captures.active(self.clock())

    async def start(self) -> None:
        async def loop() -> None:
            while True:
                try:
                    await self.refresh()
                except Exception:  # the database is away: keep the last known switches
                    log.warning("SOAP capture: could not read the switches", exc_info=True)
                await asyncio.sleep(self.interval)

        self._task = asyncio.create_task(loop(), name="soap-capture-switches")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task, "the SOAP capture writer")

    async def after(self, cookie: str | None, body: bytes, status: int, reply_body: bytes,
                    set_session: str | None) -> None:
        """One exchange: kept when its device is being captured."""
        if not self.active:
            return
        try:
            await self._after(cookie, body, status, reply_body, set_session)
        except Exception:  # a capture must never break a session
            log.exception("SOAP capture failed")

    async def _after(self, cookie: str | None, body: bytes, status: int, reply_body: bytes,
                     set_session: str | None) -> None:
        session_id = session_of(set_session) or session_of(cookie)
        if session_id is None:
            return
        device_id = self._devices.get(session_id) or self._device_of_inform(body)
        if device_id is None:
            record = await self.sessions.get(session_id)
            device_id = None if record is None else str(record.get("device_id"))
        if device_id is None:
            return
        self._remember(session_id, device_id)
        now = self.clock()
        until = self.active.get(device_id)
        if until is None or until <= now:
            return
        await self.captures.record({"device_id": device_id, "session_id": session_id, "at": now, "status": status,
                                    "request": masked(body), "reply": masked(reply_body)})

    def _device_of_inform(self, body: bytes) -> str | None:
        if b"Inform" not in body:
            return None
        try:
            message = parse(body).body
        except (ProtocolError, CwmpFault):
            return None
        if not isinstance(message, Inform):
            return None
        ident = message.device_id
        return make_device_id(ident.oui, ident.product_class, ident.serial_number)

    def _remember(self, session_id: str, device_id: str) -> None:
        self._devices[session_id] = device_id
        self._devices.move_to_end(session_id)
        while len(self._devices) > SESSIONS_KEPT:
            self._devices.popitem(last=False)
