"""Operator tasks: what may be asked of a device, and the record of what happened.

A task request is flat JSON, ``{"kind": "reboot", "expires_in": 600}``; the ``kind``
field selects the model, so a wrong or missing parameter is a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.values import checked_value
from schemas.xmltext import first_xml_problem

# TR-069 A.3.2.1: parameter names are dotted paths; a trailing dot names an object (a subtree).
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*\.?$")
# TR-069 A.3.2.1 SetParameterValues: xsi:type of each value; the ACS sends these primitive types.
VALUE_TYPES = (
    "xsd:string",
    "xsd:int",
    "xsd:unsignedInt",
    "xsd:long",
    "xsd:unsignedLong",
    "xsd:boolean",
    "xsd:dateTime",
    "xsd:base64Binary",
    "xsd:hexBinary",
)
MAX_NAMES = 1000
# TR-069 A.3.2.8 / A.4.1.5: FileSize, DelaySeconds, WindowStart and WindowEnd are unsignedInt,
# MaxRetries is int. A value is stored as a BSON int64 at most: larger numbers go as strings.
UNSIGNED_INT_MAX = 2**32 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class TaskStatus(StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED})


def _check_name(name: str, *, object_path: bool | None = None) -> str:
    if not PARAMETER_NAME.match(name) or len(name) > 256:
        raise ValueError(f"{name!r} is not a TR-069 parameter path")
    if object_path is True and not name.endswith("."):
        raise ValueError(f"{name!r} must name an object (end with '.')")
    if object_path is False and name.endswith("."):
        raise ValueError(f"{name!r} must name a parameter, not an object")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _xml_text(self) -> Self:
        # Every string of a task reaches a SOAP envelope: refuse what XML cannot carry (a 422 now,
        # not a session broken at send time).
        for name in type(self).model_fields:
            problem = first_xml_problem(getattr(self, name), name)
            if problem:
                raise ValueError(problem)
        return self


class ParameterSetting(_Strict):
    name: str
    value: str | int | bool
    type: str | None = Field(default=None, description="xsi:type; unset: taken from the cached parameter")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name, object_path=False)

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | int | bool) -> str | int | bool:
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("an integer value must fit in 64 bits signed; send a larger unsignedLong as a string")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is not None and value not in VALUE_TYPES:
            raise ValueError(f"type must be one of {', '.join(VALUE_TYPES)}")
        return value

    @model_validator(mode="after")
    def _value_fits_type(self) -> ParameterSetting:
        # A value its declared type cannot hold is refused here (422), not sent to fault 9007.
        if self.type is not None:
            checked_value(self.value, self.type)
        return self


class AttributeSetting(_Strict):
    name: str
    notification: Literal[0, 1, 2] | None = Field(default=None, description="0 off, 1 passive, 2 active")
    access_list: list[Literal["Subscriber"]] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name)


class _TaskBase(_Strict):
    expires_in: int | None = Field(default=None, ge=1, le=30 * 86400, description="Seconds until expiry")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class _NamesTask(_TaskBase):
    names: list[str] = Field(min_length=1, max_length=MAX_NAMES)

    @field_validator("names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return [_check_name(name) for name in names]


class RebootTask(_TaskBase):
    kind: Literal["reboot"]


class FactoryResetTask(_TaskBase):
    kind: Literal["factory_reset"]


class GetRpcMethodsTask(_TaskBase):
    kind: Literal["get_rpc_methods"]


class GetParameterValuesTask(_NamesTask):
    kind: Literal["get_parameter_values"]


class GetParameterAttributesTask(_NamesTask):
    kind: Literal["get_parameter_attributes"]


class SetParameterValuesTask(_TaskBase):
    kind: Literal["set_parameter_values"]
    values: list[ParameterSetting] = Field(min_length=1, max_length=MAX_NAMES)

    @model_validator(mode="after")
    def _unique(self) -> SetParameterValuesTask:
        names = [setting.name for setting in self.values]
        if len(set(names)) != len(names):
            # TR-069 A.3.2.1: a parameter listed twice is fault 9003 on the device; refuse it here.
            raise ValueError("a parameter may appear only once in values")
        return self


class SetParameterAttributesTask(_TaskBase):
    kind: Literal["set_parameter_attributes"]
    attributes: list[AttributeSetting] = Field(min_length=1, max_length=MAX_NAMES)


class GetParameterNamesTask(_TaskBase):
    kind: Literal["get_parameter_names"]
    path: str = ""
    next_level: bool = True

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        return path if path == "" else _check_name(path)


class RefreshTask(_TaskBase):
    kind: Literal["refresh"]
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        return _check_name(path)


class AddObjectTask(_TaskBase):
    kind: Literal["add_object"]
    object: str
    values: list[ParameterSetting] | None = Field(
        default=None, description="Set on the new instance, names relative to it"
    )
    other_values: list[ParameterSetting] | None = Field(
        default=None,
        max_length=MAX_NAMES,
        description="Set outside the new instance, full names, in the same SetParameterValues as its values "
        "(one exchange, not two); still set when the device refuses the AddObject (the task then fails)",
    )

    @field_validator("object")
    @classmethod
    def _object(cls, name: str) -> str:
        return _check_name(name, object_path=True)

    @model_validator(mode="after")
    def _unique(self) -> AddObjectTask:
        for settings in (self.values or [], self.other_values or []):
            names = [setting.name for setting in settings]
            if len(set(names)) != len(names):
                # TR-069 A.3.2.1: a parameter listed twice in one SetParameterValues is fault 9003.
                raise ValueError("a parameter may appear only once in values, and once in other_values")
        return self


class DeleteObjectTask(_TaskBase):
    kind: Literal["delete_object"]
    object: str

    @field_validator("object")
    @classmethod
    def _object(cls, name: str) -> str:
        name = _check_name(name, object_path=True)
        if not name.rstrip(".").rsplit(".", 1)[-1].isdigit():
            raise ValueError("delete_object needs an instance path such as X.WANDevice.2.")
        return name


class DownloadTask(_TaskBase):
    kind: Literal["download"]
    file_type: str = Field(min_length=1, max_length=64, description="e.g. '1 Firmware Upgrade Image'")
    url: str | None = Field(default=None, max_length=256)
    file_id: str | None = None
    target_file_name: str = Field(default="", max_length=256)
    file_size: int = Field(default=0, ge=0, le=UNSIGNED_INT_MAX)
    delay_seconds: int = Field(default=0, ge=0, le=UNSIGNED_INT_MAX)
    username: str = Field(default="", max_length=256)
    password: str = Field(default="", max_length=256)

    @model_validator(mode="after")
    def _source(self) -> DownloadTask:
        if (self.url is None) == (self.file_id is None):
            raise ValueError("give exactly one of url or file_id")
        if self.url is not None and not self.url.startswith(("http://", "https://", "ftp://")):
            raise ValueError("url must be http, https or ftp")
        return self


class UploadTask(_TaskBase):
    kind: Literal["upload"]
    file_type: str = Field(min_length=1, max_length=64, description="e.g. '1 Vendor Configuration File'")
    url: str | None = Field(default=None, max_length=256, description="unset: the ACS's own upload endpoint")
    delay_seconds: int = Field(default=0, ge=0, le=UNSIGNED_INT_MAX)
    username: str = Field(default="", max_length=256)
    password: str = Field(default="", max_length=256)


class ScheduleInformTask(_TaskBase):
    kind: Literal["schedule_inform"]
    delay_seconds: int = Field(ge=1, le=30 * 86400)


class TimeWindow(_Strict):
    window_start: int = Field(ge=0, le=UNSIGNED_INT_MAX)
    window_end: int = Field(ge=0, le=UNSIGNED_INT_MAX)
    window_mode: Literal["1 At Any Time", "2 Immediately", "3 When Idle", "4 Confirmation Needed"] = "1 At Any Time"
    user_message: str = ""
    max_retries: int = Field(default=-1, ge=-1, le=INT_MAX)


class ScheduleDownloadTask(_TaskBase):
    kind: Literal["schedule_download"]
    file_type: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=256)
    target_file_name: str = ""
    file_size: int = Field(default=0, ge=0, le=UNSIGNED_INT_MAX)
    username: str = ""
    password: str = ""
    time_windows: list[TimeWindow] = Field(min_length=1, max_length=2)


class CancelTransferTask(_TaskBase):
    kind: Literal["cancel_transfer"]
    command_key: str = Field(max_length=32)


class GetQueuedTransfersTask(_TaskBase):
    kind: Literal["get_queued_transfers"]


class GetAllQueuedTransfersTask(_TaskBase):
    kind: Literal["get_all_queued_transfers"]


class DiagnosticTask(_TaskBase):
    """The device's own TR-069 diagnostics (TR-098 / TR-181 IPPing, TraceRoute, DownloadDiagnostics)."""

    kind: Literal["diagnostic"]
    test: Literal["ping", "traceroute", "download"]
    host: str | None = Field(default=None, min_length=1, max_length=256, description="ping, traceroute")
    url: str | None = Field(default=None, min_length=1, max_length=256, description="download")
    repetitions: int | None = Field(default=None, ge=1, le=100, description="ping: NumberOfRepetitions")
    timeout_ms: int | None = Field(default=None, ge=1, le=600_000, description="ping, traceroute: Timeout")
    max_hops: int | None = Field(default=None, ge=1, le=64, description="traceroute: MaxHopCount")

    @model_validator(mode="after")
    def _target(self) -> DiagnosticTask:
        if self.test == "download":
            if self.url is None or self.host is not None:
                raise ValueError("a download test takes url (and no host)")
            if not self.url.startswith(("http://", "https://", "ftp://")):
                raise ValueError("url must be http, https or ftp")
        elif self.host is None or self.url is not None:
            raise ValueError(f"a {self.test} test takes host (and no url)")
        return self


class ReprovisionTask(_TaskBase):
    """The device's configuration (its profiles, subscriber record and overrides) applied again in
    its next session, as the ON DEMAND event applies it; a configuration blocked after failures is
    unblocked. Done by the ACS inside the session, with no RPC of its own: the tasks it queues go
    out in the same session, and its result says how many."""

    kind: Literal["reprovision"]


TaskRequest = Annotated[
    RebootTask
    | FactoryResetTask
    | GetRpcMethodsTask
    | GetParameterValuesTask
    | GetParameterAttributesTask
    | SetParameterValuesTask
    | SetParameterAttributesTask
    | GetParameterNamesTask
    | RefreshTask
    | AddObjectTask
    | DeleteObjectTask
    | DownloadTask
    | UploadTask
    | ScheduleInformTask
    | ScheduleDownloadTask
    | CancelTransferTask
    | GetQueuedTransfersTask
    | GetAllQueuedTransfersTask
    | DiagnosticTask
    | ReprovisionTask,
    Field(discriminator="kind"),
]

TASK_KINDS: tuple[str, ...] = (
    "reboot",
    "factory_reset",
    "get_rpc_methods",
    "get_parameter_values",
    "get_parameter_attributes",
    "set_parameter_values",
    "set_parameter_attributes",
    "get_parameter_names",
    "refresh",
    "add_object",
    "delete_object",
    "download",
    "upload",
    "schedule_inform",
    "schedule_download",
    "cancel_transfer",
    "get_queued_transfers",
    "get_all_queued_transfers",
    "diagnostic",
    "reprovision",
)
SECRET_PARAMS = frozenset({"password"})


class TaskFault(BaseModel):
    """A CPE fault, TR-069 A.5: code, string and (for SetParameterValues) per-parameter detail."""

    model_config = ConfigDict(frozen=True)

    code: int
    string: str
    detail: list[dict[str, Any]] = Field(default_factory=list)


class Task(BaseModel):
    """A task as the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    device_id: str
    kind: str
    params: dict[str, Any]
    status: TaskStatus
    created_at: datetime
    created_by: str
    attempts: int = 0
    result: dict[str, Any] | None = None
    fault: TaskFault | None = None
    reason: str | None = Field(default=None, description="Why a task failed or expired, in words")
    expires_at: datetime | None = None
    dispatched_at: datetime | None = None
    finished_at: datetime | None = None
    batch_id: str | None = None
    idempotency_key: str | None = None
