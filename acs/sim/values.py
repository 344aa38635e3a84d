"""Values a simulated device computes instead of storing: identity, clocks, counters, optics.

Everything is a pure function of the device's identity, its state and `now`, derived with a
cheap deterministic hash so that 10,000 devices cost no per-device storage for them and the
same `--seed` gives the same fleet.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acs.sim.device import SimDevice

# Optical levels change in steps, not on every read: one noise sample per bucket.
NOISE_BUCKET_SECONDS = 300.0
RX_BEST_DBM, RX_SPREAD_DB = -14.0, 11.0  # healthy GPON class B+ receive levels: -14 .. -25 dBm
COUNTER_WRAP = 2**32  # TR-098 byte counters are unsignedInt and wrap


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) for these parts."""
    return zlib.crc32(":".join(str(p) for p in parts).encode()) / 2**32


def rx_power_dbm(device: SimDevice, now: float) -> float:
    base = RX_BEST_DBM - RX_SPREAD_DB * unit(device.seed, device.serial, "rx")
    noise = (unit(device.seed, device.serial, "rxn", int(now // NOISE_BUCKET_SECONDS)) - 0.5) * 0.6
    return round(base + noise - device.rx_degradation_db(now), 2)


def tx_power_dbm(device: SimDevice, now: float) -> float:
    noise = (unit(device.seed, device.serial, "txn", int(now // NOISE_BUCKET_SECONDS)) - 0.5) * 0.2
    return round(1.5 + 2.0 * unit(device.seed, device.serial, "tx") + noise, 2)


def temperature_c(device: SimDevice, now: float) -> int:
    warmup = min(device.uptime(now) / 1800.0, 1.0) * 8.0  # the ONT warms up after boot
    return int(36 + 6 * unit(device.seed, device.serial, "temp") + warmup)


def bias_ma(device: SimDevice) -> float:
    return round(8.0 + 10.0 * unit(device.seed, device.serial, "bias"), 1)


def mac(device: SimDevice, index: int) -> str:
    """MACs from the device's OUI block: 8 per device, like a real ONT's base MAC + offsets."""
    number = ((device.index * 8 + index) * 2654435761 + int(device.seed)) % 2**24
    raw = device.oui + f"{number:06X}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def host_mac(device: SimDevice, index: int) -> str:
    number = zlib.crc32(f"{device.seed}:{device.serial}:host{index}".encode())
    raw = f"{0x3C0754000000 | (number & 0xFFFFFF):012X}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def address(device: SimDevice, first: int, second: int, salt: int = 0) -> str:
    """A per-device IPv4 in first.second.0.0/16 (the boot count moves PPP addresses)."""
    number = (device.index * 7919 + salt * 104729) % 65023 + 257
    return f"{first}.{second}.{number // 256}.{number % 256}"


def counter(device: SimDevice, now: float, rate: int) -> str:
    spread = 0.5 + unit(device.seed, device.serial, "rate", rate)
    return str(int(device.uptime(now) * rate * spread) % COUNTER_WRAP)


def signal_dbm(device: SimDevice, now: float, station: int) -> int:
    """A Wi-Fi station's signal: -45 .. -80 dBm by where it sits, a few dB of noise per bucket."""
    base = -45 - 35 * unit(device.seed, device.serial, "wifi", station)
    noise = (unit(device.seed, device.serial, "wifin", station, int(now // NOISE_BUCKET_SECONDS)) - 0.5) * 6
    return int(base + noise)


def iso_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")


Generator = Callable[["SimDevice", float, str], str]

GENERATORS: dict[str, Generator] = {
    "oui": lambda d, now, arg: d.oui,
    "serial": lambda d, now, arg: d.serial,
    "software_version": lambda d, now, arg: d.software_version,
    "uptime": lambda d, now, arg: str(d.uptime(now)),
    "acs_url": lambda d, now, arg: d.settings.acs_url,
    "acs_username": lambda d, now, arg: d.settings.acs_username,
    "acs_password": lambda d, now, arg: d.settings.acs_password,
    "periodic_interval": lambda d, now, arg: str(d.settings.periodic_interval),
    "cr_url": lambda d, now, arg: d.connection_request_url,
    "cr_username": lambda d, now, arg: d.serial,
    "cr_password": lambda d, now, arg: f"{unit(d.seed, d.serial, 'crpw'):.8f}"[2:],
    "current_time": lambda d, now, arg: iso_time(now),
    "mgmt_ip": lambda d, now, arg: address(d, 10, 64),
    "wan_ip": lambda d, now, arg: address(d, 100, 64 + d.boot_count % 64, d.boot_count),
    "ppp_username": lambda d, now, arg: f"{d.serial.lower()}@fibre.example.net",
    "mac": lambda d, now, arg: mac(d, int(arg)),
    "host_mac": lambda d, now, arg: host_mac(d, int(arg)),
    "ssid": lambda d, now, arg: (
        d.profile.identity.ssid_prefix + mac(d, 0).replace(":", "")[-4:] + ("" if arg == "1" else f"-{arg}")
    ),
    "counter": lambda d, now, arg: counter(d, now, int(arg)),
    "rx_dbm": lambda d, now, arg: f"{rx_power_dbm(d, now):.2f}",
    "rx_dbm1000": lambda d, now, arg: str(int(rx_power_dbm(d, now) * 1000)),
    "tx_dbm": lambda d, now, arg: f"{tx_power_dbm(d, now):.2f}",
    "tx_dbm1000": lambda d, now, arg: str(int(tx_power_dbm(d, now) * 1000)),
    "temperature": lambda d, now, arg: str(temperature_c(d, now)),
    "bias_ma": lambda d, now, arg: str(int(bias_ma(d))),
    "bias_ua": lambda d, now, arg: str(int(bias_ma(d) * 1000)),
    "olt_id": lambda d, now, arg: d.olt_id,
    "pon_port": lambda d, now, arg: d.pon_port,
    "ont_id": lambda d, now, arg: str(d.ont_id),
    "count": lambda d, now, arg: str(len(d.tree.instances(arg))),
    "signal": lambda d, now, arg: str(signal_dbm(d, now, int(arg))),
}

# Generators whose value moves by itself all the time: active notification on them is refused
# (TR-069 A.3.2.4, fault 9009), as real CPEs do for UpTime and counters.
FREE_RUNNING = frozenset(
    {"uptime", "current_time", "counter", "rx_dbm", "rx_dbm1000", "tx_dbm", "tx_dbm1000", "temperature", "signal"}
)


def compute(device: SimDevice, kind: str, now: float) -> str:
    name, _, arg = kind.partition(":")
    return GENERATORS[name](device, now, arg)
