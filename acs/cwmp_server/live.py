"""Session records held by the worker that saved them last, to skip reading them back.

A record kept here is used (:meth:`LiveSessions.get`) only when it is provably the newest: every
reply after the InformResponse sets the cookie to ``<session id>.<seq>`` (the sequence number the
record was saved with), and a record is used only for a message whose cookie names exactly the
sequence this worker saved, on the same still open connection, before the session's idle expiry.
The one exception is the record created at the Inform (:meth:`LiveSessions.first`), used for the
next message on the same connection although its cookie names no sequence: the service checks it
by its save (which names sequence 0) and handles the message again on the stored record if the
session moved on elsewhere. Anything else reads the database as before: a CPE that does not update
its cookie (it keeps sending the Inform's), a CPE whose messages alternate between workers or
hosts (behind a load balancer: the other worker's save issued a newer cookie), a new connection.
A lost save (``seq``) drops the entry.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.records import SessionRecord

DEFAULT_LIMIT = 20_000  # sessions in flight on one worker; each entry is a few KB
SWEEP_EVERY = 1024  # puts between two sweeps of entries whose session or connection is over


class LiveSessions:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._entries: dict[str, tuple[weakref.ref[Any], SessionRecord]] = {}
        self.hits = 0
        self.misses = 0
        self._puts = 0

    def get(self, session_id: str, seq: int | None, connection: Any, now: datetime) -> SessionRecord | None:
        """A copy of the record this worker saved as ``seq`` (the cookie's), if it still applies."""
        entry = self._entries.get(session_id)
        if (
            entry is None
            or seq is None
            or entry[1].get("seq") != seq
            or connection is None
            or entry[0]() is not connection
            or connection_closing(connection)
        ):
            self.misses += 1
            return None
        record = entry[1]
        if record["expires_at"] <= now:  # the reaper may be ending it: ask the database
            self.drop(session_id)
            self.misses += 1
            return None
        self.hits += 1
        return record.copy()

    def first(self, session_id: str, connection: Any, now: datetime) -> SessionRecord | None:
        """A copy of the record this worker created at the Inform (sequence 0), for the next message
        on the same open connection whose cookie names no sequence (the InformResponse's). Unlike
        :meth:`get` it is not proven newest: the CPE may have gone to another worker in between, so
        the caller checks it when saving (the save names sequence 0)."""
        entry = self._entries.get(session_id)
        if entry is None or entry[1].get("seq") != 0:
            return None
        return self.get(session_id, 0, connection, now)

    def put(self, session_id: str, connection: Any, record: SessionRecord, now: datetime) -> None:
        if connection is None:
            return
        self._puts += 1
        if self._puts % SWEEP_EVERY == 0:
            self._sweep(now)
        try:
            ref = weakref.ref(connection)
        except TypeError:  # a transport that cannot be weakly referenced: never cache
            return
        self._entries.pop(session_id, None)
        self._entries[session_id] = (ref, record)
        if len(self._entries) > self.limit:
            self._evict(now)

    def drop(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _sweep(self, now: datetime) -> None:
        """Forget sessions another worker ended, or whose connection or idle time is over."""
        for session_id, (ref, record) in list(self._entries.items()):
            connection = ref()
            if connection is None or connection_closing(connection) or record["expires_at"] <= now:
                del self._entries[session_id]

    def _evict(self, now: datetime) -> None:
        """Over the limit: forget what is over; if that is not enough, the oldest half."""
        self._sweep(now)
        if len(self._entries) > self.limit:
            for session_id in list(self._entries)[: len(self._entries) // 2]:
                del self._entries[session_id]


def connection_closing(connection: Any) -> bool:
    """Whether a transport (a kept-alive connection) is closed or closing."""
    is_closing = getattr(connection, "is_closing", None)
    return bool(is_closing()) if callable(is_closing) else False


@dataclass
class Lazy:
    """A lazy session (``acs/cwmp_server/service.py``): its state, held by this worker alone, and the
    connection it came on."""

    connection: weakref.ref[Any] | None
    record: SessionRecord


class LazySessions:
    """This worker's lazy sessions, by session id and by device (a device's new Inform ends its old one)."""

    def __init__(self) -> None:
        self._by_session: dict[str, Lazy] = {}
        self._by_device: dict[str, str] = {}

    def put(self, lazy: Lazy) -> None:
        self._by_session[lazy.record["_id"]] = lazy
        self._by_device[lazy.record["device_id"]] = lazy.record["_id"]

    def get(self, session_id: str) -> Lazy | None:
        return self._by_session.get(session_id)

    def pop(self, session_id: str) -> Lazy | None:
        lazy = self._by_session.pop(session_id, None)
        if lazy is not None and self._by_device.get(lazy.record["device_id"]) == session_id:
            del self._by_device[lazy.record["device_id"]]
        return lazy

    def of_device(self, device_id: str) -> Lazy | None:
        session_id = self._by_device.get(device_id)
        return None if session_id is None else self._by_session.get(session_id)

    def items(self) -> list[tuple[str, Lazy]]:
        return list(self._by_session.items())

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._by_session

    def __len__(self) -> int:
        return len(self._by_session)

    def __bool__(self) -> bool:
        return bool(self._by_session)


LAZY_MARK = "lazy"  # the cookie of a session whose state its worker alone holds (no lease yet)


def session_cookie(session_id: str, seq: int) -> str:
    return f"{session_id}.{seq}"


def lazy_cookie(session_id: str) -> str:
    """The InformResponse's cookie of a lazy session: ``<id>.lazy``. Another worker that gets it
    with no lease stored waits a moment for the session's worker to write it out."""
    return f"{session_id}.{LAZY_MARK}"


def is_lazy_cookie(cookie: str) -> bool:
    return cookie.partition(".")[2] == LAZY_MARK


def parse_session_cookie(cookie: str) -> tuple[str, int | None]:
    """``<id>.<seq>`` -> (id, seq); the InformResponse's plain ``<id>`` -> (id, None)."""
    session_id, dot, seq = cookie.partition(".")
    return (session_id, int(seq)) if dot and seq.isdigit() and len(seq) < 10 else (session_id, None)
