"""File transfers on the CWMP listener: devices fetch Download files and send Upload files here.

* ``GET`` / ``HEAD /files/{file_id}``: a stored file, with ``Range`` for resumed downloads. The
  128-bit random file id is the capability; the Download RPC's own credentials are not checked.
* ``PUT`` (or ``POST``) ``/uploads/{task_id}/{token}``: TR-069 A.3.2.9, the body of an Upload the
  ACS asked for without a URL of its own. Accepted only while an upload task of that device with
  exactly this URL is dispatched (the original task or its retry copy, which keeps the URL); the
  random token in the URL makes it unguessable. The file is stored linked to the task and device;
  a device sending again for the same task replaces its earlier file.
"""

from __future__ import annotations

import logging

from aiohttp import web

from acs.services import Services
from acs.transfers import body_pieces, body_too_large, serve_file, upload_token_matches
from schemas.tasks import TaskStatus
from tasks.records import TaskRecord
from tasks.store.files import FileTooLarge, NewFile

log = logging.getLogger("acs.files")
DISPATCHED_LOOKED_AT = 50  # a device has at most a few tasks dispatched at once


class TransferEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.files = services.repositories.files
        self.tasks = services.repositories.tasks

    async def download(self, request: web.Request) -> web.StreamResponse:
        document = await self.files.get(request.match_info["file_id"])
        if document is None:
            return web.Response(status=404, text="no such file\n")
        return await serve_file(request, self.files, document)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        task_id, token = request.match_info["task_id"], request.match_info["token"]
        if not (task_id.isprintable() and token.isprintable()):  # a NUL cannot even be queried
            return web.Response(status=404, text="no such upload\n")
        task = await self.tasks.get(task_id)
        if task is None or task["kind"] != "upload" or not upload_token_matches(_url(task), task_id, token):
            return web.Response(status=404, text="no such upload\n")
        target = await self._dispatched_upload(task["device_id"], task_id, token)
        if target is None:
            return web.Response(status=409, text="no upload in progress for this URL\n")
        limit = self.services.settings.max_file_bytes
        if body_too_large(request, limit):
            return web.Response(status=413, text=f"larger than {limit} bytes\n")
        new = _new_file(target, request)
        try:
            stored = await self.files.put(body_pieces(request), new, self.services.clock(), limit)
        except FileTooLarge:
            return web.Response(status=413, text=f"larger than {limit} bytes\n")
        for earlier in await self.files.for_task(target["_id"]):
            if earlier["_id"] != stored["_id"]:
                await self.files.delete(earlier["_id"])
        log.info("upload task %s: %s bytes from %s stored as file %s", target["_id"], stored["length"],
                 target["device_id"], stored["_id"])
        return web.Response(status=201, text="stored\n", headers={"Location": f"/files/{stored['_id']}"})

    async def _dispatched_upload(self, device_id: str, task_id: str, token: str) -> TaskRecord | None:
        dispatched = await self.tasks.for_device(device_id, None, DISPATCHED_LOOKED_AT, TaskStatus.DISPATCHED.value)
        for task in dispatched:
            if task["kind"] == "upload" and upload_token_matches(_url(task), task_id, token):
                return task
        return None


def _url(task: TaskRecord) -> str:
    return str((task.get("params") or {}).get("url") or "")


def _new_file(task: TaskRecord, request: web.Request) -> NewFile:
    device_id = task["device_id"]
    return NewFile(
        name=f"upload-{task['_id']}",
        file_type=str(task["params"].get("file_type", "")),
        content_type=request.content_type or "application/octet-stream",
        uploaded_by=f"device {device_id}",
        task_id=task["_id"],
        device_id=device_id,
    )


def transfer_routes(endpoint: TransferEndpoint) -> list[web.AbstractRouteDef]:
    """Registered before the CWMP routes, whose catch-all answers every other path."""
    return [
        web.get("/files/{file_id}", endpoint.download),  # and HEAD
        web.put("/uploads/{task_id}/{token}", endpoint.upload),
        web.post("/uploads/{task_id}/{token}", endpoint.upload),
    ]
