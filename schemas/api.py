"""Models only the operator API uses: query strings, request bodies and response shapes.

Task models are in ``schemas.tasks`` (shared with the queue). Query models forbid unknown
parameters so a typo (``?onlin=true``) is a 422 instead of a silently unfiltered list.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.tasks import Task, TaskRequest, TaskStatus

T = TypeVar("T")
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, validation_error")
    message: str
    details: list[dict[str, Any]] | None = Field(default=None, description="Per-field problems of a 422")


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- pagination ------------------------------------------------------------------------------


class PageQuery(_Query):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512, description="next_cursor of the previous page")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as cursor to get the next page; null on the last page")


# -- devices ---------------------------------------------------------------------------------


class DeviceQuery(PageQuery):
    q: str | None = Field(default=None, min_length=1, max_length=128, description=(
        "Whole token or prefix, case-insensitive, of the device id (or a word of it), serial number (or its "
        "last 4+ characters), connection or WAN IP, WAN MAC (any spelling) or a tag"))
    oui: str | None = Field(default=None, max_length=64)
    product_class: str | None = Field(default=None, max_length=64)
    software_version: str | None = Field(default=None, max_length=64)
    tag: str | None = Field(default=None, max_length=64)
    online: bool | None = None


class DeviceSummary(BaseModel):
    device_id: str
    oui: str | None = None
    product_class: str | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    model_name: str | None = None
    software_version: str | None = None
    hardware_version: str | None = None
    remote_ip: str | None = None
    last_inform: datetime | None = None
    online: bool
    tags: list[str] = Field(default_factory=list)


class DevicePage(Page[DeviceSummary]):
    total: int = Field(description="Devices the filters match: exact when total_exact, else estimated")
    total_exact: bool = Field(description="Whether total was counted (small listings) or estimated (large ones)")


class LastSession(BaseModel):
    id: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    events: list[str] = Field(default_factory=list)


class DeviceDetail(DeviceSummary):
    first_inform: datetime | None = None
    last_boot: datetime | None = None
    last_bootstrap: datetime | None = None
    events: list[str] = Field(default_factory=list, description="Inform event codes of the last session")
    cwmp_version: str | None = None
    uptime: int | None = None
    wan_ip: str | None = None
    provisioning_code: str | None = None
    parameter_key: str | None = None
    periodic_inform_interval: int | None = None
    connection_request_url: str | None = None
    udp_connection_request_address: str | None = None
    connection_request_credentials: bool = Field(description="Whether the ACS holds credentials to wake it")
    provisioned_at: datetime | None = None
    offline_after: datetime | None = None
    last_session: LastSession | None = None


class ParametersQuery(_Query):
    prefix: str = Field(
        default="",
        max_length=256,
        pattern=r"^$|^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*\.?$",
        description="A parameter or object path; empty: everything",
    )


class ParameterView(BaseModel):
    value: str | None
    type: str | None
    writable: bool | None
    updated_at: datetime | None


Parameters = RootModel[dict[str, ParameterView]]


class TagsBody(_Body):
    tags: list[Annotated[str, Field(pattern=TAG_PATTERN)]] = Field(min_length=1, max_length=50)


class Tags(BaseModel):
    device_id: str
    tags: list[str]


class CpeCredentialsBody(_Body):
    """Per-device credentials the CPE must present to the CWMP endpoint (TR-069 3.4.4)."""

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=256)


class CpeCredentials(BaseModel):
    device_id: str
    username: str
    password_set: bool


class RevealSecretBody(_Body):
    """One cached secret parameter to show in clear (admins; every reveal is audited)."""

    name: str = Field(min_length=1, max_length=256)


class RevealedSecret(BaseModel):
    device_id: str
    name: str
    value: str


# -- tasks -----------------------------------------------------------------------------------


class TaskCreateQuery(_Query):
    connection_request: bool = Field(default=False, description="Wake the device now")
    wait: float = Field(default=0, ge=0, le=60, description="Seconds to wait for a final state")


class TaskBody(RootModel[TaskRequest]):
    """One task: ``kind`` selects the parameters."""


class DeviceTasksQuery(PageQuery):
    status: TaskStatus | None = None


class ConnectionRequestQuery(_Query):
    via: Literal["auto", "http", "udp"] = Field(
        default="auto", description="auto: HTTP, or UDP (TR-069 Annex G) when the URL is behind NAT or fails"
    )


class ConnectionRequestReport(BaseModel):
    device_id: str
    answered: bool | None = Field(description="Whether the CPE accepted it; null for UDP, which has no reply")
    via: Literal["http", "udp", "none"]
    http_status: int | None = None
    attempts: int
    elapsed_ms: int
    error: str | None = None


class TaskCreated(Task):
    connection_request: ConnectionRequestReport | None = None


# -- history ---------------------------------------------------------------------------------


class HistoryEntry(BaseModel):
    at: datetime
    type: Literal["session", "task", "operator", "event", "health", "incident"]
    id: str
    summary: str
    detail: dict[str, Any]


class SessionView(BaseModel):
    id: str
    device_id: str
    started_at: datetime
    ended_at: datetime | None = None
    live: bool = False
    outcome: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    remote_ip: str | None = None
    cwmp_version: str | None = None
    events: list[str] = Field(default_factory=list)
    rpcs: list[dict[str, Any]] = Field(default_factory=list)
    rpc_count: int = 0
    faults: list[dict[str, Any]] = Field(default_factory=list)


class JobRunsQuery(PageQuery):
    job: str | None = Field(default=None, max_length=64)


class JobRun(BaseModel):
    id: str
    job: str
    holder: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    duration_ms: int | None = None
    outcome: str | None = None
    error: str | None = None
    counts: dict[str, Any] | None = None


# -- tokens ----------------------------------------------------------------------------------


class TokenCreateBody(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]*$")
    role: Role
    expires_in: int | None = Field(
        default=None, ge=60, le=10 * 366 * 86400, description="Seconds until the token stops working; unset: never"
    )


class TokenView(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="When the token stops working; null: never")


class TokenCreated(TokenView):
    token: str = Field(description="Shown once; only its SHA-256 hash is stored")


# -- bulk tasks ------------------------------------------------------------------------------


class DeviceSelector(_Body):
    q: str | None = Field(default=None, min_length=1, max_length=128)
    oui: str | None = Field(default=None, max_length=64)
    product_class: str | None = Field(default=None, max_length=64)
    software_version: str | None = Field(default=None, max_length=64)
    tag: str | None = Field(default=None, max_length=64)
    online: bool | None = None
    olt_id: str | None = Field(default=None, max_length=64, description="The OLT the health read found")
    pon_port: str | None = Field(default=None, max_length=64, description="With olt_id: one PON port of it")
    health: Literal["ok", "warn", "critical"] | None = Field(default=None, description="The last definite health read")
    device_ids: list[str] | None = Field(default=None, min_length=1, max_length=10000,
                                         description="Only these devices (a selection, an incident's members)")


class BulkBody(_Body):
    devices: DeviceSelector = Field(description="The filters of GET /api/v1/devices; {} selects every device")
    task: TaskRequest
    connection_request: bool = Field(default=True, description="Wake each device after its task is queued")
    wake_rate: float = Field(default=10.0, gt=0, le=1000, description="Connection requests per second")
    max_devices: int = Field(default=10000, ge=1, le=100000, description="Refuse filters matching more")


class BulkStatus(BaseModel):
    batch_id: str
    state: Literal["running", "finished", "cancelled"]
    created_at: datetime
    created_by: str
    finished_at: datetime | None = None
    kind: str
    devices: dict[str, Any]
    matched: int = Field(description="Devices the filter matched when the batch started")
    progress: dict[str, int] = Field(description="Runner counters: created, woken, wake_failed, refused")
    refusals: list[dict[str, str]] = Field(
        default_factory=list,
        description="Devices refused a task (the first 20): a value their cached type cannot hold; device_id, reason",
    )
    tasks: dict[str, int] = Field(description="Tasks of the batch per status")


# -- settings --------------------------------------------------------------------------------


class SettingsView(RootModel[dict[str, Any]]):
    """The effective settings of this process, secrets redacted."""


class Health(BaseModel):
    status: str
    reason: str | None = None
