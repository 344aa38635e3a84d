"""The slow-internet panel's reading of cached values (pure): TR-098 and TR-181 shapes, vendor signal names."""

from __future__ import annotations

from dataclasses import asdict

from tasks.lan_panel import DEV, IGD, all_paths, build_panel

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
    assert asdict(build_panel(IGD, TR098_VALUES)) == (
    {"wifi": [{"ssid": "home",
               "band": "2.4GHz",
               "channel": "6",
               "status": "Up",
               "stations": [{"mac": "AA:00:00:00:00:01", "ip": "192.168.1.10", "signal_dbm": -60},
                            {"mac": "AA:00:00:00:00:02", "ip": None, "signal_dbm": None}]},
              {"ssid": "", "band": None, "channel": "auto", "status": None, "stations": []}],
     "hosts": [{"name": "tv", "ip": None, "mac": None, "interface": None, "active": False},
               {"name": "laptop",
                "ip": "192.168.1.10",
                "mac": "AA:00:00:00:00:01",
                "interface": "802.11",
                "active": True}],
     "lan_ports": [{"name": "LAN1",
                    "status": "Up",
                    "bit_rate": "1000",
                    "duplex": "Full",
                    "bytes_sent": 100,
                    "bytes_received": 200,
                    "errors_sent": None,
                    "errors_received": 0},
                   {"name": "LAN4",
                    "status": "NoLink",
                    "bit_rate": None,
                    "duplex": None,
                    "bytes_sent": None,
                    "bytes_received": None,
                    "errors_sent": None,
                    "errors_received": None}],
     "wan_totals": {"TotalBytesSent": 1000,
                    "TotalBytesReceived": 2000,
                    "TotalPacketsSent": 10,
                    "TotalPacketsReceived": None},
     "wan_links": [{"name": "iptv",
                    "status": "Connected",
                    "uptime_s": 50,
                    "last_error": None,
                    "bytes_sent": 5,
                    "bytes_received": None,
                    "errors_sent": None,
                    "errors_received": None},
                   {"name": "WANPPPConnection 2.1",
                    "status": "Connected",
                    "uptime_s": 3600,
                    "last_error": "ERROR_NONE",
                    "bytes_sent": 7,
                    "bytes_received": 8,
                    "errors_sent": 1,
                    "errors_received": 2},
                   {"name": "mgmt",
                    "status": None,
                    "uptime_s": None,
                    "last_error": None,
                    "bytes_sent": None,
                    "bytes_received": None,
                    "errors_sent": None,
                    "errors_received": None}]})


def test_every_section_of_a_tr181_device() -> None:
    assert asdict(build_panel(DEV, TR181_VALUES)) == (
    {"wifi": [{"ssid": "flat",
               "band": "2.4GHz",
               "channel": "1",
               "status": "Up",
               "stations": [{"mac": "BB:00:00:00:00:04", "ip": None, "signal_dbm": None}]},
              {"ssid": "flat-5",
               "band": "5GHz",
               "channel": "36",
               "status": None,
               "stations": [{"mac": "BB:00:00:00:00:01", "ip": None, "signal_dbm": -40},
                            {"mac": "BB:00:00:00:00:02", "ip": None, "signal_dbm": None}]},
              {"ssid": "guest", "band": None, "channel": None, "status": None, "stations": []}],
     "hosts": [{"name": "phone",
                "ip": "10.0.0.5",
                "mac": "BB:00:00:00:00:01",
                "interface": "Wi-Fi",
                "active": True}],
     "lan_ports": [{"name": "eth1",
                    "status": "Up",
                    "bit_rate": "100",
                    "duplex": "Half",
                    "bytes_sent": 11,
                    "bytes_received": None,
                    "errors_sent": None,
                    "errors_received": 3},
                   {"name": "LAN3",
                    "status": "Down",
                    "bit_rate": None,
                    "duplex": None,
                    "bytes_sent": None,
                    "bytes_received": None,
                    "errors_sent": None,
                    "errors_received": None}],
     "wan_totals": {"TotalBytesSent": 9,
                    "TotalBytesReceived": None,
                    "TotalPacketsSent": None,
                    "TotalPacketsReceived": None},
     "wan_links": [{"name": "pppoe",
                    "status": "Connected",
                    "uptime_s": 120,
                    "last_error": None,
                    "bytes_sent": 300,
                    "bytes_received": 400,
                    "errors_sent": 0,
                    "errors_received": None},
                   {"name": "PPP 2",
                    "status": "Connecting",
                    "uptime_s": None,
                    "last_error": "ERROR_NO_ANSWER",
                    "bytes_sent": 9,
                    "bytes_received": None,
                    "errors_sent": None,
                    "errors_received": None}]})


def test_a_device_that_answered_nothing() -> None:
    empty = {"wifi": [], "hosts": [], "lan_ports": [], "wan_links": []}
    assert asdict(build_panel(DEV, {})) == {**empty, "wan_totals": {}}
    totals = dict.fromkeys(("TotalBytesSent", "TotalBytesReceived", "TotalPacketsSent", "TotalPacketsReceived"))
    assert asdict(build_panel(IGD, {})) == {**empty, "wan_totals": totals}
