"""Auto-configuration profiles: what an operator writes (YAML file or API body) and what is stored.

A profile is declarative: *which* devices (selector), *when* (events), and the desired state
(parameter values, objects that must exist with their values, parameters to watch). Names may be
aliases from ``tasks/profiles/aliases.json`` (``wifi.ssid``) or full TR-069 paths; values may be
templates over the device and its subscriber record (``{{ subscriber.pppoe_login }}``).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

from schemas.xmltext import first_xml_problem

PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
# An alias (``wifi.ssid``) or a TR-069 path; objects end with ".".
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*\.?$")
# ``{{ subscriber.voip.#.number }}``: ``#`` is the object instance's ordinal (tasks/profiles/templates.py).
ORDINAL_REFERENCE = re.compile(r"\{\{[^{}]*\.#\s*(?:\.[^{}]*)?\}\}")
MAX_SETTINGS = 500
MAX_INSTANCES = 32

Value = str | int | bool


class ApplyEvent(StrEnum):
    """When a profile is applied: the Inform events of TR-069 3.7.1.5, or on demand (re-provision)."""

    BOOTSTRAP = "BOOTSTRAP"
    BOOT = "BOOT"
    PERIODIC = "PERIODIC"
    VALUE_CHANGE = "VALUE CHANGE"
    ON_DEMAND = "ON DEMAND"


# TR-069 3.7.1.5: the single-event codes that trigger an application.
EVENT_CODES = {
    "0 BOOTSTRAP": ApplyEvent.BOOTSTRAP,
    "1 BOOT": ApplyEvent.BOOT,
    "2 PERIODIC": ApplyEvent.PERIODIC,
    "4 VALUE CHANGE": ApplyEvent.VALUE_CHANGE,
}


class Notification(StrEnum):
    """TR-069 A.3.2.4 Notification attribute: 1 passive, 2 active."""

    PASSIVE = "passive"
    ACTIVE = "active"

    @property
    def code(self) -> int:
        return 1 if self is Notification.PASSIVE else 2


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_setting_name(name: str) -> str:
    if not SETTING_NAME.match(name) or len(name) > 256:
        raise ValueError(f"{name!r} is neither an alias nor a TR-069 parameter path")
    return name


def _check_value(name: str, value: Value) -> Value:
    if isinstance(value, str):
        problem = first_xml_problem(value, name)
        if problem:
            raise ValueError(problem)
        if len(value) > 4096:
            raise ValueError(f"the value of {name} is longer than 4096 characters")
    return value


class Selector(_Strict):
    """Which devices a profile is for. Every given criterion must hold; empty selects every device.

    ``software_version`` entries are shell-style patterns (``V3R017C10S1*``); ``tags``: the device
    has all of them; ``subscriber``: the device's subscriber record has these field values
    (``"*"``: the field is set at all); ``has_subscriber``: the device is bound to a subscriber.
    """

    oui: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{6}$")]] = Field(default_factory=list, max_length=100)
    product_class: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100
    )
    software_version: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=20)
    subscriber: dict[str, str] = Field(default_factory=dict, max_length=20)
    has_subscriber: bool | None = None

    @field_validator("subscriber")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        from schemas.subscribers import TEMPLATE_FIELDS

        unknown = sorted(set(value) - set(TEMPLATE_FIELDS))
        if unknown:
            raise ValueError(f"unknown subscriber field(s) {unknown}; known: {sorted(TEMPLATE_FIELDS)}")
        return value

    @property
    def needs_subscriber(self) -> bool:
        return bool(self.subscriber) or self.has_subscriber is not None


class ObjectSpec(_Strict):
    """An object table that must hold ``count`` instances with these values (names relative to the
    instance); ``exact``: instances beyond ``count`` are deleted (e.g. exactly 2 VoIP lines)."""

    path: str
    count: int = Field(default=1, ge=0, le=MAX_INSTANCES)
    exact: bool = False
    values: dict[str, Value] = Field(default_factory=dict, max_length=MAX_SETTINGS)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        _check_setting_name(value)
        if not value.endswith("."):
            raise ValueError(f"{value!r} must name an object table (end with '.')")
        return value

    @model_validator(mode="after")
    def _values(self) -> ObjectSpec:
        for name, value in self.values.items():
            _check_setting_name(name)
            if name.endswith("."):
                raise ValueError(f"{name!r}: object values name parameters, not objects")
            _check_value(name, value)
        return self


class ProfileSpec(_Strict):
    """A profile as the operator writes it (YAML file, API body)."""

    name: str
    description: str = Field(default="", max_length=1000)
    priority: int = Field(default=100, ge=0, le=10_000)
    events: list[ApplyEvent] = Field(
        default_factory=lambda: [ApplyEvent.BOOTSTRAP, ApplyEvent.BOOT, ApplyEvent.ON_DEMAND], min_length=1
    )
    selector: Selector = Field(default_factory=Selector)
    parameters: dict[str, Value] = Field(default_factory=dict, max_length=MAX_SETTINGS)
    objects: list[ObjectSpec] = Field(default_factory=list, max_length=50)
    watch: dict[str, Notification] = Field(default_factory=dict, max_length=MAX_SETTINGS)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PROFILE_NAME.match(value):
            raise ValueError("a profile name is 1-63 lower-case letters, digits, '_', '.', '-'")
        return value

    @model_validator(mode="after")
    def _settings(self) -> ProfileSpec:
        for name, value in self.parameters.items():
            _check_setting_name(name)
            if name.endswith("."):
                raise ValueError(f"{name!r}: objects go under 'objects', not 'parameters'")
            _check_value(name, value)
            if isinstance(value, str) and ORDINAL_REFERENCE.search(value):
                raise ValueError(f"{name}: '#' (an object instance's ordinal) is only for an object's values")
        for name in self.watch:
            _check_setting_name(name)
        if len({spec.path for spec in self.objects}) != len(self.objects):
            raise ValueError("an object path is listed twice")
        return self


class ProfileView(BaseModel):
    """A stored profile as the API shows it."""

    name: str
    version: int
    spec: dict[str, Any]
    updated_at: datetime
    updated_by: str
    comment: str | None = None


class ProfileVersionView(BaseModel):
    name: str
    version: int
    spec: dict[str, Any]
    at: datetime
    by: str
    action: Literal["create", "update", "rollback", "delete"]
    comment: str | None = None
    diff: list[dict[str, Any]] = Field(default_factory=list)


class PreviewRequest(_Strict):
    """``device_ids``: these devices; else up to ``sample`` devices of the selector's first OUI /
    product class. ``spec``: preview an unsaved version instead of the stored one."""

    device_ids: list[str] = Field(default_factory=list, max_length=200)
    sample: int = Field(default=20, ge=1, le=200)
    spec: ProfileSpec | None = None


class RollbackRequest(_Strict):
    version: int = Field(ge=1)
    comment: str | None = Field(default=None, max_length=500)


class Override(_Strict):
    name: str
    value: Value

    @model_validator(mode="after")
    def _checked(self) -> Override:
        _check_setting_name(self.name)
        _check_value(self.name, self.value)
        return self


class OverridesBody(_Strict):
    """A device's own values, above every profile (``null`` value: none)."""

    overrides: list[Override] = Field(default_factory=list, max_length=MAX_SETTINGS)


class ReprovisionBody(_Strict):
    device_ids: list[str] = Field(min_length=1, max_length=1000)
    connection_request: bool = True


class ConfigurationView(RootModel[dict[str, Any]]):
    """A device's effective configuration: each desired value, where it comes from (profile@version
    or override), the device's cached value, in sync or not; the outcome of the last application."""


class PreviewView(RootModel[dict[str, Any]]):
    """What a profile version would change on each device (nothing is written)."""


class DriftReportView(RootModel[dict[str, Any]]):
    """The latest drift report: devices out of sync per profile, and which."""


class AliasesView(RootModel[dict[str, Any]]):
    """The alias table (aliases.json): each common setting's TR-098 / TR-181 / vendor paths."""


class ReprovisionReport(BaseModel):
    device_id: str
    found: bool
    # The ``reprovision`` task queued for the device (GET /api/v1/tasks/{task_id} follows it).
    task_id: str | None = None
    connection_request: dict[str, Any] | None = None


class ReprovisionResult(BaseModel):
    items: list[ReprovisionReport]


class ProfileVersions(BaseModel):
    items: list[ProfileVersionView]


class ReprovisionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connection_request: bool = Field(default=True, description="Wake the device now (else: at its next Inform)")
