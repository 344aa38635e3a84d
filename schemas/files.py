"""Stored files as the API shows them, and the query of an upload or a listing."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.api import PageQuery

# TR-069 A.3.2.8 (Download FileType); "X <OUI> <name>" is a vendor's own type.
DOWNLOAD_FILE_TYPES = (
    "1 Firmware Upgrade Image",
    "2 Web Content",
    "3 Vendor Configuration File",
    "4 Tone File",
    "5 Ringer File",
    "6 Stored Firmware Image",
)
VENDOR_FILE_TYPE = re.compile(r"^X \S+ \S.*$")
FILE_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,255}$")


def check_download_file_type(file_type: str) -> str:
    if file_type in DOWNLOAD_FILE_TYPES or VENDOR_FILE_TYPE.match(file_type):
        return file_type
    raise ValueError(f"file_type must be one of {', '.join(DOWNLOAD_FILE_TYPES)} or 'X <OUI> <name>'")


class FileUploadQuery(BaseModel):
    """``POST /api/v1/files``: the body is the raw content; these describe it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="File name (also the Download's TargetFileName unless the task gives one)")
    file_type: str = Field(max_length=64, description="TR-069 A.3.2.8, e.g. '1 Firmware Upgrade Image'")
    oui: str | None = Field(default=None, min_length=1, max_length=6, description="Only for devices of this OUI")
    product_class: str | None = Field(default=None, min_length=1, max_length=64,
                                      description="Only for devices of this ProductClass")
    version: str | None = Field(default=None, min_length=1, max_length=64,
                                description="Software version the image installs")
    description: str | None = Field(default=None, max_length=1000)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not FILE_NAME.match(name):
            raise ValueError("name must be 1 to 255 characters without '/', '\\' or control characters")
        return name

    @field_validator("file_type")
    @classmethod
    def _file_type(cls, file_type: str) -> str:
        return check_download_file_type(file_type)


class FilesQuery(PageQuery):
    file_type: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=512, description="Files uploaded by this device")
    task_id: str | None = Field(default=None, max_length=64, description="Files uploaded for this upload task")


class FileInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    file_type: str
    size: int
    sha256: str
    content_type: str
    uploaded_at: datetime
    uploaded_by: str = Field(description="Token name, or 'device <device_id>' for a device's Upload")
    oui: str | None = None
    product_class: str | None = None
    version: str | None = None
    description: str | None = None
    task_id: str | None = Field(default=None, description="The upload task this file answers")
    device_id: str | None = Field(default=None, description="The device that uploaded it")
    url: str = Field(description="Where devices fetch it (on the CWMP listener)")
