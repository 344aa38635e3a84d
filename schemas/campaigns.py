"""Firmware images and campaigns as the API takes and shows them (issue 15).

A campaign upgrades the devices its ``target`` selects to the image given for their model, in
``waves`` (a canary of N devices, then cumulative shares of the target), inside its maintenance
``windows`` (in the campaign's time zone), at most ``concurrency`` devices at once and ``rate``
starts a minute, and pauses itself when a ``stop_rules`` threshold is crossed.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.api import PageQuery

CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
ID_TEXT = re.compile(r"^[0-9a-f]{1,32}$")
MAX_EXPLICIT_DEVICES = 10_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- firmware images -------------------------------------------------------------------------


class FirmwareBody(_Body):
    """``POST /api/v1/firmware``: a stored file (``/api/v1/files``) described as a firmware image."""

    file_id: str = Field(min_length=32, max_length=32, description="The stored file holding the image")
    version: str = Field(min_length=1, max_length=64, description="The SoftwareVersion the image installs")
    product_classes: list[str] = Field(min_length=1, max_length=100, description="ProductClasses it fits")
    vendor: str | None = Field(default=None, min_length=1, max_length=64,
                               description="Manufacturer OUI it is for (any when null)")

    @field_validator("product_classes")
    @classmethod
    def _product_classes(cls, classes: list[str]) -> list[str]:
        if any(not 1 <= len(name) <= 64 for name in classes):
            raise ValueError("each product class is 1 to 64 characters")
        return sorted(set(classes))


class FirmwareInfo(BaseModel):
    id: str
    file_id: str
    name: str
    version: str
    product_classes: list[str]
    vendor: str | None
    sha256: str
    size: int
    added_at: datetime
    added_by: str


# -- campaigns -------------------------------------------------------------------------------


class CampaignStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # by the operator or by a stop rule (``stopped_by``)
    COMPLETED = "completed"
    ABORTED = "aborted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


class MemberState(StrEnum):
    """One device in one campaign."""

    PENDING = "pending"  # not started yet
    DOWNLOADING = "downloading"  # Download task queued or sent, TransferComplete not yet in
    REBOOTING = "rebooting"  # transfer done: waiting for the BOOT with the new SoftwareVersion
    UPGRADED = "upgraded"  # on the new version; health after the upgrade not judged yet
    HEALTHY = "healthy"  # upgraded, health judged no worse
    DEGRADED = "degraded"  # upgraded, health critical after the upgrade and not before
    FAILED = "failed"  # Download / TransferComplete fault, not back in time, version unchanged
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


IN_FLIGHT = (MemberState.DOWNLOADING, MemberState.REBOOTING)
UPGRADED_STATES = (MemberState.UPGRADED, MemberState.HEALTHY, MemberState.DEGRADED)


class TargetSelector(_Body):
    """Which devices: every given field must match (lists: any of). ``device_ids`` alone lists them."""

    product_classes: list[str] | None = Field(default=None, max_length=100, description="Models (ProductClass)")
    software_versions: list[str] | None = Field(default=None, max_length=100, description="Current versions")
    tags: list[str] | None = Field(default=None, max_length=20, description="Devices with any of these tags")
    olt_ids: list[str] | None = Field(default=None, max_length=100, description="OLT (region) the ONT hangs off")
    device_ids: list[str] | None = Field(default=None, max_length=MAX_EXPLICIT_DEVICES, description="Explicit list")

    @model_validator(mode="after")
    def _not_everything(self) -> TargetSelector:
        if not any(getattr(self, name) for name in TargetSelector.model_fields):
            raise ValueError("a target needs at least one of product_classes, software_versions, tags, olt_ids, "
                             "device_ids")
        return self


class Wave(_Body):
    """A canary of ``devices``, or the target reached by ``percent`` (cumulative) at the wave's end."""

    devices: int | None = Field(default=None, ge=1, le=1_000_000)
    percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> Wave:
        if (self.devices is None) == (self.percent is None):
            raise ValueError("a wave is either devices (a count) or percent (cumulative share of the target)")
        return self


class Window(_Body):
    """A daily maintenance window, local time of the campaign's time zone; it may cross midnight."""

    start: str = Field(description="HH:MM", examples=["01:00"])
    end: str = Field(description="HH:MM", examples=["05:00"])

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, text: str) -> str:
        if not CLOCK.match(text):
            raise ValueError("give the time as HH:MM (00:00 to 23:59)")
        return text

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("a window's start and end must differ")
        return self


class StopRules(_Body):
    max_failed_share: float = Field(default=0.2, ge=0, le=1,
                                    description="Pause when the failed share of finished upgrades exceeds this")
    max_health_regression: float = Field(
        default=0.2, ge=0, le=1,
        description="Pause when the share of upgraded devices in critical health exceeds both the same devices' "
                    "share before and the not-yet-upgraded devices' share of the same model by more than this")
    min_devices: int = Field(default=3, ge=1, le=10_000, description="Devices a rule needs before it can trip")
    return_timeout: int = Field(default=900, ge=10, le=86_400,
                                description="Seconds a device has from its Download to come back on the new version")
    health_settle: int = Field(default=600, ge=0, le=86_400,
                               description="Seconds after the upgrade before its health is judged")
    health_timeout: int = Field(default=1800, ge=10, le=86_400,
                                description="Seconds to wait for a health read after settling; then judged healthy "
                                            "if none came")


def default_waves() -> list[Wave]:
    return [Wave(devices=10), Wave(percent=1), Wave(percent=10), Wave(percent=50), Wave(percent=100)]


class CampaignBody(_Body):
    name: str = Field(min_length=1, max_length=200)
    target: TargetSelector
    images: dict[str, str] = Field(min_length=1, max_length=100,
                                   description="ProductClass -> firmware image id for the devices of that model")
    waves: list[Wave] = Field(default_factory=default_waves, min_length=1, max_length=20)
    concurrency: int = Field(default=50, ge=1, le=10_000, description="Devices upgrading at once at most")
    rate: int = Field(default=60, ge=1, le=100_000, description="Upgrades started per minute at most")
    windows: list[Window] = Field(default_factory=list, max_length=10,
                                  description="Maintenance windows; none: any time")
    time_zone: str = Field(default="UTC", max_length=64, description="IANA zone of the windows, e.g. Europe/Moscow")
    stop_rules: StopRules = Field(default_factory=StopRules)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Moscow)") from exc
        return name

    @field_validator("images")
    @classmethod
    def _image_ids(cls, images: dict[str, str]) -> dict[str, str]:
        if any(not ID_TEXT.match(image) for image in images.values()):
            raise ValueError("an image id is a firmware id (hex)")
        return images


class CampaignAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    ROLLBACK = "rollback"


class CampaignActionBody(_Body):
    action: CampaignAction
    reason: str | None = Field(default=None, max_length=1000)


class WaveProgress(BaseModel):
    number: int
    size: int
    counts: dict[str, int]


class CampaignInfo(BaseModel):
    id: str
    name: str
    status: CampaignStatus
    target: dict[str, Any]
    images: dict[str, str]
    versions: dict[str, str] = Field(description="ProductClass -> the version its image installs")
    waves: list[dict[str, Any]]
    concurrency: int
    rate: int
    windows: list[dict[str, Any]]
    time_zone: str
    stop_rules: dict[str, Any]
    created_at: datetime
    created_by: str
    devices: int
    current_wave: int
    stopped_by: dict[str, Any] | None = Field(description="The stop rule that paused it, with its numbers")
    incident_id: int | None
    updated_at: datetime


class CampaignProgress(BaseModel):
    id: str
    status: CampaignStatus
    counts: dict[str, int] = Field(description="Devices by state: pending, in_progress, upgraded_healthy, failed, "
                                               "rolled_back (and the finer states)")
    waves: list[WaveProgress]
    rate_per_hour: float = Field(description="Upgrades finished per hour over the last hour")
    estimated_end: datetime | None = Field(description="At the recent rate; null when nothing moves")
    in_window: bool


class CampaignDevice(BaseModel):
    device_id: str
    product_class: str
    wave: int
    state: MemberState
    from_version: str | None
    to_version: str
    reason: str | None
    task_id: str | None
    updated_at: datetime
    steps: list[dict[str, Any]]


class CampaignsQuery(PageQuery):
    status: CampaignStatus | None = None


class CampaignDevicesQuery(PageQuery):
    state: MemberState | None = None
