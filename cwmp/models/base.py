"""Shared pieces of the message models: the frozen base class and the CWMP time type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class CwmpModel(BaseModel):
    """Messages are values: frozen, compared by content, tuples instead of lists."""

    model_config = ConfigDict(frozen=True)


def _assume_utc(value: datetime | None) -> datetime | None:
    # TR-069 A.2.1 (dateTime): a time without a zone is taken as UTC; firmware often omits it.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# None stands for the TR-069 "Unknown Time" 0001-01-01T00:00:00Z (and for unreadable values).
CwmpTime = Annotated[datetime | None, AfterValidator(_assume_utc)]
