"""Line-3 tools of a device: notes, a parameter diff against another device, the vendor
configuration file backed up (Upload) and restored (Download), and the SOAP capture switch with
the captured exchanges of a session (acs/cwmp_server/capture.py keeps them, masked).

Backup and restore are ordinary tasks (``upload``/``download``, tasks/kinds/transfers.py) through
the same queue, file store and audit as the API: a backup is the device's Upload to the ACS's own
URL (TR-069 A.4.1.5, FileType ``1 Vendor Configuration File``), stored linked to the task and the
device; a restore is a Download of one of them (A.4.1.4, ``3 Vendor Configuration File``). A
configuration file may hold passwords in clear, so only admins download one from the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from acs.api.errors import ApiError
from acs.api.files import resolve_transfer
from acs.console.device import attachment
from acs.console.web import audit, console_of, device_url, form_of, guard, refuse, user_of
from schemas.api import Role
from schemas.tasks import DownloadTask, UploadTask
from tasks.queue import new_task_id
from tasks.store.db import Document
from tasks.store.devices import DeviceFilter
from tasks.store.files import FileFilter, is_file_id, metadata
from tasks.store.notes import NOTE_CHARS
from tasks.store.parameters import CachedParameter

CAPTURE_HOURS = (1, 4, 24)  # how long a SOAP capture switch stays on
BACKUP_TYPE = "1 Vendor Configuration File"  # Upload FileType, TR-069 A.4.1.5
RESTORE_TYPE = "3 Vendor Configuration File"  # Download FileType, TR-069 A.4.1.4
TRANSFER_EXPIRY = 3600
BACKUPS_SHOWN = 20
DIFF_ROWS = 2000


def tools_url(device_id: str) -> str:
    return device_url(device_id, "/tools")


async def _device(request: web.Request) -> Document | None:
    return await console_of(request).api.services.repositories.devices.get(request.match_info["device_id"])


@guard(Role.VIEWER)
async def tools_page(request: web.Request) -> web.StreamResponse:
    return await _tools(request)


async def _tools(request: web.Request, error: str | None = None, status: int = 200,
                 **params: Any) -> web.StreamResponse:
    console = console_of(request)
    repositories = console.api.services.repositories
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    device_id = device["_id"]
    notes = await repositories.notes.for_device(device_id)
    backups = await repositories.files.page(FileFilter(file_type=BACKUP_TYPE, device_id=device_id), None,
                                            BACKUPS_SHOWN)
    transfers = [task for task in await repositories.tasks.for_device(device_id, None, 50)
                 if task["kind"] in ("upload", "download")
                 and (task.get("params") or {}).get("file_type") in (BACKUP_TYPE, RESTORE_TYPE)][:10]
    switch = await repositories.soap_captures.switch_of(device_id)
    now = console.api.services.clock()
    capturing = switch if switch is not None and _aware(switch["until"]) > now else None
    captured = await repositories.soap_captures.sessions_of(device_id)
    return console.renderer.page("tools.html", user_of(request), status=status, device=device, notes=notes,
                                 backups=backups, transfers=transfers, error=error, error_params=params,
                                 note_chars=NOTE_CHARS, metadata=metadata, capturing=capturing,
                                 captured=captured, capture_hours=CAPTURE_HOURS)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@guard(Role.OPERATOR)
async def capture_switch(request: web.Request) -> web.StreamResponse:
    """Switch SOAP capture on for 1, 4 or 24 hours, or off (``hours=0``)."""
    services = console_of(request).api.services
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    hours = (await form_of(request)).get("hours", "")
    captures = services.repositories.soap_captures
    if hours == "0":
        await captures.switch_off(device["_id"])
        await audit(request, "Switch SOAP capture off for a device", 200, device_id=device["_id"])
    elif hours.isascii() and hours.isdigit() and int(hours) in CAPTURE_HOURS:
        until = services.clock() + timedelta(hours=int(hours))
        await captures.switch_on(device["_id"], until, user_of(request).who)
        await audit(request, f"Switch SOAP capture on for a device for {hours} h", 200, device_id=device["_id"])
    else:
        return await _tools(request, "capture_hours", 422, choices=", ".join(map(str, CAPTURE_HOURS)))
    raise web.HTTPSeeOther(tools_url(device["_id"]))


@guard(Role.VIEWER)
async def session_soap(request: web.Request) -> web.StreamResponse:
    """The captured exchanges of one session (secrets masked when they were stored)."""
    console = console_of(request)
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    session_id = request.match_info["session_id"]
    exchanges = [doc for doc in await console.api.services.repositories.soap_captures.for_session(session_id)
                 if doc.get("device_id") == device["_id"]]
    return console.renderer.page("soap.html", user_of(request), device=device, session_id=session_id,
                                 exchanges=exchanges)


@guard(Role.OPERATOR)
async def add_note(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    text = (await form_of(request)).get("text", "").strip()
    if not text or len(text) > NOTE_CHARS:
        return await _tools(request, "note_invalid", 422, max=NOTE_CHARS)
    note_id = await services.repositories.notes.add(device["_id"], user_of(request).who, text, services.clock())
    await audit(request, "Add a note to a device", 201, device_id=device["_id"], note_id=note_id)
    raise web.HTTPSeeOther(tools_url(device["_id"]))


@guard(Role.OPERATOR)
async def delete_note(request: web.Request) -> web.StreamResponse:
    services = console_of(request).api.services
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    note_id = request.match_info["note_id"]
    if not await services.repositories.notes.delete(device["_id"], note_id):
        return await _tools(request, "note_not_found", 404)
    await audit(request, "Delete a note of a device", 200, device_id=device["_id"], note_id=note_id)
    raise web.HTTPSeeOther(tools_url(device["_id"]))


async def _transfer(request: web.Request, device: Document, body: UploadTask | DownloadTask,
                    summary: str) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    task_id = new_task_id()
    try:
        resolved = await resolve_transfer(services, body, device, task_id)
    except ApiError as refused:  # a stored file for another model
        return await _tools(request, "restore_refused", 422, reason=refused.message)
    task, _created = await services.queue.create(device["_id"], resolved, user_of(request).who, task_id=task_id,
                                                 as_sent=body)
    await console.api.connreq.wake(device)
    await audit(request, summary, 202, device_id=device["_id"], task_ids=[task["_id"]], kind=body.kind)
    raise web.HTTPSeeOther(tools_url(device["_id"]))


@guard(Role.OPERATOR)
async def backup(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    body = UploadTask(kind="upload", file_type=BACKUP_TYPE, expires_in=TRANSFER_EXPIRY)
    return await _transfer(request, device, body, "Back up the device's configuration file (Upload)")


@guard(Role.OPERATOR)
async def restore(request: web.Request) -> web.StreamResponse:
    services = console_of(request).api.services
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    form = await form_of(request)
    file_id = form.get("file_id", "")
    if form.get("confirm") != "yes":
        return await _tools(request, "restore_unconfirmed", 422)
    stored = await services.repositories.files.get(file_id) if is_file_id(file_id) else None
    meta = metadata(stored or {})
    if stored is None or meta.get("file_type") != BACKUP_TYPE or meta.get("device_id") != device["_id"]:
        return await _tools(request, "restore_not_a_backup", 404)
    body = DownloadTask(kind="download", file_type=RESTORE_TYPE, file_id=file_id, expires_in=TRANSFER_EXPIRY)
    return await _transfer(request, device, body, f"Restore the device's configuration file {file_id} (Download)")


@guard(Role.ADMIN)
async def backup_file(request: web.Request) -> web.StreamResponse:
    """The backed-up file itself (admins: it may hold the device's passwords in clear)."""
    files = console_of(request).api.services.repositories.files
    device = await _device(request)
    file_id = request.match_info["file_id"]
    stored = await files.get(file_id) if device is not None and is_file_id(file_id) else None
    if device is None or stored is None or metadata(stored).get("device_id") != device["_id"]:
        return refuse(request, 404, "restore_not_a_backup")
    await audit(request, f"Download the device's configuration backup {file_id}", 200, device_id=device["_id"])
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": attachment(f"config-{device.get('serial_number') or 'device'}-{file_id[:8]}.cfg"),
    })
    response.content_length = int(stored["length"])
    await response.prepare(request)
    async for piece in files.read(file_id, 0, int(stored["length"])):
        await response.write(piece)
    await response.write_eof()
    return response


@dataclass(frozen=True)
class DiffRow:
    name: str
    mine: str | None
    theirs: str | None

    @property
    def kind(self) -> str:
        if self.theirs is None:
            return "only_mine"
        return "only_theirs" if self.mine is None else "differs"


def diff(mine: dict[str, CachedParameter], theirs: dict[str, CachedParameter]) -> list[DiffRow]:
    """Parameters whose cached values differ, or that only one device has (objects left out).

    Secrets come masked (``***``) from the cache, so two different passwords compare equal: the
    diff never shows one.
    """
    names = sorted({name for name in (*mine, *theirs) if not name.endswith(".")})
    rows = []
    for name in names:
        a, b = mine.get(name), theirs.get(name)
        left = None if a is None else str(a.value if a.value is not None else "")
        right = None if b is None else str(b.value if b.value is not None else "")
        if left != right:
            rows.append(DiffRow(name, left, right))
    return rows


async def _other_device(request: web.Request, text: str) -> Document | None:
    devices = console_of(request).api.services.repositories.devices
    found = await devices.get(text)
    if found is not None:
        return found
    page = await devices.search_page(DeviceFilter(q=text), None, 2)
    return page.devices[0] if len(page.devices) == 1 else None


@guard(Role.VIEWER)
async def diff_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    parameters = console.api.services.repositories.parameters
    device = await _device(request)
    if device is None:
        return refuse(request, 404, "device_not_found")
    other_text = request.query.get("other", "").strip()
    prefix = request.query.get("prefix", "").strip()
    if len(prefix) > 256 or len(other_text) > 256 or (prefix and not prefix.endswith(".")):
        return refuse(request, 400, "diff_bad_prefix")
    other = await _other_device(request, other_text) if other_text else None
    rows: list[DiffRow] = []
    if other is not None:
        rows = diff(await parameters.get(device["_id"], prefix), await parameters.get(other["_id"], prefix))
    status = 404 if other_text and other is None else 200
    return console.renderer.page("diff.html", user_of(request), status=status, device=device, other=other,
                                 other_text=other_text, prefix=prefix, rows=rows[:DIFF_ROWS], total=len(rows),
                                 shown_max=DIFF_ROWS)


ROUTES = [
    web.get("/devices/{device_id}/tools", tools_page),
    web.post("/devices/{device_id}/notes", add_note),
    web.post("/devices/{device_id}/notes/{note_id}/delete", delete_note),
    web.post("/devices/{device_id}/config/backup", backup),
    web.post("/devices/{device_id}/config/restore", restore),
    web.get("/devices/{device_id}/config/{file_id}", backup_file),
    web.get("/devices/{device_id}/diff", diff_page),
    web.post("/devices/{device_id}/capture", capture_switch),
    web.get("/devices/{device_id}/sessions/{session_id}/soap", session_soap),
]
