"""Keyset pagination: ``limit`` and an opaque ``cursor`` (base64url JSON of the last position).

A cursor names where the previous page stopped (e.g. the last device_id, or the time and id of
the last task), never an offset, so pages stay consistent while documents are added.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from acs.api.errors import ApiError
from schemas.api import Page

T = TypeVar("T")
Item = TypeVar("Item", bound=BaseModel)
Position = dict[str, Any]


def encode_cursor(position: Position) -> str:
    text = json.dumps(position, separators=(",", ":"), default=_json_default)
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def decode_cursor(cursor: str | None) -> Position | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    if not isinstance(position, dict):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return position


def cursor_text(position: Position | None, key: str) -> str | None:
    if position is None:
        return None
    value = position.get(key)
    if not isinstance(value, str):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return value


def cursor_time(position: Position | None, key: str = "at") -> datetime | None:
    text = cursor_text(position, key)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    if moment.tzinfo is None:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    try:
        # Stored times are UTC: a forged offset near year 1 or 9999 does not convert (and BSON
        # would fail on it later, as a 500).
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc


def cursor_int(position: Position | None, key: str) -> int | None:
    """A non-negative integer of the cursor (an id), within what BSON stores (int64)."""
    if position is None:
        return None
    value = position.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return value


def next_cursor(fetched: Sequence[T], limit: int, position: Callable[[T], Position]) -> str | None:
    """Repositories are asked for ``limit + 1`` rows: one more means there is a next page."""
    if len(fetched) <= limit:
        return None
    return encode_cursor(position(fetched[limit - 1]))


def keyset_page(
    page: type[Page[Item]], fetched: Sequence[T], limit: int, view: Callable[[T], Item],
    position: Callable[[T], Position],
) -> Page[Item]:
    """The first ``limit`` of ``fetched`` (``limit + 1`` rows asked for) as views, and the cursor of
    the next page if there is one."""
    return page(items=[view(row) for row in fetched[:limit]], next_cursor=next_cursor(fetched, limit, position))


def _time_id(position: Position | None) -> tuple[datetime, str] | None:
    at = cursor_time(position)
    return None if at is None else (at, cursor_text(position, "id") or "")


def time_id_position(cursor: str | None) -> tuple[datetime, str] | None:
    """The ``(at, id)`` keyset position of an API page's cursor (newest first: the next page starts
    below it); a cursor this API did not return is a 400."""
    return _time_id(decode_cursor(cursor))


def time_id_before(cursor: str | None) -> tuple[datetime, str] | None:
    """The ``(at, id)`` keyset position of a console page's cursor; a cursor that does not decode
    starts again at the first page (the console's lists are links, not an API contract)."""
    try:
        position = decode_cursor(cursor)
    except ApiError:
        position = None
    return _time_id(position)
