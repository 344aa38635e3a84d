"""API models of health, incidents and a device's diagnosis (issue 5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.api import PageQuery


class IncidentQuery(PageQuery):
    status: Literal["open", "resolved"] | None = None
    dimension: Literal["pon", "olt", "software_version", "product_class", "region", "subnet"] | None = None
    device_id: str | None = Field(default=None, max_length=256, description="Incidents this device belongs to")


class IncidentActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str | None = Field(default=None, max_length=2000)


class IncidentResolveBody(BaseModel):
    """Resolving by hand needs a reason: the next engineer reads why (and a problem that persists reopens)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="Why the incident is resolved")


class IncidentCommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = Field(min_length=1, max_length=2000)


class IncidentComment(BaseModel):
    at: datetime
    by: str
    text: str


class Acknowledgement(BaseModel):
    at: datetime
    by: str


class TimelineEntry(BaseModel):
    at: datetime
    event: str
    affected: int
    detail: str | None = None


class IncidentSummary(BaseModel):
    id: int
    key: str = Field(description="The shared group, e.g. olt:OLT-0001 or software_version:HG8245H V3R017C10S120")
    dimension: str
    value: str
    title: str
    cause: str = Field(description="The suspected shared cause")
    status: Literal["open", "resolved"]
    opened_at: datetime
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolve_reason: str | None = Field(default=None, description="Why it was resolved by hand")
    follows: int | None = Field(default=None, description="The incident resolved by hand that this one continues")
    followed_by: int | None = Field(default=None, description="The incident opened because this one's devices "
                                    "were still affected after it was resolved by hand")
    member_count: int
    affected_now: int
    peak: int
    group_size: int
    signals: dict[str, int] = Field(default_factory=dict)
    acknowledged: Acknowledgement | None = None


class IncidentDetail(IncidentSummary):
    members: list[str]
    selector: list[str] = Field(default_factory=list)
    baseline: float = 0.0
    timeline: list[TimelineEntry] = Field(default_factory=list)
    comments: list[IncidentComment] = Field(default_factory=list)


class HealthReason(BaseModel):
    check: str
    level: str
    message: str


class DefiniteHealth(BaseModel):
    status: Literal["ok", "warn", "critical"]
    at: datetime | None = None
    since: datetime | None = None
    reasons: list[HealthReason] = Field(default_factory=list)


class HealthView(BaseModel):
    status: Literal["ok", "warn", "critical", "unknown"] = Field(description="Of the last read: unknown when it failed")
    at: datetime
    since: datetime | None = None
    reasons: list[HealthReason] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)
    last_definite: DefiniteHealth | None = Field(
        default=None, description="The last read that succeeded (what incidents judge while reads fail)"
    )


class WanView(BaseModel):
    status: str | None = None
    uptime: int | None = None
    last_error: str | None = None
    ip: str | None = None


class FailedTask(BaseModel):
    id: str
    kind: str
    finished_at: datetime | None = None
    reason: str | None = None
    fault: dict[str, Any] | None = None


class NextStep(BaseModel):
    key: str = Field(description="What to do, as a key (the console words it in the user's language)")
    params: dict[str, Any] = Field(default_factory=dict)


class Diagnosis(BaseModel):
    device_id: str
    online: bool
    presence: str | None = None
    last_inform: datetime | None = None
    offline_since: datetime | None = None
    uptime: int | None = Field(default=None, description="Seconds, as last reported")
    reboots_24h: int
    last_reboot_reason: str | None = None
    health: HealthView | None = None
    wan: WanView
    olt_id: str | None = None
    pon_port: str | None = None
    recent_faults: list[dict[str, Any]] = Field(default_factory=list)
    failed_tasks: list[FailedTask] = Field(default_factory=list)
    incidents: list[IncidentSummary] = Field(default_factory=list)
    next_steps: list[str]
    steps: list[NextStep] = Field(default_factory=list, description="next_steps as keys and values")
