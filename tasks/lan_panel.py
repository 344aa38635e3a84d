"""The slow-internet panel: which objects to read (targeted, not the whole tree) and what they say.

Pure. For each data model root the panel reads a few objects by partial path (TR-069 A.3.2.2: a
name ending in "." returns every parameter below it), one ``get_parameter_values`` task per
section, so an object a device lacks (fault 9005) blanks only its own section. The answers land
in the parameter cache like any read; :func:`build_panel` turns the cached values into the
Wi-Fi networks with their associated stations, the LAN hosts, the LAN ports, and the WAN counters
and PPP state, for TR-098 (``InternetGatewayDevice.``) and TR-181 (``Device.``) devices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IGD = "InternetGatewayDevice."
DEV = "Device."
SECTIONS = ("wifi", "hosts", "lan_ports", "wan")

READS: dict[str, dict[str, tuple[str, ...]]] = {
    IGD: {
        "wifi": (IGD + "LANDevice.1.WLANConfiguration.",),
        "hosts": (IGD + "LANDevice.1.Hosts.",),
        "lan_ports": (IGD + "LANDevice.1.LANEthernetInterfaceConfig.",),
        "wan": (IGD + "WANDevice.1.WANCommonInterfaceConfig.", IGD + "WANDevice.1.WANConnectionDevice."),
    },
    DEV: {
        "wifi": (DEV + "WiFi.Radio.", DEV + "WiFi.SSID.", DEV + "WiFi.AccessPoint."),
        "hosts": (DEV + "Hosts.",),
        "lan_ports": (DEV + "Ethernet.Interface.",),
        "wan": (DEV + "PPP.Interface.",),
    },
}
# TR-098 has no signal level in AssociatedDevice: gateways add their own (X_<vendor>_RSSI,
# X_<vendor>_SignalStrength, ...); the first child named like that is taken.
SIGNAL_NAME = re.compile(r"(SignalStrength|RSSI)$", re.IGNORECASE)


def reads_for(root: str) -> dict[str, tuple[str, ...]]:
    """The partial paths of each section for a device whose data model root is ``root``."""
    return READS.get(root, READS[IGD])


def all_paths(root: str) -> list[str]:
    return [path for paths in reads_for(root).values() for path in paths]


@dataclass
class Station:
    mac: str
    ip: str | None = None
    signal_dbm: int | None = None


@dataclass
class WifiNetwork:
    ssid: str
    band: str | None
    channel: str | None
    status: str | None
    stations: list[Station] = field(default_factory=list)


@dataclass
class Host:
    name: str | None
    ip: str | None
    mac: str | None
    interface: str | None
    active: bool | None


@dataclass
class LanPort:
    name: str
    status: str | None
    bit_rate: str | None
    duplex: str | None
    bytes_sent: int | None
    bytes_received: int | None
    errors_sent: int | None
    errors_received: int | None


@dataclass
class WanLink:
    name: str
    status: str | None
    uptime_s: int | None  # TR-098 Uptime; TR-181 LastChange (seconds since the status changed)
    last_error: str | None
    bytes_sent: int | None = None
    bytes_received: int | None = None
    errors_sent: int | None = None
    errors_received: int | None = None


@dataclass
class Panel:
    wifi: list[WifiNetwork] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    lan_ports: list[LanPort] = field(default_factory=list)
    wan_totals: dict[str, int | None] = field(default_factory=dict)
    wan_links: list[WanLink] = field(default_factory=list)


def _instances(values: Mapping[str, Any], table: str) -> list[int]:
    """Instance numbers present under ``table`` (e.g. "...Hosts.Host.")."""
    found = set()
    for name in values:
        if name.startswith(table):
            head = name[len(table):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    return None if value is None or value == "" else str(value)


def _int(values: Mapping[str, Any], name: str) -> int | None:
    text = _text(values, name)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _bool(values: Mapping[str, Any], name: str) -> bool | None:
    text = _text(values, name)
    return None if text is None else text.lower() in ("true", "1")


def _band_of_channel(channel: str | None) -> str | None:
    """TR-098 WLANConfiguration has no band: channels 1-14 are 2.4 GHz, higher ones 5 GHz."""
    number = int(channel) if channel and channel.isdigit() else 0
    if not number:
        return None
    return "2.4GHz" if number <= 14 else "5GHz"


def _signal(values: Mapping[str, Any], prefix: str) -> int | None:
    for name in sorted(values):
        if name.startswith(prefix) and "." not in name[len(prefix):] and SIGNAL_NAME.search(name):
            return _int(values, name)
    return None


def build_panel(root: str, values: Mapping[str, Any]) -> Panel:
    """The panel from cached values (``name -> value``) of the paths in :func:`reads_for`."""
    return _tr181(values) if root == DEV else _tr098(values)


def _tr098(values: Mapping[str, Any]) -> Panel:
    panel = Panel()
    lan = IGD + "LANDevice.1."
    wlan = lan + "WLANConfiguration."
    for n in _instances(values, wlan):
        base = f"{wlan}{n}."
        channel = _text(values, base + "Channel")
        network = WifiNetwork(ssid=_text(values, base + "SSID") or "", band=_band_of_channel(channel),
                              channel=channel, status=_text(values, base + "Status"))
        for s in _instances(values, base + "AssociatedDevice."):
            station = f"{base}AssociatedDevice.{s}."
            network.stations.append(Station(mac=_text(values, station + "AssociatedDeviceMACAddress") or "",
                                            ip=_text(values, station + "AssociatedDeviceIPAddress"),
                                            signal_dbm=_signal(values, station)))
        panel.wifi.append(network)
    hosts = lan + "Hosts.Host."
    for n in _instances(values, hosts):
        base = f"{hosts}{n}."
        panel.hosts.append(Host(_text(values, base + "HostName"), _text(values, base + "IPAddress"),
                                _text(values, base + "MACAddress"), _text(values, base + "InterfaceType"),
                                _bool(values, base + "Active")))
    ports = lan + "LANEthernetInterfaceConfig."
    for n in _instances(values, ports):
        base = f"{ports}{n}."
        panel.lan_ports.append(LanPort(
            f"LAN{n}", _text(values, base + "Status"), _text(values, base + "MaxBitRate"),
            _text(values, base + "DuplexMode"), _int(values, base + "Stats.BytesSent"),
            _int(values, base + "Stats.BytesReceived"), _int(values, base + "Stats.ErrorsSent"),
            _int(values, base + "Stats.ErrorsReceived")))
    common = IGD + "WANDevice.1.WANCommonInterfaceConfig."
    panel.wan_totals = {key: _int(values, common + key) for key in
                        ("TotalBytesSent", "TotalBytesReceived", "TotalPacketsSent", "TotalPacketsReceived")}
    devices = IGD + "WANDevice.1.WANConnectionDevice."
    for d in _instances(values, devices):
        for kind in ("WANPPPConnection", "WANIPConnection"):
            table = f"{devices}{d}.{kind}."
            for c in _instances(values, table):
                base = f"{table}{c}."
                panel.wan_links.append(WanLink(
                    _text(values, base + "Name") or f"{kind} {d}.{c}", _text(values, base + "ConnectionStatus"),
                    _int(values, base + "Uptime"), _text(values, base + "LastConnectionError"),
                    _int(values, base + "Stats.EthernetBytesSent"), _int(values, base + "Stats.EthernetBytesReceived"),
                    _int(values, base + "Stats.EthernetErrorsSent"),
                    _int(values, base + "Stats.EthernetErrorsReceived")))
    return panel


def _tr181(values: Mapping[str, Any]) -> Panel:
    panel = Panel()
    ssids = DEV + "WiFi.SSID."
    networks: dict[str, WifiNetwork] = {}
    for n in _instances(values, ssids):
        base = f"{ssids}{n}."
        radio = (_text(values, base + "LowerLayers") or "").split(",")[0].strip().rstrip(".")
        network = WifiNetwork(ssid=_text(values, base + "SSID") or "",
                              band=_text(values, radio + ".OperatingFrequencyBand") if radio else None,
                              channel=_text(values, radio + ".Channel") if radio else None,
                              status=_text(values, base + "Status"))
        networks[f"{ssids}{n}"] = network
        panel.wifi.append(network)
    points = DEV + "WiFi.AccessPoint."
    for a in _instances(values, points):
        base = f"{points}{a}."
        served = networks.get((_text(values, base + "SSIDReference") or "").rstrip("."))
        if served is None:
            continue
        for s in _instances(values, base + "AssociatedDevice."):
            station = f"{base}AssociatedDevice.{s}."
            served.stations.append(Station(mac=_text(values, station + "MACAddress") or "",
                                            signal_dbm=_int(values, station + "SignalStrength")))
    hosts = DEV + "Hosts.Host."
    for n in _instances(values, hosts):
        base = f"{hosts}{n}."
        panel.hosts.append(Host(_text(values, base + "HostName"), _text(values, base + "IPAddress"),
                                _text(values, base + "PhysAddress"), _text(values, base + "InterfaceType"),
                                _bool(values, base + "Active")))
    ports = DEV + "Ethernet.Interface."
    for n in _instances(values, ports):
        base = f"{ports}{n}."
        if _bool(values, base + "Upstream"):
            continue  # the WAN side, not a LAN port
        panel.lan_ports.append(LanPort(
            _text(values, base + "Name") or f"LAN{n}", _text(values, base + "Status"),
            _text(values, base + "MaxBitRate"), _text(values, base + "DuplexMode"),
            _int(values, base + "Stats.BytesSent"), _int(values, base + "Stats.BytesReceived"),
            _int(values, base + "Stats.ErrorsSent"), _int(values, base + "Stats.ErrorsReceived")))
    ppp = DEV + "PPP.Interface."
    for n in _instances(values, ppp):
        base = f"{ppp}{n}."
        panel.wan_links.append(WanLink(
            _text(values, base + "Name") or f"PPP {n}", _text(values, base + "ConnectionStatus"),
            _int(values, base + "LastChange"), _text(values, base + "LastConnectionError"),
            _int(values, base + "Stats.BytesSent"), _int(values, base + "Stats.BytesReceived"),
            _int(values, base + "Stats.ErrorsSent"), _int(values, base + "Stats.ErrorsReceived")))
        panel.wan_totals = {"TotalBytesSent": _int(values, base + "Stats.BytesSent"),
                            "TotalBytesReceived": _int(values, base + "Stats.BytesReceived"),
                            "TotalPacketsSent": _int(values, base + "Stats.PacketsSent"),
                            "TotalPacketsReceived": _int(values, base + "Stats.PacketsReceived")}
    return panel
