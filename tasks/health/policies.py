"""Health policies: which devices to poll, how often, which checks.

By default two, from the settings: every device every ``health_interval`` and devices carrying
the ``watch`` tag (set by line 2 on a subscriber's device for a few hours) every
``health_watch_interval``. A JSON file (``health_policies_file``) may replace them with a list of
policies using the device filters of the API.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tasks.health.catalog import ALL_CHECKS, Check
from tasks.store.devices import DeviceFilter


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    interval: int = Field(ge=10, description="Seconds between two health reads of one device")
    checks: tuple[Check, ...] = ALL_CHECKS
    q: str | None = None
    oui: str | None = None
    product_class: str | None = None
    software_version: str | None = None
    tag: str | None = None

    @property
    def device_filter(self) -> DeviceFilter:
        return DeviceFilter(self.q, self.oui, self.product_class, self.software_version, self.tag, True)


POLICY_LIST: TypeAdapter[list[Policy]] = TypeAdapter(list[Policy])


def default_policies(interval: int, watch_tag: str, watch_interval: int) -> list[Policy]:
    policies = [Policy(name="watch", interval=watch_interval, tag=watch_tag)]
    if interval > 0:
        policies.append(Policy(name="all", interval=interval))
    return sorted(policies, key=lambda policy: policy.interval)


def load_policies(path: Path) -> list[Policy]:
    return sorted(POLICY_LIST.validate_python(json.loads(path.read_text())), key=lambda policy: policy.interval)
