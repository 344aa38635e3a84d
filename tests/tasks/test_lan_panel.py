"""The slow-internet panel's reading of cached values (pure): TR-098 and TR-181 shapes, vendor signal names."""

from __future__ import annotations

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
