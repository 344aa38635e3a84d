"""HTTP side of stored files, shared by the operator API and the CWMP listener.

* the ACS's own URLs that devices use for Download (``/files/{file_id}``) and Upload
  (``/uploads/{task_id}/{token}``), both on the CWMP listener: the host devices already reach;
* streaming a request body into the file store (never the whole file in memory);
* serving a stored file with ``Range`` (RFC 9110 14: one range; devices resume firmware
  downloads with it), ``If-Range``, ``HEAD`` and a strong ``ETag`` (the SHA-256).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from acs.config import Settings
from tasks.store.db import Document
from tasks.store.files import FileStore, metadata

READ_PIECE = 64 * 1024
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognised, not bound


def cwmp_origin(settings: Settings) -> str:
    """``scheme://host:port`` of the CWMP listener as devices reach it.

    ``cwmp_public_url`` when set (its path is dropped: files are served at the listener's root);
    otherwise the listen address, with this machine's host name for a wildcard address.
    """
    if settings.cwmp_public_url:
        parts = urlsplit(settings.cwmp_public_url)
        return f"{parts.scheme}://{parts.netloc}"
    host, port = settings.cwmp_address
    if host in WILDCARD_HOSTS:
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.cwmp_tls_cert is not None else "http"
    return f"{scheme}://{host}:{port}"


def download_url(settings: Settings, file_id: str) -> str:
    return f"{cwmp_origin(settings)}/files/{file_id}"


def new_upload_url(settings: Settings, task_id: str) -> str:
    # TR-069 A.3.2.9: the CPE PUTs (or POSTs) the file to this URL. The token makes it
    # unguessable; the task id names the device whose dispatched upload it may answer.
    return f"{cwmp_origin(settings)}/uploads/{task_id}/{secrets.token_urlsafe(16)}"


def upload_token_matches(url: str, task_id: str, token: str) -> bool:
    """Whether ``url`` (a task's Upload URL) ends in ``/uploads/{task_id}/{token}``."""
    head, _, stored = urlsplit(url).path.rpartition("/")
    return head.endswith(f"/uploads/{task_id}") and secrets.compare_digest(stored.encode(), token.encode())


def body_too_large(request: web.Request, limit: int) -> bool:
    return request.content_length is not None and request.content_length > limit


async def body_pieces(request: web.Request) -> AsyncIterator[bytes]:
    async for piece in request.content.iter_chunked(READ_PIECE):
        yield piece


def _etag(document: Document) -> str:
    return f'"{metadata(document).get("sha256", document["_id"])}"'


def _wanted_range(request: web.Request, size: int, etag: str) -> slice | None:
    """The one byte range asked for, or None for the whole file.

    Several ranges, a malformed header or a stale ``If-Range`` get the whole file (RFC 9110 14.2
    lets a server ignore Range); an unsatisfiable range raises 416.
    """
    if "Range" not in request.headers or request.headers.get("If-Range", etag) != etag:
        return None
    try:
        wanted = request.http_range
    except ValueError:
        return None
    start, stop, _ = wanted.indices(size)  # "bytes=-N" (the last N bytes) is slice(-N, None)
    if start >= size or start >= stop:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return slice(start, stop)


async def serve_file(request: web.Request, store: FileStore, document: Document) -> web.StreamResponse:
    """Send a stored file (or the range asked for), chunk by chunk."""
    size = int(document["length"])
    etag = _etag(document)
    wanted = _wanted_range(request, size, etag)
    start, stop = (0, size) if wanted is None else (wanted.start, wanted.stop)
    response = web.StreamResponse(status=200 if wanted is None else 206)
    response.content_type = str(metadata(document).get("content_type") or "application/octet-stream")
    response.content_length = stop - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = document["uploadDate"].strftime("%a, %d %b %Y %H:%M:%S GMT")
    response.headers["Content-Disposition"] = _attachment(str(document["filename"]))
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    await response.prepare(request)
    if request.method != "HEAD":
        async for piece in store.read(document["_id"], start, stop):
            await response.write(piece)
    await response.write_eof()
    return response


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    return f'attachment; filename="{ascii_name}"'
