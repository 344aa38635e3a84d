"""The slow-internet panel: which objects to read (targeted, not the whole tree) and what they say.

Pure. For each data model root the panel reads a few objects by partial path (TR-069 A.3.2.2: a
name ending in "." returns every parameter below it), one ``get_parameter_values`` task per
section, so an object a device lacks (fault 9005) blanks only its own section. The answers land
in the parameter cache like any read; :func:`build_panel` turns the cached values into the
Wi-Fi networks with their associated stations, the LAN hosts, the LAN ports, and the WAN counters
and PPP state, for TR-098 (``InternetGatewayDevice.``) and TR-181 (``Device.``) devices: one
reader per section, driven by each data model's path table (``MODELS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

IGD = "InternetGatewayDevice."
DEV = "Device."
SECTIONS = ("wifi", "hosts", "lan_ports", "wan")


@dataclass(frozen=True)
class ModelPaths:
    """Where one data model keeps what the panel shows.

    An object pattern names objects: ``{}`` stands for each instance number present in the values,
    ``(A|B)`` for A and then B; a pattern without them names one object. Other names are relative
    to their object; None where the model has no such parameter.
    """

    reads: dict[str, tuple[str, ...]]  # the partial paths each section reads
    networks: str  # Wi-Fi networks (SSIDs)
    radio_reference: str | None  # a network's radio (channel, band); None: the network's own object
    band: str | None  # the radio's band; None: from the channel
    access_points: str | None  # stations hang off these, each naming its network; None: off the network
    station_mac: str
    station_ip: str | None
    station_signal: str | None  # None: the gateway's own name for it (SIGNAL_NAME)
    hosts: str
    host_mac: str
    lan_ports: str
    port_name: str | None  # None: LAN<instance>
    port_upstream: str | None  # true: the WAN side, not a LAN port
    wan_links: str
    wan_link_name: str  # a link without a Name: formatted with what stood for the pattern's parts
    wan_uptime: str
    wan_stats: str  # prefix of BytesSent, BytesReceived, ErrorsSent, ErrorsReceived
    wan_totals: str  # the object the WAN totals come from (the last one found)
    wan_total_names: tuple[str, str, str, str]  # its BytesSent, BytesReceived, PacketsSent, PacketsReceived


TOTALS = ("TotalBytesSent", "TotalBytesReceived", "TotalPacketsSent", "TotalPacketsReceived")
MODELS: dict[str, ModelPaths] = {
    IGD: ModelPaths(
        reads={
            "wifi": (IGD + "LANDevice.1.WLANConfiguration.",),
            "hosts": (IGD + "LANDevice.1.Hosts.",),
            "lan_ports": (IGD + "LANDevice.1.LANEthernetInterfaceConfig.",),
            "wan": (IGD + "WANDevice.1.WANCommonInterfaceConfig.", IGD + "WANDevice.1.WANConnectionDevice."),
        },
        networks=IGD + "LANDevice.1.WLANConfiguration.{}.",
        radio_reference=None, band=None, access_points=None,  # TR-098: one object per network, no band
        station_mac="AssociatedDeviceMACAddress", station_ip="AssociatedDeviceIPAddress", station_signal=None,
        hosts=IGD + "LANDevice.1.Hosts.Host.{}.", host_mac="MACAddress",
        lan_ports=IGD + "LANDevice.1.LANEthernetInterfaceConfig.{}.", port_name=None, port_upstream=None,
        wan_links=IGD + "WANDevice.1.WANConnectionDevice.{}.(WANPPPConnection|WANIPConnection).{}.",
        wan_link_name="{1} {0}.{2}", wan_uptime="Uptime", wan_stats="Stats.Ethernet",
        wan_totals=IGD + "WANDevice.1.WANCommonInterfaceConfig.", wan_total_names=TOTALS,
    ),
    DEV: ModelPaths(
        reads={
            "wifi": (DEV + "WiFi.Radio.", DEV + "WiFi.SSID.", DEV + "WiFi.AccessPoint."),
            "hosts": (DEV + "Hosts.",),
            "lan_ports": (DEV + "Ethernet.Interface.",),
            "wan": (DEV + "PPP.Interface.",),
        },
        networks=DEV + "WiFi.SSID.{}.",
        radio_reference="LowerLayers", band="OperatingFrequencyBand", access_points=DEV + "WiFi.AccessPoint.{}.",
        station_mac="MACAddress", station_ip=None, station_signal="SignalStrength",
        hosts=DEV + "Hosts.Host.{}.", host_mac="PhysAddress",
        lan_ports=DEV + "Ethernet.Interface.{}.", port_name="Name", port_upstream="Upstream",
        wan_links=DEV + "PPP.Interface.{}.", wan_link_name="PPP {0}", wan_uptime="LastChange", wan_stats="Stats.",
        # TR-181 has no WANCommonInterfaceConfig: the totals are the PPP interface's own counters
        wan_totals=DEV + "PPP.Interface.{}.",
        wan_total_names=("Stats.BytesSent", "Stats.BytesReceived", "Stats.PacketsSent", "Stats.PacketsReceived"),
    ),
}
PART = re.compile(r"\{\}|\(([^)]*)\)")  # a pattern's instance or alternatives

# TR-098 has no signal level in AssociatedDevice: gateways add their own (X_<vendor>_RSSI,
# X_<vendor>_SignalStrength, ...); the first child named like that is taken.
SIGNAL_NAME = re.compile(r"(SignalStrength|RSSI)$", re.IGNORECASE)


def _paths(root: str) -> ModelPaths:
    return MODELS.get(root, MODELS[IGD])


def reads_for(root: str) -> dict[str, tuple[str, ...]]:
    """The partial paths of each section for a device whose data model root is ``root``."""
    return _paths(root).reads


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


def _objects(values: Mapping[str, Any], pattern: str, found: str = "",
             parts: tuple[str, ...] = ()) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The objects ``pattern`` names in ``values``, in order: each one's path, and what stood for
    each of the pattern's parts (an instance number, an alternative)."""
    part = PART.search(pattern)
    if part is None:
        yield found + pattern, parts
        return
    head = found + pattern[:part.start()]
    alternatives = part.group(1)
    choices = [str(n) for n in _instances(values, head)] if alternatives is None else alternatives.split("|")
    for choice in choices:
        yield from _objects(values, pattern[part.end():], head + choice, (*parts, choice))


def _reference(values: Mapping[str, Any], name: str) -> str:
    """The object a reference parameter names (the first of a list), as a path ending in "."."""
    target = (_text(values, name) or "").split(",")[0].strip().rstrip(".")
    return target + "." if target else ""


def build_panel(root: str, values: Mapping[str, Any]) -> Panel:
    """The panel from cached values (``name -> value``) of the paths in :func:`reads_for`."""
    paths = _paths(root)
    return Panel(wifi=_wifi(values, paths), hosts=_hosts(values, paths), lan_ports=_lan_ports(values, paths),
                 wan_totals=_wan_totals(values, paths), wan_links=_wan_links(values, paths))


def _wifi(values: Mapping[str, Any], paths: ModelPaths) -> list[WifiNetwork]:
    networks: dict[str, WifiNetwork] = {}
    for base, _ in _objects(values, paths.networks):
        band, channel = _radio(values, paths, base)
        networks[base] = WifiNetwork(ssid=_text(values, base + "SSID") or "", band=band, channel=channel,
                                     status=_text(values, base + "Status"))
    for holder, network in _station_holders(values, paths, networks):
        for station, _ in _objects(values, holder + "AssociatedDevice.{}."):
            network.stations.append(Station(
                mac=_text(values, station + paths.station_mac) or "",
                ip=_text(values, station + paths.station_ip) if paths.station_ip else None,
                signal_dbm=_signal(values, station) if paths.station_signal is None
                else _int(values, station + paths.station_signal)))
    return list(networks.values())


def _radio(values: Mapping[str, Any], paths: ModelPaths, network: str) -> tuple[str | None, str | None]:
    """(band, channel) of a network's radio."""
    radio = network if paths.radio_reference is None else _reference(values, network + paths.radio_reference)
    if not radio:
        return None, None
    channel = _text(values, radio + "Channel")
    return (_band_of_channel(channel) if paths.band is None else _text(values, radio + paths.band)), channel


def _station_holders(values: Mapping[str, Any], paths: ModelPaths,
                     networks: dict[str, WifiNetwork]) -> Iterator[tuple[str, WifiNetwork]]:
    """The objects whose AssociatedDevice table lists a network's stations: the network's own
    (TR-098), or each access point that names it (TR-181 SSIDReference; one naming no known SSID
    is left out)."""
    if paths.access_points is None:
        yield from networks.items()
        return
    for base, _ in _objects(values, paths.access_points):
        network = networks.get(_reference(values, base + "SSIDReference"))
        if network is not None:
            yield base, network


def _hosts(values: Mapping[str, Any], paths: ModelPaths) -> list[Host]:
    return [Host(_text(values, base + "HostName"), _text(values, base + "IPAddress"),
                 _text(values, base + paths.host_mac), _text(values, base + "InterfaceType"),
                 _bool(values, base + "Active"))
            for base, _ in _objects(values, paths.hosts)]


def _lan_ports(values: Mapping[str, Any], paths: ModelPaths) -> list[LanPort]:
    ports = []
    for base, (n,) in _objects(values, paths.lan_ports):
        if paths.port_upstream and _bool(values, base + paths.port_upstream):
            continue  # the WAN side, not a LAN port
        name = _text(values, base + paths.port_name) if paths.port_name else None
        ports.append(LanPort(
            name or f"LAN{n}", _text(values, base + "Status"), _text(values, base + "MaxBitRate"),
            _text(values, base + "DuplexMode"), _int(values, base + "Stats.BytesSent"),
            _int(values, base + "Stats.BytesReceived"), _int(values, base + "Stats.ErrorsSent"),
            _int(values, base + "Stats.ErrorsReceived")))
    return ports


def _wan_links(values: Mapping[str, Any], paths: ModelPaths) -> list[WanLink]:
    stats = paths.wan_stats
    return [WanLink(
        _text(values, base + "Name") or paths.wan_link_name.format(*parts), _text(values, base + "ConnectionStatus"),
        _int(values, base + paths.wan_uptime), _text(values, base + "LastConnectionError"),
        _int(values, base + stats + "BytesSent"), _int(values, base + stats + "BytesReceived"),
        _int(values, base + stats + "ErrorsSent"), _int(values, base + stats + "ErrorsReceived"))
        for base, parts in _objects(values, paths.wan_links)]


def _wan_totals(values: Mapping[str, Any], paths: ModelPaths) -> dict[str, int | None]:
    found = [base for base, _ in _objects(values, paths.wan_totals)]
    if not found:
        return {}
    return {key: _int(values, found[-1] + name) for key, name in zip(TOTALS, paths.wan_total_names, strict=True)}
