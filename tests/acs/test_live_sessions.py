"""LiveSessions: a worker reuses the session record it saved only when the cookie proves it newest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from acs.cwmp_server.live import SWEEP_EVERY, LiveSessions, parse_session_cookie, session_cookie

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Transport:
    """Stands in for an asyncio transport: weakly referenceable, may be closing."""

    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


def record(seq: int, expires_in: float = 30) -> dict[str, object]:
    return {"_id": "S", "seq": seq, "expires_at": NOW + timedelta(seconds=expires_in), "snapshot": {"phase": "x"}}


def test_the_cookie_parses_with_and_without_a_sequence() -> None:
    assert parse_session_cookie(session_cookie("abc-_9", 3)) == ("abc-_9", 3)
    assert parse_session_cookie("abc") == ("abc", None)  # the InformResponse's cookie
    assert parse_session_cookie("abc.") == ("abc", None)
    assert parse_session_cookie("abc.x1") == ("abc", None)
    assert parse_session_cookie("abc." + "9" * 12) == ("abc", None)  # no absurd numbers


def test_a_record_is_reused_only_for_its_own_sequence_on_its_own_open_connection() -> None:
    live, conn = LiveSessions(), Transport()
    live.put("S", conn, record(2), NOW)
    hit = live.get("S", 2, conn, NOW)
    assert hit is not None and hit["seq"] == 2
    hit["seq"] = 99  # a copy: the caller's changes do not leak into the cache
    assert (live.get("S", 2, conn, NOW) or {})["seq"] == 2
    assert live.get("S", None, conn, NOW) is None  # a CPE still sending the Inform's cookie
    assert live.get("S", 1, conn, NOW) is None  # an older sequence
    assert live.get("S", 3, conn, NOW) is None  # another worker saved a newer one
    assert live.get("S", 2, Transport(), NOW) is None  # another connection
    assert live.get("T", 2, conn, NOW) is None
    conn.closing = True
    assert live.get("S", 2, conn, NOW) is None


def test_an_expired_record_is_dropped_so_the_database_decides() -> None:
    live, conn = LiveSessions(), Transport()
    live.put("S", conn, record(1, expires_in=5), NOW)
    assert live.get("S", 1, conn, NOW + timedelta(seconds=6)) is None
    assert len(live) == 0


def test_sessions_that_ended_elsewhere_are_swept_and_the_size_is_bounded() -> None:
    live = LiveSessions(limit=50)
    kept = Transport()
    live.put("keep", kept, record(1, expires_in=3600), NOW)
    for n in range(SWEEP_EVERY):
        gone = Transport()
        live.put(f"s{n}", gone, record(1, expires_in=1), NOW)
        del gone  # the connection closed and was collected
    assert len(live) <= 50
    assert live.get("keep", 1, kept, NOW) is not None


def test_the_record_made_at_the_inform_serves_the_next_message_on_its_connection_only() -> None:
    live, conn = LiveSessions(), Transport()
    live.put("S", conn, record(0), NOW)
    hit = live.first("S", conn, NOW)
    assert hit is not None and hit["seq"] == 0  # unverified: the caller's save names sequence 0
    assert live.first("S", Transport(), NOW) is None  # another connection reads the database
    live.put("S", conn, record(1), NOW)
    assert live.first("S", conn, NOW) is None  # saved since: only a cookie naming 1 may use it
