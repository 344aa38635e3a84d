"""Subscriber records: the operator's data a profile's templates draw on (PPPoE, VLAN, VoIP, plan).

A record is bound to a device by its ``serial_number`` (the CPE's DeviceId.SerialNumber), or,
with no serial given, by the PPPoE login the device itself reports (``bind_by: pppoe_login``).
The PPPoE and VoIP passwords are secrets: sealed at rest, shown as ``***``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.xmltext import first_xml_problem

ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,63}$")
MAX_VOIP_LINES = 8
# What a template may name: ``{{ subscriber.<field> }}`` (and ``voip.<n>.<field>``).
TEMPLATE_FIELDS = (
    "account",
    "pppoe_login",
    "pppoe_password",
    "vlan",
    "plan",
    "address",
    "serial_number",
    "name",
)
SECRET_FIELDS = ("pppoe_password",)


class BindBy(StrEnum):
    SERIAL = "serial"  # DeviceId.SerialNumber equals the record's serial_number
    PPPOE_LOGIN = "pppoe_login"  # the device reports this PPPoE login (wan.pppoe.username)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _xml_text(self) -> _Strict:
        # Subscriber values end up in SetParameterValues: refuse what XML cannot carry.
        for name in type(self).model_fields:
            problem = first_xml_problem(getattr(self, name), name)
            if problem:
                raise ValueError(problem)
        return self


class VoipLine(_Strict):
    number: str = Field(min_length=1, max_length=32, pattern=r"^\+?[0-9*#]{1,32}$")
    username: str = Field(default="", max_length=64)
    password: str = Field(default="", max_length=64)


class Subscriber(_Strict):
    """A subscriber record as written (API body, one CSV row)."""

    account: str
    name: str = Field(default="", max_length=200)
    pppoe_login: str = Field(default="", max_length=64)
    pppoe_password: str = Field(default="", max_length=64)
    vlan: int | None = Field(default=None, ge=1, le=4094)  # IEEE 802.1Q VLAN ID
    voip: list[VoipLine] = Field(default_factory=list, max_length=MAX_VOIP_LINES)
    plan: str = Field(default="", max_length=64)
    address: str = Field(default="", max_length=300)
    serial_number: str = Field(default="", max_length=64)  # TR-069 DeviceIdStruct SerialNumber: 64
    bind_by: BindBy = BindBy.SERIAL

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not ACCOUNT.match(value):
            raise ValueError("an account number is 1-64 letters, digits, '_', '.', '-', '/'")
        return value

    @model_validator(mode="after")
    def _binding(self) -> Subscriber:
        if self.bind_by is BindBy.PPPOE_LOGIN and not self.pppoe_login:
            raise ValueError("bind_by pppoe_login needs a pppoe_login")
        return self


class SubscriberView(BaseModel):
    """A stored record as the API shows it: passwords as ``***``."""

    account: str
    name: str
    pppoe_login: str
    pppoe_password: str
    vlan: int | None
    voip: list[dict[str, Any]]
    plan: str
    address: str
    serial_number: str
    bind_by: str
    device_id: str | None = None
    updated_at: datetime
    updated_by: str


class ImportReport(BaseModel):
    """What a CSV import did (or, with ``dry_run``, would do)."""

    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    bad_rows: list[dict[str, Any]]


class SubscriberQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="An account number, PPPoE login or serial number (exact)",
    )
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512, description="next_cursor of the previous page")


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = Field(default=False, description="Check every row and report; write nothing")
