"""File transfers: Download, Upload, ScheduleDownload (settled by TransferComplete with the task's
CommandKey, TR-069 A.3.2.8, A.3.2.9, A.4.1.7) and CancelTransfer."""

from __future__ import annotations

from typing import Any

from cwmp import (
    CancelTransfer,
    CancelTransferResponse,
    Download,
    DownloadResponse,
    Message,
    ScheduleDownload,
    ScheduleDownloadResponse,
    TimeWindowStruct,
    Upload,
    UploadResponse,
)
from schemas.tasks import CancelTransferTask, DownloadTask, ScheduleDownloadTask, UploadTask
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import Document, Next, Outcome, unexpected
from tasks.records import TaskRecord


def _common(task: TaskRecord, *, sized: bool) -> dict[str, Any]:
    """The arguments Download, ScheduleDownload and Upload share."""
    params = task["params"]
    fields: dict[str, Any] = {
        "command_key": task["command_key"],
        "file_type": params["file_type"],
        "url": params["url"],
        "username": params.get("username", ""),
        "password": params.get("password", ""),
    }
    if sized:
        fields["file_size"] = params.get("file_size", 0)
        fields["target_file_name"] = params.get("target_file_name", "")
    return fields


def _download(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    return Download(**_common(task, sized=True), delay_seconds=task["params"].get("delay_seconds", 0))


def _upload(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    return Upload(**_common(task, sized=False), delay_seconds=task["params"].get("delay_seconds", 0))


def _schedule_download(task: TaskRecord, state: Document, types: dict[str, str]) -> Message:
    windows = tuple(TimeWindowStruct(**window) for window in task["params"]["time_windows"])
    return ScheduleDownload(**_common(task, sized=True), time_windows=windows)


def _transferred(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, DownloadResponse | UploadResponse):
        raise unexpected(task["kind"], response)
    if response.status == 0:
        times = {"start_time": response.start_time, "complete_time": response.complete_time}
        return Outcome(Next.DONE, result={"status": 0, **times})
    # TR-069 A.3.2.8: status 1 means the transfer will be reported by TransferComplete.
    return Outcome(Next.AWAIT_TRANSFER, result={"status": 1})


def _scheduled(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, ScheduleDownloadResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.AWAIT_TRANSFER, result={"accepted": True})


def _cancelled(task: TaskRecord, state: Document, request: Message, response: Message) -> Outcome:
    if not isinstance(response, CancelTransferResponse):
        raise unexpected(task["kind"], response)
    return Outcome(Next.DONE, result={})


KINDS = (
    TaskKind("download", DownloadTask, _download, _transferred, transfer=True),
    TaskKind("upload", UploadTask, _upload, _transferred, transfer=True),
    TaskKind("schedule_download", ScheduleDownloadTask, _schedule_download, _scheduled, transfer=True),
    TaskKind(
        "cancel_transfer",
        CancelTransferTask,
        lambda task, state, types: CancelTransfer(command_key=task["params"]["command_key"]),
        _cancelled,
    ),
)
