"""Optical levels of a PON device from its cached parameters, judged against thresholds.

Vendors publish the levels under their own names and units; these are the ones the fleet
(and ``acs sim``) uses. GPON class B+ (ITU-T G.984.2): receive between -27 and -8 dBm,
transmit between +0.5 and +5 dBm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tasks.store.parameters import CachedParameter

RX_RANGE = (-27.0, -8.0)
TX_RANGE = (0.5, 5.0)


@dataclass(frozen=True)
class OpticalSource:
    obj: str
    rx: str
    tx: str
    scale: float  # dBm per unit of the value


SOURCES = (
    OpticalSource("InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig.", "RXPower", "TXPower", 1.0),
    OpticalSource("InternetGatewayDevice.WANDevice.1.X_ZTE-COM_WANPONInterfaceConfig.", "RXPower", "TXPower", 0.001),
    # TR-181 Optical.Interface: Dbm1000 (dBm x 1000).
    OpticalSource("Device.Optical.Interface.1.", "OpticalSignalLevel", "TransmitOpticalLevel", 0.001),
)


@dataclass(frozen=True)
class Level:
    dbm: float | None
    low: float
    high: float
    updated_at: datetime | None
    parameter: str

    @property
    def ok(self) -> bool | None:
        return None if self.dbm is None else self.low <= self.dbm <= self.high


def _level(parameter: CachedParameter | None, name: str, scale: float, bounds: tuple[float, float]) -> Level:
    dbm = None
    if parameter is not None and parameter.value not in (None, ""):
        try:
            dbm = round(float(str(parameter.value)) * scale, 2)
        except ValueError:
            dbm = None
    return Level(dbm, bounds[0], bounds[1], parameter.updated_at if parameter else None, name)


def optical_levels(cached: dict[str, CachedParameter]) -> tuple[Level, Level] | None:
    """RX and TX levels, or None when the cache holds no optical object known here."""
    for source in SOURCES:
        rx, tx = cached.get(source.obj + source.rx), cached.get(source.obj + source.tx)
        if rx is not None or tx is not None:
            return (_level(rx, source.obj + source.rx, source.scale, RX_RANGE),
                    _level(tx, source.obj + source.tx, source.scale, TX_RANGE))
    return None
