"""Session records held by the worker that saved them last, to skip reading them back.

A record kept here is used only when it is provably the newest: every reply after the
InformResponse sets the cookie to ``<session id>.<seq>`` (the sequence number the record was saved
with), and a record is used only for a message whose cookie names exactly the sequence this worker
saved, on the same still open connection, before the session's idle expiry. Anything else reads
the database as before: a CPE that does not update its cookie (it keeps sending the Inform's), a
CPE whose messages alternate between workers or hosts (behind a load balancer: the other worker's
save issued a newer cookie), a new connection. A lost save (``seq``) drops the entry.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

Document = dict[str, Any]
DEFAULT_LIMIT = 50_000


class LiveSessions:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._entries: dict[str, tuple[weakref.ref[Any], Document]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, session_id: str, seq: int | None, connection: Any, now: datetime) -> Document | None:
        """A copy of the record this worker saved as ``seq`` (the cookie's), if it still applies."""
        entry = self._entries.get(session_id)
        if (
            entry is None
            or seq is None
            or entry[1].get("seq") != seq
            or connection is None
            or entry[0]() is not connection
            or _closing(connection)
        ):
            self.misses += 1
            return None
        record = entry[1]
        if record["expires_at"] <= now:  # the reaper may be ending it: ask the database
            self.drop(session_id)
            self.misses += 1
            return None
        self.hits += 1
        return dict(record)

    def put(self, session_id: str, connection: Any, record: Document) -> None:
        if connection is None:
            return
        try:
            ref = weakref.ref(connection)
        except TypeError:  # a transport that cannot be weakly referenced: never cache
            return
        self._entries.pop(session_id, None)
        self._entries[session_id] = (ref, record)
        if len(self._entries) > self.limit:
            self._evict()

    def drop(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self) -> None:
        """Forget entries whose connection is gone; if that is not enough, the oldest half."""
        for session_id, (ref, _record) in list(self._entries.items()):
            connection = ref()
            if connection is None or _closing(connection):
                del self._entries[session_id]
        if len(self._entries) > self.limit:
            for session_id in list(self._entries)[: len(self._entries) // 2]:
                del self._entries[session_id]


def _closing(connection: Any) -> bool:
    is_closing = getattr(connection, "is_closing", None)
    return bool(is_closing()) if callable(is_closing) else False


def session_cookie(session_id: str, seq: int) -> str:
    return f"{session_id}.{seq}"


def parse_session_cookie(cookie: str) -> tuple[str, int | None]:
    """``<id>.<seq>`` -> (id, seq); the InformResponse's plain ``<id>`` -> (id, None)."""
    session_id, dot, seq = cookie.partition(".")
    return (session_id, int(seq)) if dot and seq.isdigit() and len(seq) < 10 else (session_id, None)
