"""The slow-internet panel's reading of cached values (pure): TR-098 and TR-181 shapes, vendor signal names."""

from __future__ import annotations

from tasks.lan_panel import DEV, IGD, Host, LanPort, Panel, Station, WanLink, WifiNetwork, all_paths, build_panel

WLAN = IGD + "LANDevice.1.WLANConfiguration."
PPP = IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1."


def test_tr098_band_from_the_channel_and_a_vendor_signal_name() -> None:
    values = {
        WLAN + "1.SSID": "home", WLAN + "1.Channel": "11", WLAN + "1.Status": "Up",
        WLAN + "1.AssociatedDevice.1.AssociatedDeviceMACAddress": "AA:BB:CC:00:00:01",
        WLAN + "1.AssociatedDevice.1.X_VENDOR_RSSI": "-81",  # a gateway's own signal parameter
        WLAN + "2.SSID": "home-5", WLAN + "2.Channel": "44",
        PPP + "ConnectionStatus": "Disconnected",
        PPP + "LastConnectionError": "ERROR_AUTHENTICATION_FAILURE",
        PPP + "Uptime": "0",
    }
    panel = build_panel(IGD, values)
    assert [(n.ssid, n.band, n.channel) for n in panel.wifi] == [("home", "2.4GHz", "11"), ("home-5", "5GHz", "44")]
    assert panel.wifi[0].stations[0].signal_dbm == -81 and panel.wifi[1].stations == []
    [link] = panel.wan_links
    assert link.status == "Disconnected" and link.last_error == "ERROR_AUTHENTICATION_FAILURE" and link.uptime_s == 0


def test_tr181_stations_follow_the_access_point_to_its_ssid_and_radio() -> None:
    values = {
        DEV + "WiFi.Radio.2.OperatingFrequencyBand": "5GHz", DEV + "WiFi.Radio.2.Channel": "36",
        DEV + "WiFi.SSID.1.SSID": "flat", DEV + "WiFi.SSID.1.LowerLayers": "Device.WiFi.Radio.2",
        DEV + "WiFi.AccessPoint.3.SSIDReference": "Device.WiFi.SSID.1",
        DEV + "WiFi.AccessPoint.3.AssociatedDevice.1.MACAddress": "AA:BB:CC:00:00:02",
        DEV + "WiFi.AccessPoint.3.AssociatedDevice.1.SignalStrength": "-52",
        DEV + "Ethernet.Interface.1.Upstream": "true", DEV + "Ethernet.Interface.2.Status": "Up",
    }
    panel = build_panel(DEV, values)
    [network] = panel.wifi
    assert (network.ssid, network.band, network.channel) == ("flat", "5GHz", "36")
    assert [(s.mac, s.signal_dbm) for s in network.stations] == [("AA:BB:CC:00:00:02", -52)]
    assert [port.name for port in panel.lan_ports] == ["LAN2"], "the upstream (WAN) port is not a LAN port"


def test_reads_are_objects_not_the_whole_tree() -> None:
    for root in (IGD, DEV):
        paths = all_paths(root)
        assert paths and all(path.startswith(root) and path != root and path.endswith(".") for path in paths)


# Every section of both models at once: several instances (not from 1), gaps, a connection device
# with both kinds of WAN connection, links without a Name, values that are not numbers, stations
# of an access point whose SSID is unknown, an upstream port: the panels the two per-model readers
# made before they became one reader over a path table.
L = IGD + "LANDevice.1."
W = IGD + "WANDevice.1."
TR098_VALUES = {
    L + "WLANConfiguration.1.SSID": "home",
    L + "WLANConfiguration.1.Channel": "6",
    L + "WLANConfiguration.1.Status": "Up",
    L + "WLANConfiguration.1.AssociatedDevice.1.AssociatedDeviceMACAddress": "AA:00:00:00:00:01",
    L + "WLANConfiguration.1.AssociatedDevice.1.AssociatedDeviceIPAddress": "192.168.1.10",
    L + "WLANConfiguration.1.AssociatedDevice.1.X_ZTE-COM_SignalStrength": "-60",
    L + "WLANConfiguration.1.AssociatedDevice.2.AssociatedDeviceMACAddress": "AA:00:00:00:00:02",
    L + "WLANConfiguration.3.SSID": "",
    L + "WLANConfiguration.3.Channel": "auto",
    L + "Hosts.Host.2.HostName": "laptop",
    L + "Hosts.Host.2.IPAddress": "192.168.1.10",
    L + "Hosts.Host.2.MACAddress": "AA:00:00:00:00:01",
    L + "Hosts.Host.2.InterfaceType": "802.11",
    L + "Hosts.Host.2.Active": "1",
    L + "Hosts.Host.1.HostName": "tv",
    L + "Hosts.Host.1.Active": "false",
    L + "LANEthernetInterfaceConfig.1.Status": "Up",
    L + "LANEthernetInterfaceConfig.1.MaxBitRate": "1000",
    L + "LANEthernetInterfaceConfig.1.DuplexMode": "Full",
    L + "LANEthernetInterfaceConfig.1.Stats.BytesSent": "100",
    L + "LANEthernetInterfaceConfig.1.Stats.BytesReceived": "200",
    L + "LANEthernetInterfaceConfig.1.Stats.ErrorsSent": "x",
    L + "LANEthernetInterfaceConfig.1.Stats.ErrorsReceived": "0",
    L + "LANEthernetInterfaceConfig.1.Name": "eth0",
    L + "LANEthernetInterfaceConfig.4.Status": "NoLink",
    W + "WANCommonInterfaceConfig.TotalBytesSent": "1000",
    W + "WANCommonInterfaceConfig.TotalBytesReceived": "2000",
    W + "WANCommonInterfaceConfig.TotalPacketsSent": "10",
    W + "WANConnectionDevice.1.WANIPConnection.1.Name": "iptv",
    W + "WANConnectionDevice.1.WANIPConnection.1.ConnectionStatus": "Connected",
    W + "WANConnectionDevice.1.WANIPConnection.1.Uptime": "50",
    W + "WANConnectionDevice.1.WANIPConnection.1.Stats.EthernetBytesSent": "5",
    W + "WANConnectionDevice.2.WANPPPConnection.1.ConnectionStatus": "Connected",
    W + "WANConnectionDevice.2.WANPPPConnection.1.Uptime": "3600",
    W + "WANConnectionDevice.2.WANPPPConnection.1.LastConnectionError": "ERROR_NONE",
    W + "WANConnectionDevice.2.WANPPPConnection.1.Stats.EthernetBytesSent": "7",
    W + "WANConnectionDevice.2.WANPPPConnection.1.Stats.EthernetBytesReceived": "8",
    W + "WANConnectionDevice.2.WANPPPConnection.1.Stats.EthernetErrorsSent": "1",
    W + "WANConnectionDevice.2.WANPPPConnection.1.Stats.EthernetErrorsReceived": "2",
    W + "WANConnectionDevice.2.WANIPConnection.2.Name": "mgmt",
}
TR181_VALUES = {
    DEV + "WiFi.Radio.1.OperatingFrequencyBand": "2.4GHz",
    DEV + "WiFi.Radio.1.Channel": "1",
    DEV + "WiFi.Radio.2.OperatingFrequencyBand": "5GHz",
    DEV + "WiFi.Radio.2.Channel": "36",
    DEV + "WiFi.SSID.1.SSID": "flat",
    DEV + "WiFi.SSID.1.LowerLayers": "Device.WiFi.Radio.1.",
    DEV + "WiFi.SSID.1.Status": "Up",
    DEV + "WiFi.SSID.2.SSID": "flat-5",
    DEV + "WiFi.SSID.2.LowerLayers": "Device.WiFi.Radio.2, Device.WiFi.Radio.1",
    DEV + "WiFi.SSID.3.SSID": "guest",
    DEV + "WiFi.AccessPoint.1.SSIDReference": "Device.WiFi.SSID.2.",
    DEV + "WiFi.AccessPoint.1.AssociatedDevice.1.MACAddress": "BB:00:00:00:00:01",
    DEV + "WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength": "-40",
    DEV + "WiFi.AccessPoint.1.AssociatedDevice.2.MACAddress": "BB:00:00:00:00:02",
    DEV + "WiFi.AccessPoint.2.SSIDReference": "Device.WiFi.SSID.9",
    DEV + "WiFi.AccessPoint.2.AssociatedDevice.1.MACAddress": "BB:00:00:00:00:03",
    DEV + "WiFi.AccessPoint.3.SSIDReference": "Device.WiFi.SSID.1",
    DEV + "WiFi.AccessPoint.3.AssociatedDevice.1.MACAddress": "BB:00:00:00:00:04",
    DEV + "Hosts.Host.1.HostName": "phone",
    DEV + "Hosts.Host.1.IPAddress": "10.0.0.5",
    DEV + "Hosts.Host.1.PhysAddress": "BB:00:00:00:00:01",
    DEV + "Hosts.Host.1.InterfaceType": "Wi-Fi",
    DEV + "Hosts.Host.1.Active": "true",
    DEV + "Ethernet.Interface.1.Upstream": "true",
    DEV + "Ethernet.Interface.1.Name": "wan",
    DEV + "Ethernet.Interface.2.Name": "eth1",
    DEV + "Ethernet.Interface.2.Status": "Up",
    DEV + "Ethernet.Interface.2.Upstream": "false",
    DEV + "Ethernet.Interface.2.MaxBitRate": "100",
    DEV + "Ethernet.Interface.2.DuplexMode": "Half",
    DEV + "Ethernet.Interface.2.Stats.BytesSent": "11",
    DEV + "Ethernet.Interface.2.Stats.ErrorsReceived": "3",
    DEV + "Ethernet.Interface.3.Status": "Down",
    DEV + "PPP.Interface.1.Name": "pppoe",
    DEV + "PPP.Interface.1.ConnectionStatus": "Connected",
    DEV + "PPP.Interface.1.LastChange": "120",
    DEV + "PPP.Interface.1.Stats.BytesSent": "300",
    DEV + "PPP.Interface.1.Stats.BytesReceived": "400",
    DEV + "PPP.Interface.1.Stats.PacketsSent": "3",
    DEV + "PPP.Interface.1.Stats.PacketsReceived": "4",
    DEV + "PPP.Interface.1.Stats.ErrorsSent": "0",
    DEV + "PPP.Interface.2.ConnectionStatus": "Connecting",
    DEV + "PPP.Interface.2.LastConnectionError": "ERROR_NO_ANSWER",
    DEV + "PPP.Interface.2.Stats.BytesSent": "9",
}


def test_every_section_of_a_tr098_device() -> None:
    assert build_panel(IGD, TR098_VALUES) == Panel(
        wifi=[WifiNetwork("home", "2.4GHz", "6", "Up", [Station("AA:00:00:00:00:01", "192.168.1.10", -60),
                                                         Station("AA:00:00:00:00:02")]),
              WifiNetwork("", None, "auto", None)],
        hosts=[Host("tv", None, None, None, False),
               Host("laptop", "192.168.1.10", "AA:00:00:00:00:01", "802.11", True)],
        lan_ports=[LanPort("LAN1", "Up", "1000", "Full", 100, 200, None, 0), LanPort("LAN4", "NoLink", *[None] * 6)],
        wan_totals={"TotalBytesSent": 1000, "TotalBytesReceived": 2000, "TotalPacketsSent": 10,
                    "TotalPacketsReceived": None},
        wan_links=[WanLink("iptv", "Connected", 50, None, 5),
                   WanLink("WANPPPConnection 2.1", "Connected", 3600, "ERROR_NONE", 7, 8, 1, 2),
                   WanLink("mgmt", None, None, None)],
    )


def test_every_section_of_a_tr181_device() -> None:
    assert build_panel(DEV, TR181_VALUES) == Panel(
        wifi=[WifiNetwork("flat", "2.4GHz", "1", "Up", [Station("BB:00:00:00:00:04")]),
              WifiNetwork("flat-5", "5GHz", "36", None, [Station("BB:00:00:00:00:01", None, -40),
                                                         Station("BB:00:00:00:00:02")]),
              WifiNetwork("guest", None, None, None)],
        hosts=[Host("phone", "10.0.0.5", "BB:00:00:00:00:01", "Wi-Fi", True)],
        lan_ports=[LanPort("eth1", "Up", "100", "Half", 11, None, None, 3), LanPort("LAN3", "Down", *[None] * 6)],
        wan_totals={"TotalBytesSent": 9, "TotalBytesReceived": None, "TotalPacketsSent": None,
                    "TotalPacketsReceived": None},
        wan_links=[WanLink("pppoe", "Connected", 120, None, 300, 400, 0),
                   WanLink("PPP 2", "Connecting", None, "ERROR_NO_ANSWER", 9)],
    )


def test_a_device_that_answered_nothing() -> None:
    assert build_panel(DEV, {}) == Panel()
    totals = dict.fromkeys(("TotalBytesSent", "TotalBytesReceived", "TotalPacketsSent", "TotalPacketsReceived"))
    assert build_panel(IGD, {}) == Panel(wan_totals=totals)
