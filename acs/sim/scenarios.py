"""Bad days on purpose: an OLT/PON outage, a firmware that hurts the devices running it, churn.

Scenarios are pure: they pick devices and change their state at a given time; the fleet calls
`begin`/`end` (and `step` at each `step_at(k)`, for scenarios that act over time) from its clock.
Devices are grouped by the same OLT / PON identifiers they report as parameters (e.g.
X_HUAWEI_OLT_ID, X_ZTE-COM_PONPort), so an ACS can correlate the incident.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from acs.sim.device import SimDevice, Timer
from acs.sim.values import unit

SCENARIO_NAMES = ("olt-outage", "bad-firmware", "churn")


class Scenario(Protocol):
    @property
    def start(self) -> float: ...  # seconds after the fleet started

    def begin(self, devices: list[SimDevice], now: float) -> None: ...

    def end_at(self) -> float | None: ...

    def end(self, devices: list[SimDevice], now: float) -> None: ...

    def step_at(self, k: int) -> float | None: ...  # when step k runs (after start), None: no more

    def step(self, k: int, devices: list[SimDevice], now: float) -> list[SimDevice]: ...  # the devices it changed

    def describe(self, devices: list[SimDevice]) -> dict[str, object]: ...


class _NoSteps:
    def step_at(self, k: int) -> float | None:
        return None

    def step(self, k: int, devices: list[SimDevice], now: float) -> list[SimDevice]:
        return []


@dataclass(frozen=True)
class OltOutage(_NoSteps):
    """Every device on the first `pons` PON ports of `olt` loses its link, then comes back booting."""

    start: float = 60.0
    duration: float = 120.0
    olt: str = "OLT-0001"
    pons: int = 1
    return_spread: float = 10.0  # the ONTs do not all re-range in the same second

    def affected(self, devices: Iterable[SimDevice]) -> list[SimDevice]:
        on_olt = [d for d in devices if d.olt_id == self.olt]
        ports = sorted({d.pon_port for d in on_olt}, key=lambda p: [int(x) for x in p.split("/")])
        chosen = set(ports[: self.pons])
        return [d for d in on_olt if d.pon_port in chosen]

    def begin(self, devices: list[SimDevice], now: float) -> None:
        for device in self.affected(devices):
            device.power_off()

    def end_at(self) -> float | None:
        return self.start + self.duration

    def end(self, devices: list[SimDevice], now: float) -> None:
        for device in self.affected(devices):
            if not device.online and not any(t.kind == "boot" for t in device.timers):
                device.power_on(now, self.return_spread * unit(device.seed, device.serial, "olt-return"))

    def describe(self, devices: list[SimDevice]) -> dict[str, object]:
        affected = self.affected(devices)
        return {
            "scenario": "olt-outage",
            "olt": self.olt,
            "pon_ports": sorted({d.pon_port for d in affected}),
            "devices": len(affected),
            "start": self.start,
            "duration": self.duration,
        }


@dataclass(frozen=True)
class BadFirmware(_NoSteps):
    """Devices on their profile's `bad_firmware` version: falling RX level and/or reboot loops.

    Upgrading a device to another version (Download) cures it, as it would in the field.
    """

    start: float = 0.0
    rx_drift_db_per_hour: float = 6.0
    reboot_interval: float | None = 600.0

    def affected(self, devices: Iterable[SimDevice]) -> list[SimDevice]:
        return [d for d in devices if d.software_version == d.profile.identity.bad_firmware]

    def begin(self, devices: list[SimDevice], now: float) -> None:
        for device in devices:  # every device: one that downgrades later gets the fault too
            device.rx_drift_db_per_hour = self.rx_drift_db_per_hour
            device.drift_since = now
            device.crash_interval = self.reboot_interval
        for device in self.affected(devices):
            if self.reboot_interval and device.online:
                first = now + self.reboot_interval * unit(device.seed, device.serial, "crash")
                device.timers.append(Timer(first, "crash"))

    def end_at(self) -> float | None:
        return None

    def end(self, devices: list[SimDevice], now: float) -> None:
        return None

    def describe(self, devices: list[SimDevice]) -> dict[str, object]:
        versions = sorted({d.profile.identity.bad_firmware for d in devices})
        return {
            "scenario": "bad-firmware",
            "versions": versions,
            "devices": len(self.affected(devices)),
            "rx_drift_db_per_hour": self.rx_drift_db_per_hour,
            "reboot_interval": self.reboot_interval,
        }


@dataclass(frozen=True)
class Churn:
    """Background noise of a healthy network: now and then one device goes silent, then boots again.

    On average `rate` devices per minute (one event per slot of 60/rate seconds, at a random
    moment in its slot), each picked at random among the online devices, whatever its OLT or PON;
    each stays dark for a random time in [min_down, max_down] and returns with `1 BOOT` (power
    cut, unplugged, a subscriber's reset). Everything derives from `seed`: the same run again.
    """

    rate: float = 2.0  # devices per minute
    start: float = 60.0
    min_down: float = 60.0
    max_down: float = 300.0
    duration: float | None = None  # seconds of churn after start; None: until the fleet stops
    seed: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0 or not 0 <= self.min_down <= self.max_down:
            raise ValueError("churn needs rate > 0 and 0 <= min_down <= max_down")

    @property
    def slot(self) -> float:
        return 60.0 / self.rate

    def step_at(self, k: int) -> float | None:
        at = (k + unit(self.seed, k, "churn-at")) * self.slot
        if self.duration is not None and at >= self.duration:
            return None
        return self.start + at

    def down_for(self, k: int) -> float:
        return self.min_down + (self.max_down - self.min_down) * unit(self.seed, k, "churn-down")

    def pick(self, k: int, devices: list[SimDevice]) -> SimDevice | None:
        """The device event k silences: one of those online now (None when none is)."""
        online = [d for d in devices if d.online]
        if not online:
            return None
        return online[min(len(online) - 1, math.floor(unit(self.seed, k, "churn-who") * len(online)))]

    def begin(self, devices: list[SimDevice], now: float) -> None:
        return None

    def step(self, k: int, devices: list[SimDevice], now: float) -> list[SimDevice]:
        device = self.pick(k, devices)
        if device is None:
            return []
        device.power_off()
        device.power_on(now, self.down_for(k))
        return [device]

    def end_at(self) -> float | None:
        return None

    def end(self, devices: list[SimDevice], now: float) -> None:
        return None

    def describe(self, devices: list[SimDevice]) -> dict[str, object]:
        return {
            "scenario": "churn",
            "rate_per_minute": self.rate,
            "down_seconds": [self.min_down, self.max_down],
            "start": self.start,
            "duration": self.duration,
            "devices_down_now": sum(1 for d in devices if not d.online),
        }
