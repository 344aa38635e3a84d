"""What happened: a device's history (sessions, tasks, operator actions), sessions, job runs.

History merges three collections newest first. The cursor is a time: each page holds every
entry strictly before it, and a page never ends in the middle of a group of entries with the
same timestamp (unless one millisecond holds more entries than ``limit``), so nothing is
skipped between pages.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId

from acs.api.devices import device_or_404
from acs.api.errors import ApiError
from acs.api.pagination import cursor_text, cursor_time, decode_cursor, encode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from schemas.api import HistoryEntry, JobRun, JobRunsQuery, Page, PageQuery, Role, SessionView
from tasks.history import device_timeline


def cut_page(entries: list[HistoryEntry], limit: int) -> tuple[list[HistoryEntry], datetime | None]:
    """The first ``limit`` entries, shortened so the next page can start strictly before the last."""
    if len(entries) <= limit:
        return entries, None
    page = entries[:limit]
    boundary = entries[limit].at
    trimmed = [entry for entry in page if entry.at != boundary]
    if trimmed:
        page = trimmed
    return page, page[-1].at


async def device_history(call: Call) -> Reply:
    device_id = call.path("device_id")
    query = call.query(PageQuery)
    await device_or_404(call, device_id)
    before = cursor_time(decode_cursor(query.cursor))
    entries = await device_timeline(call.api.services.repositories, device_id, before, query.limit + 1)
    page, last = cut_page(entries, query.limit)
    cursor = encode_cursor({"at": last}) if last is not None else None
    return Reply(Page[HistoryEntry](items=page, next_cursor=cursor))


async def get_session(call: Call) -> Reply:
    session_id = call.path("session_id")
    session = await call.api.services.repositories.sessions.get(session_id)
    if session is None:
        raise ApiError.not_found(f"session {session_id}")
    return Reply(SessionView.model_validate({**session, "id": session["_id"]}))


async def job_runs(call: Call) -> Reply:
    query = call.query(JobRunsQuery)
    position = decode_cursor(query.cursor)
    started = cursor_time(position)
    run_id = cursor_text(position, "id") if started is not None else None
    before = (started, ObjectId(run_id) if run_id and ObjectId.is_valid(run_id) else run_id) if started else None
    found = await call.api.services.repositories.jobs.runs(query.job, query.limit + 1, before)
    items = [JobRun.model_validate({**run, "id": str(run["_id"])}) for run in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda run: {"at": run["started_at"], "id": str(run["_id"])})
    return Reply(Page[JobRun](items=items, next_cursor=cursor))


ROUTES = [
    Route("GET", "/api/v1/devices/{device_id}/history", device_history,
          "Sessions, tasks, operator actions, online/offline and health changes, incidents of a device",
          Role.VIEWER, "history",
          query=PageQuery, response=Page[HistoryEntry], other_statuses=(400, 404)),
    Route("GET", "/api/v1/sessions/{session_id}", get_session, "One CWMP session", Role.VIEWER, "history",
          response=SessionView, other_statuses=(404,)),
    Route("GET", "/api/v1/jobs/runs", job_runs, "Runs of the scheduled jobs, newest first", Role.VIEWER,
          "history", query=JobRunsQuery, response=Page[JobRun], other_statuses=(400,)),
]
