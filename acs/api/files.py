"""Stored files: upload (raw body), list, read, fetch, delete; and file-backed transfer tasks.

``POST /api/v1/files?name=fw.bin&file_type=1%20Firmware%20Upgrade%20Image`` takes the file as the
raw request body (``curl --data-binary @fw.bin``), streamed into the store: no multipart, so a
500 MB image is never parsed or held in memory, and the description travels in the query. The
request's Content-Type is kept as the file's.

A ``download`` task naming ``file_id`` and an ``upload`` task without ``url`` are made concrete
when created (:func:`resolve_transfer`): the task's params carry the URL the device will use, so
building the RPC stays pure and the task shows exactly what was sent.
"""

from __future__ import annotations

from acs.api.errors import ApiError
from acs.api.pagination import cursor_text, cursor_time, decode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from acs.services import Services
from acs.transfers import body_pieces, body_too_large, download_url, new_upload_url, serve_file
from schemas.api import BulkBody, Page, Role
from schemas.files import FileInfo, FilesQuery, FileUploadQuery
from schemas.tasks import DownloadTask, TaskRequest, UploadTask
from tasks.store.db import Document
from tasks.store.files import FileFilter, FileTooLarge, NewFile, metadata

FILE = "/api/v1/files/{file_id}"


def file_view(services: Services, document: Document) -> FileInfo:
    meta = metadata(document)
    return FileInfo(
        id=document["_id"],
        name=document["filename"],
        size=int(document["length"]),
        uploaded_at=document["uploadDate"],
        url=download_url(services.settings, document["_id"]),
        **{key: meta.get(key) for key in ("oui", "product_class", "version", "description", "task_id", "device_id")},
        file_type=meta.get("file_type", ""),
        sha256=meta.get("sha256", ""),
        content_type=meta.get("content_type", "application/octet-stream"),
        uploaded_by=meta.get("uploaded_by", ""),
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the file is larger than max_file_bytes ({limit} bytes)")


async def upload_file(call: Call) -> Reply:
    query = call.query(FileUploadQuery)
    services = call.api.services
    limit = services.settings.max_file_bytes
    if body_too_large(call.request, limit):
        raise too_large(limit)
    new = NewFile(
        name=query.name,
        file_type=query.file_type,
        content_type=call.request.content_type or "application/octet-stream",
        uploaded_by=call.who,
        oui=query.oui,
        product_class=query.product_class,
        version=query.version,
        description=query.description,
    )
    try:
        stored = await services.repositories.files.put(body_pieces(call.request), new, services.clock(), limit)
    except FileTooLarge as exc:
        raise too_large(exc.limit) from exc
    call.audit["file_id"] = stored["_id"]
    call.audit["file_name"] = query.name
    return Reply(file_view(services, stored), status=201, headers={"Location": f"/api/v1/files/{stored['_id']}"})


async def list_files(call: Call) -> Reply:
    query = call.query(FilesQuery)
    position = decode_cursor(query.cursor)
    uploaded_at = cursor_time(position)
    before = None if uploaded_at is None else (uploaded_at, cursor_text(position, "id") or "")
    where = FileFilter(file_type=query.file_type, device_id=query.device_id, task_id=query.task_id)
    found = await call.api.services.repositories.files.page(where, before, query.limit + 1)
    items = [file_view(call.api.services, document) for document in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda f: {"at": f["uploadDate"], "id": f["_id"]})
    return Reply(Page[FileInfo](items=items, next_cursor=cursor))


async def get_file(call: Call) -> Reply:
    return Reply(file_view(call.api.services, await file_or_404(call, call.path("file_id"))))


async def get_file_content(call: Call) -> Reply:
    document = await file_or_404(call, call.path("file_id"))
    return Reply(None, stream=await serve_file(call.request, call.api.services.repositories.files, document))


async def delete_file(call: Call) -> Reply:
    file_id = call.path("file_id")
    repositories = call.api.services.repositories
    call.audit["file_id"] = file_id
    document = await file_or_404(call, file_id)
    task = await repositories.tasks.open_download_of(file_id)
    if task is not None:
        raise ApiError(409, "conflict", f"file {file_id} is used by {task['status']} download task {task['_id']}")
    # A download queued between the check and the delete fails on the device (9016, file not found).
    await repositories.files.delete(file_id)
    return Reply(file_view(call.api.services, document))


async def file_or_404(call: Call, file_id: str) -> Document:
    document = await call.api.services.repositories.files.get(file_id)
    if document is None:
        raise ApiError.not_found(f"file {file_id}")
    return document


async def resolve_transfer(
    services: Services, request: TaskRequest, device: Document | None, task_id: str
) -> TaskRequest:
    """A download of a stored file gets its URL (and size and name); an upload without url the ACS's own.

    ``device`` (None for a bulk task) is checked against the file's OUI / ProductClass constraints.
    """
    match request:
        case DownloadTask(file_id=str() as file_id):
            stored = await services.repositories.files.get(file_id)
            if stored is None:
                raise _invalid("file_id", f"no stored file {file_id}")
            if device is not None:
                _check_constraints(stored, device)
            return request.model_copy(update={
                "url": download_url(services.settings, file_id),
                "file_size": request.file_size or int(stored["length"]),
                "target_file_name": request.target_file_name or stored["filename"],
            })
        case UploadTask(url=None):
            return request.model_copy(update={"url": new_upload_url(services.settings, task_id)})
    return request


async def resolve_bulk_transfer(services: Services, body: BulkBody) -> BulkBody:
    if isinstance(body.task, UploadTask) and body.task.url is None:
        raise _invalid("task.url", "a bulk upload needs url (the ACS's own upload URL names one task)")
    return body.model_copy(update={"task": await resolve_transfer(services, body.task, None, "")})


def _check_constraints(stored: Document, device: Document) -> None:
    meta = metadata(stored)
    for field in ("oui", "product_class"):
        wanted = meta.get(field)
        if wanted is not None and device.get(field) != wanted:
            raise _invalid("file_id", f"file {stored['_id']} is for {field} {wanted}, the device has "
                                      f"{device.get(field)!r}")


def _invalid(field: str, reason: str) -> ApiError:
    return ApiError(422, "validation_error", f"body.{field}: {reason}", [{"loc": f"body.{field}", "reason": reason}])


ROUTES = [
    Route("POST", "/api/v1/files", upload_file,
          "Store a file for Download: the raw request body is the content, the query describes it",
          Role.OPERATOR, "files", query=FileUploadQuery, response=FileInfo, status=201,
          other_statuses=(400, 413), raw_body="application/octet-stream"),
    Route("GET", "/api/v1/files", list_files, "Stored files, newest first", Role.VIEWER, "files",
          query=FilesQuery, response=Page[FileInfo], other_statuses=(400,)),
    Route("GET", FILE, get_file, "One stored file's description", Role.VIEWER, "files", response=FileInfo,
          other_statuses=(404,)),
    Route("GET", FILE + "/content", get_file_content, "A stored file's content (Range supported)", Role.VIEWER,
          "files", other_statuses=(206, 404, 416), content_type="application/octet-stream"),
    Route("DELETE", FILE, delete_file, "Delete a stored file (409 while a pending download uses it)", Role.ADMIN,
          "files", response=FileInfo, other_statuses=(404, 409)),
]
