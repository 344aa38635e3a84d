"""Which parameters a health check reads on a device: ``checks.json``, data rather than code branches.

A profile matches a device by product class, OUI and data-model root (each optional); the first
match wins, so vendor profiles come before the generic TR-181 / TR-098 fallbacks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CHECKS_FILE = Path(__file__).with_name("checks.json")
Check = Literal["optical", "wan", "device"]
ALL_CHECKS: tuple[Check, ...] = ("optical", "wan", "device")


class MetricSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    check: Check
    name: str
    unit: Literal["dBm", "dBm1000", "C", "s"] | None = None
    up: tuple[str, ...] = ()  # values that mean healthy (states)


class Match(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    product_class: tuple[str, ...] = ()
    oui: tuple[str, ...] = ()
    root: str | None = None

    def fits(self, device: Mapping[str, Any]) -> bool:
        if self.product_class and device.get("product_class") not in self.product_class:
            return False
        if self.oui and device.get("oui") not in self.oui:
            return False
        return self.root is None or device.get("root", "InternetGatewayDevice.") == self.root


class ThresholdOverrides(BaseModel):
    """A family's own limits; any left out are the fleet-wide ones (settings ``health_*``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rx_warn_dbm: float | None = None
    rx_critical_dbm: float | None = None
    tx_low_dbm: float | None = None
    temperature_warn_c: float | None = None
    temperature_critical_c: float | None = None
    reboots_warn: int | None = None
    reboots_critical: int | None = None


class CheckProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    match: Match = Field(default_factory=Match)
    metrics: dict[str, MetricSpec]
    thresholds: ThresholdOverrides = Field(default_factory=ThresholdOverrides)

    def names(self, checks: tuple[str, ...] = ALL_CHECKS) -> list[str]:
        return [spec.name for spec in self.metrics.values() if spec.check in checks]

    def readings(self, values: list[Mapping[str, Any]]) -> dict[str, str]:
        """GetParameterValues result (a list of name/value) -> metric -> raw value."""
        by_name = {str(value["name"]): str(value.get("value") or "") for value in values}
        return {metric: by_name[spec.name] for metric, spec in self.metrics.items() if spec.name in by_name}


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    profiles: tuple[CheckProfile, ...]

    def for_device(self, device: Mapping[str, Any]) -> CheckProfile:
        for profile in self.profiles:
            if profile.match.fits(device):
                return profile
        return self.profiles[-1]


@cache
def default_catalog() -> Catalog:
    return load_catalog(CHECKS_FILE)


def load_catalog(path: Path) -> Catalog:
    return Catalog.model_validate(json.loads(path.read_text()))
