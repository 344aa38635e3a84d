"""What each vendor profile contains: the data-model subset, vendor parameters and factory values.

Selection entries are object paths with `{i}` for "every existing instance" (or a concrete number
for one parent instance) and the number of instances to create in each multi-instance table.
`dynamic` maps a parameter to the value generator the simulated device computes it with
(see acs/sim/values.py); everything else is a factory value stored once per profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acs.sim.profiles.datamodel import ParamDef

IGD = "InternetGatewayDevice."
WAN = IGD + "WANDevice.1."
MGMT_IP = WAN + "WANConnectionDevice.1.WANIPConnection.1."  # TR-069 management VLAN
NET_PPP = WAN + "WANConnectionDevice.2.WANPPPConnection.1."  # Internet (PPPoE)
LAN = IGD + "LANDevice.1."


@dataclass(frozen=True)
class VendorObject:
    name: str  # concrete path, ends with "."
    writable: bool = False
    multi: bool = False
    in_new_instances: bool = False  # only inside instances the ACS adds (no factory instance of it)


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    description: str
    data_model: str
    model_key: str  # "tr-098" or "tr-181"
    root: str
    identity: dict[str, object]
    roles: dict[str, str]
    selection: list[tuple[str, int]]
    values: dict[str, str] = field(default_factory=dict)
    vendor_objects: list[VendorObject] = field(default_factory=list)
    vendor_params: list[tuple[ParamDef, str]] = field(default_factory=list)
    dynamic: dict[str, str] = field(default_factory=dict)
    inform_parameters: tuple[str, ...] = ()
    diagnostics: dict[str, str] = field(default_factory=dict)
    use_huawei_dump: bool = False


def vendor(name: str, wire_type: str, default: str, writable: bool = False) -> tuple[ParamDef, str]:
    return ParamDef(name, wire_type, writable), default


# -- VoIP (TR-104 VoiceService:1, issue 14) ---------------------------------------------------------
# The shared BBF files hold TR-098 and TR-181 but not TR-104, so the VoiceService:1 names, types,
# writability and limits below are written from TR-104 Issue 2. The same object sits under both
# roots (InternetGatewayDevice.Services. and Device.Services.), which is what GPON ONTs of both data
# models report. From the factory the Line table is empty, as in the real Huawei dump
# (samples/huawei-bm632w-datamodel.csv): the ACS adds a line per subscriber number (AddObject), and
# a factory reset empties the table again.
LINE_ENABLE = ("Disabled", "Quiescent", "Enabled")


def voice_objects(root: str) -> list[VendorObject]:
    service = root + "Services.VoiceService."
    profile = service + "1.VoiceProfile.1."
    return [
        VendorObject(service, multi=True),
        VendorObject(service + "1."),
        VendorObject(service + "1.VoiceProfile.", writable=True, multi=True),
        VendorObject(profile),
        VendorObject(profile + "SIP."),
        VendorObject(profile + "RTP."),
        VendorObject(profile + "NumberingPlan."),
        VendorObject(profile + "Line.", writable=True, multi=True),
        VendorObject(profile + "Line.1.SIP.", in_new_instances=True),
    ]


def voice_params(root: str) -> list[tuple[ParamDef, str]]:
    service = root + "Services.VoiceService."
    profile = service + "1.VoiceProfile.1."
    line = profile + "Line.1."  # names the generic Line.{i}. (no factory instance)
    return [
        vendor(root + "Services.VoiceServiceNumberOfEntries", "unsignedInt", "1"),
        vendor(service + "1.VoiceProfileNumberOfEntries", "unsignedInt", "1"),
        (ParamDef(profile + "Enable", "string", True, enumeration=LINE_ENABLE), "Enabled"),
        (ParamDef(profile + "Name", "string", True, max_length=64), "VoIP"),
        vendor(profile + "SignalingProtocol", "string", "SIP", True),
        vendor(profile + "MaxSessions", "unsignedInt", "2", True),
        vendor(profile + "NumberOfLines", "unsignedInt", "0"),
        (ParamDef(profile + "DTMFMethod", "string", True, enumeration=("InBand", "RFC2833", "SIPInfo")), "RFC2833"),
        (ParamDef(profile + "Region", "string", True, max_length=2), ""),
        (ParamDef(profile + "SIP.ProxyServer", "string", True, max_length=256), ""),
        vendor(profile + "SIP.ProxyServerPort", "unsignedInt", "5060", True),
        (ParamDef(profile + "SIP.RegistrarServer", "string", True, max_length=256), ""),
        vendor(profile + "SIP.RegistrarServerPort", "unsignedInt", "5060", True),
        (ParamDef(profile + "SIP.UserAgentDomain", "string", True, max_length=256), ""),
        vendor(profile + "SIP.RegisterExpires", "unsignedInt", "3600", True),
        vendor(profile + "RTP.LocalPortMin", "unsignedInt", "50000", True),
        vendor(profile + "RTP.LocalPortMax", "unsignedInt", "50999", True),
        vendor(profile + "NumberingPlan.InterDigitTimerStd", "unsignedInt", "5000", True),
        (ParamDef(line + "Enable", "string", True, enumeration=LINE_ENABLE), "Disabled"),
        (ParamDef(line + "DirectoryNumber", "string", True, max_length=32), ""),
        (ParamDef(line + "Status", "string", False), "Disabled"),
        (ParamDef(line + "CallState", "string", False), "Idle"),
        (ParamDef(line + "PhyReferenceList", "string", True, max_length=32), ""),
        (ParamDef(line + "SIP.AuthUserName", "string", True, max_length=128), ""),
        (ParamDef(line + "SIP.AuthPassword", "string", True, max_length=128), ""),
        (ParamDef(line + "SIP.URI", "string", True, max_length=389), ""),
    ]


def voice_dynamic(root: str) -> dict[str, str]:
    profile = root + "Services.VoiceService.1.VoiceProfile.1."
    return {profile + "NumberOfLines": "count:" + profile + "Line."}


TR098_SELECTION: list[tuple[str, int]] = [
    (IGD, 0),
    (IGD + "DeviceInfo.", 0),
    (IGD + "ManagementServer.", 0),
    (IGD + "Time.", 0),
    (IGD + "Layer3Forwarding.", 0),
    (IGD + "Layer3Forwarding.Forwarding.{i}.", 0),
    (IGD + "LANConfigSecurity.", 0),
    (IGD + "IPPingDiagnostics.", 0),
    (IGD + "TraceRouteDiagnostics.", 0),
    (IGD + "TraceRouteDiagnostics.RouteHops.{i}.", 0),
    (IGD + "DownloadDiagnostics.", 0),
    (IGD + "UploadDiagnostics.", 0),
    (IGD + "Services.", 0),
    (IGD + "LANDevice.{i}.", 1),
    (IGD + "LANDevice.{i}.LANHostConfigManagement.", 0),
    (IGD + "LANDevice.{i}.LANHostConfigManagement.IPInterface.{i}.", 1),
    (IGD + "LANDevice.{i}.LANEthernetInterfaceConfig.{i}.", 4),
    (IGD + "LANDevice.{i}.LANEthernetInterfaceConfig.{i}.Stats.", 0),
    (IGD + "LANDevice.{i}.WLANConfiguration.{i}.", 2),
    (IGD + "LANDevice.{i}.WLANConfiguration.{i}.AssociatedDevice.{i}.", 0),
    (LAN + "WLANConfiguration.1.AssociatedDevice.{i}.", 2),
    (IGD + "LANDevice.{i}.Hosts.", 0),
    (IGD + "LANDevice.{i}.Hosts.Host.{i}.", 2),
    (IGD + "WANDevice.{i}.", 1),
    (IGD + "WANDevice.{i}.WANCommonInterfaceConfig.", 0),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.", 2),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.", 0),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.", 0),
    (IGD + "WANDevice.1.WANConnectionDevice.1.WANIPConnection.{i}.", 1),
    (IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection.{i}.", 1),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.PortMapping.{i}.", 0),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.Stats.", 0),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.PortMapping.{i}.", 0),
    (IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.Stats.", 0),
]

TR098_DYNAMIC: dict[str, str] = {
    IGD + "DeviceInfo.ManufacturerOUI": "oui",
    IGD + "DeviceInfo.SerialNumber": "serial",
    IGD + "DeviceInfo.SoftwareVersion": "software_version",
    IGD + "DeviceInfo.UpTime": "uptime",
    IGD + "ManagementServer.URL": "acs_url",
    IGD + "ManagementServer.Username": "acs_username",
    IGD + "ManagementServer.Password": "acs_password",
    IGD + "ManagementServer.PeriodicInformInterval": "periodic_interval",
    IGD + "ManagementServer.ConnectionRequestURL": "cr_url",
    IGD + "ManagementServer.ConnectionRequestUsername": "cr_username",
    IGD + "ManagementServer.ConnectionRequestPassword": "cr_password",
    IGD + "Time.CurrentLocalTime": "current_time",
    MGMT_IP + "ExternalIPAddress": "mgmt_ip",
    MGMT_IP + "MACAddress": "mac:1",
    MGMT_IP + "Uptime": "uptime",
    NET_PPP + "ExternalIPAddress": "wan_ip",
    NET_PPP + "MACAddress": "mac:2",
    NET_PPP + "Username": "ppp_username",
    NET_PPP + "Uptime": "uptime",
    WAN + "WANCommonInterfaceConfig.TotalBytesSent": "counter:40000",
    WAN + "WANCommonInterfaceConfig.TotalBytesReceived": "counter:400000",
    WAN + "WANCommonInterfaceConfig.TotalPacketsSent": "counter:60",
    WAN + "WANCommonInterfaceConfig.TotalPacketsReceived": "counter:350",
    LAN + "WLANConfiguration.1.BSSID": "mac:3",
    LAN + "WLANConfiguration.1.SSID": "ssid:1",
    LAN + "WLANConfiguration.1.TotalBytesSent": "counter:90000",
    LAN + "WLANConfiguration.1.TotalBytesReceived": "counter:12000",
    LAN + "WLANConfiguration.2.BSSID": "mac:4",
    LAN + "WLANConfiguration.2.SSID": "ssid:2",
    LAN + "Hosts.Host.1.MACAddress": "host_mac:1",
    LAN + "Hosts.Host.2.MACAddress": "host_mac:2",
}

# The slow-internet panel (issue 16 item 6) reads the Wi-Fi stations: TR-098 has no signal level in
# AssociatedDevice, so gateways add one of their own (a vendor parameter); the simulator names its own.
WLAN1 = LAN + "WLANConfiguration.1."
TR098_STATIONS: list[tuple[ParamDef, str]] = [
    vendor(WLAN1 + f"AssociatedDevice.{n}.X_ACSSIM_SignalStrength", "int", "-60") for n in (1, 2)
]
TR098_STATIONS_DYNAMIC: dict[str, str] = {
    WLAN1 + "AssociatedDevice.1.AssociatedDeviceMACAddress": "host_mac:2",  # Hosts.Host.2 is on Wi-Fi
    WLAN1 + "AssociatedDevice.2.AssociatedDeviceMACAddress": "host_mac:3",
    WLAN1 + "AssociatedDevice.1.X_ACSSIM_SignalStrength": "signal:1",
    WLAN1 + "AssociatedDevice.2.X_ACSSIM_SignalStrength": "signal:2",
    WLAN1 + "TotalAssociations": "count:" + WLAN1 + "AssociatedDevice.",
    LAN + "LANEthernetInterfaceConfig.1.Stats.BytesSent": "counter:300000",
    LAN + "LANEthernetInterfaceConfig.1.Stats.BytesReceived": "counter:35000",
}

TR098_VALUES: dict[str, str] = {
    IGD + "DeviceInfo.SpecVersion": "1.0",
    IGD + "DeviceInfo.ProvisioningCode": "",
    IGD + "ManagementServer.EnableCWMP": "true",
    IGD + "ManagementServer.PeriodicInformEnable": "true",
    IGD + "Time.NTPServer1": "pool.ntp.org",
    IGD + "Time.Status": "Synchronized",
    IGD + "Time.LocalTimeZoneName": "UTC",
    IGD + "Layer3Forwarding.DefaultConnectionService": NET_PPP.rstrip("."),
    IGD + "IPPingDiagnostics.NumberOfRepetitions": "3",
    IGD + "IPPingDiagnostics.Timeout": "1000",
    IGD + "IPPingDiagnostics.DataBlockSize": "56",
    IGD + "TraceRouteDiagnostics.NumberOfTries": "3",
    IGD + "TraceRouteDiagnostics.Timeout": "5000",
    IGD + "TraceRouteDiagnostics.DataBlockSize": "38",
    IGD + "TraceRouteDiagnostics.MaxHopCount": "30",
    IGD + "LANDevice.{i}.LANHostConfigManagement.DHCPServerEnable": "true",
    IGD + "LANDevice.{i}.LANHostConfigManagement.MinAddress": "192.168.100.2",
    IGD + "LANDevice.{i}.LANHostConfigManagement.MaxAddress": "192.168.100.254",
    IGD + "LANDevice.{i}.LANHostConfigManagement.SubnetMask": "255.255.255.0",
    IGD + "LANDevice.{i}.LANHostConfigManagement.DNSServers": "192.168.100.1",
    IGD + "LANDevice.{i}.LANHostConfigManagement.IPRouters": "192.168.100.1",
    IGD + "LANDevice.{i}.LANHostConfigManagement.DHCPLeaseTime": "86400",
    IGD + "LANDevice.{i}.LANHostConfigManagement.IPInterface.{i}.IPInterfaceIPAddress": "192.168.100.1",
    IGD + "LANDevice.{i}.LANHostConfigManagement.IPInterface.{i}.IPInterfaceSubnetMask": "255.255.255.0",
    IGD + "LANDevice.{i}.LANEthernetInterfaceConfig.{i}.MaxBitRate": "Auto",
    IGD + "LANDevice.{i}.LANEthernetInterfaceConfig.{i}.DuplexMode": "Auto",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.Channel": "6",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.Standard": "n",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.BeaconType": "11i",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.IEEE11iEncryptionModes": "AESEncryption",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.IEEE11iAuthenticationMode": "PSKAuthentication",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.PossibleChannels": "1-13",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.RadioEnabled": "true",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.SSIDAdvertisementEnabled": "true",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.TransmitPower": "100",
    IGD + "LANDevice.{i}.WLANConfiguration.{i}.RegulatoryDomain": "EU ",
    IGD + "LANDevice.{i}.Hosts.Host.{i}.AddressSource": "DHCP",
    IGD + "LANDevice.{i}.Hosts.Host.{i}.InterfaceType": "Ethernet",
    IGD + "LANDevice.{i}.Hosts.Host.{i}.Active": "true",
    IGD + "LANDevice.{i}.Hosts.Host.{i}.LeaseTimeRemaining": "80000",
    LAN + "Hosts.Host.1.IPAddress": "192.168.100.2",
    LAN + "Hosts.Host.1.HostName": "android-4f2a",
    LAN + "Hosts.Host.2.IPAddress": "192.168.100.3",
    LAN + "Hosts.Host.2.HostName": "DESKTOP-7QK2M1",
    LAN + "Hosts.Host.2.InterfaceType": "802.11",
    WLAN1 + "AssociatedDevice.1.AssociatedDeviceIPAddress": "192.168.100.3",
    WLAN1 + "AssociatedDevice.2.AssociatedDeviceIPAddress": "192.168.100.4",
    WLAN1 + "AssociatedDevice.{i}.AssociatedDeviceAuthenticationState": "true",
    LAN + "WLANConfiguration.2.Enable": "false",
    LAN + "WLANConfiguration.2.Status": "Disabled",
    IGD + "WANDevice.{i}.WANCommonInterfaceConfig.WANAccessType": "Ethernet",
    IGD + "WANDevice.{i}.WANCommonInterfaceConfig.PhysicalLinkStatus": "Up",
    IGD + "WANDevice.{i}.WANCommonInterfaceConfig.Layer1UpstreamMaxBitRate": "1244000000",
    IGD + "WANDevice.{i}.WANCommonInterfaceConfig.Layer1DownstreamMaxBitRate": "2488000000",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.AddressingType": "DHCP",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.SubnetMask": "255.255.0.0",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.DefaultGateway": "10.64.0.1",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.DNSServers": "10.64.0.1",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.MaxMTUSize": "1500",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.NATEnabled": "false",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.DefaultGateway": "100.64.0.1",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.DNSServers": "8.8.8.8,1.1.1.1",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.MaxMRUSize": "1492",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.NATEnabled": "true",
    IGD + "WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.TransportType": "PPPoE",
    MGMT_IP + "Name": "1_TR069_R_VID_46",
    NET_PPP + "Name": "2_INTERNET_R_VID_10",
}

TR098_DIAGNOSTICS: dict[str, str] = {
    IGD + "IPPingDiagnostics.": "ping",
    IGD + "TraceRouteDiagnostics.": "traceroute",
    IGD + "DownloadDiagnostics.": "download",
    IGD + "UploadDiagnostics.": "upload",
}

TR098_INFORM: tuple[str, ...] = (
    IGD + "DeviceSummary",
    IGD + "DeviceInfo.SpecVersion",
    IGD + "DeviceInfo.HardwareVersion",
    IGD + "DeviceInfo.SoftwareVersion",
    IGD + "DeviceInfo.ProvisioningCode",
    IGD + "ManagementServer.ConnectionRequestURL",
    IGD + "ManagementServer.ParameterKey",
    MGMT_IP + "ExternalIPAddress",
)

GPON_HW = WAN + "X_GponInterafceConfig."  # sic: Huawei firmware spells it "Interafce"

HUAWEI = ProfileSpec(
    name="huawei-hg8245",
    description="Huawei EchoLife HG8245H GPON ONT (TR-098), X_HUAWEI_ vendor parameters",
    data_model="TR-098 1.8 (InternetGatewayDevice:1.14) + Huawei vendor extensions",
    model_key="tr-098",
    root=IGD,
    identity={
        "manufacturer": "Huawei Technologies Co., Ltd",
        "ouis": ["00E0FC", "4C1FCC", "00259E", "48FD8E"],
        "product_class": "HG8245H",
        "model_name": "HG8245H",
        "hardware_version": "20A5.A",
        "software_versions": ["V3R017C10S115", "V3R017C10S120", "V3R017C10S125"],
        "bad_firmware": "V3R017C10S120",
        "serial_format": "48575443{:08X}",
        "ssid_prefix": "HUAWEI-",
        "user_agent": "HW_WAP_CWMP_V02",
    },
    roles={
        "rx_power": GPON_HW + "RXPower",
        "rx_power_unit": "dBm (decimal string)",
        "tx_power": GPON_HW + "TXPower",
        "temperature": GPON_HW + "TransceiverTemperature",
        "bias_current": GPON_HW + "BiasCurrent",
        "pon_state": GPON_HW + "X_HUAWEI_GponState",
        "olt_id": GPON_HW + "X_HUAWEI_OLT_ID",
        "pon_port": GPON_HW + "X_HUAWEI_PONPort",
        "wan_ip": NET_PPP + "ExternalIPAddress",
    },
    selection=TR098_SELECTION,
    values={
        **TR098_VALUES,
        IGD + "DeviceSummary": "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, WiFiLAN:1, Time:1, IPPing:1)",
        IGD + "DeviceInfo.Manufacturer": "Huawei Technologies Co., Ltd",
        IGD + "DeviceInfo.ModelName": "HG8245H",
        IGD + "DeviceInfo.Description": "EchoLife HG8245H GPON Terminal",
        IGD + "DeviceInfo.ProductClass": "HG8245H",
        IGD + "DeviceInfo.HardwareVersion": "20A5.A",
        IGD + "DeviceInfo.AdditionalSoftwareVersion": "ONT main software",
    },
    vendor_objects=[VendorObject(GPON_HW), *voice_objects(IGD)],
    vendor_params=[
        vendor(GPON_HW + "Status", "string", "Up"),
        vendor(GPON_HW + "LinkStatus", "string", "Up"),
        vendor(GPON_HW + "RXPower", "string", "-18.00"),
        vendor(GPON_HW + "TXPower", "string", "2.20"),
        vendor(GPON_HW + "TransceiverTemperature", "int", "45"),
        vendor(GPON_HW + "SupplyVoltage", "unsignedInt", "3280"),
        vendor(GPON_HW + "BiasCurrent", "unsignedInt", "12"),
        vendor(GPON_HW + "X_HUAWEI_GponState", "string", "O5"),
        vendor(GPON_HW + "X_HUAWEI_OLT_ID", "string", ""),
        vendor(GPON_HW + "X_HUAWEI_PONPort", "string", ""),
        vendor(GPON_HW + "X_HUAWEI_ONTID", "unsignedInt", "0"),
        vendor(IGD + "DeviceInfo.X_HUAWEI_CpuUsed", "unsignedInt", "7"),
        vendor(IGD + "DeviceInfo.X_HUAWEI_MemUsed", "unsignedInt", "41"),
        # Issue 14: the Internet service's VLAN, set with the subscriber's PPPoE account (0 from the factory).
        vendor(NET_PPP + "X_HW_VLAN", "unsignedInt", "0", True),
        *TR098_STATIONS,
        *voice_params(IGD),  # X_HUAWEI_ voice extensions come from the dump
    ],
    dynamic={
        **TR098_DYNAMIC,
        **TR098_STATIONS_DYNAMIC,
        GPON_HW + "RXPower": "rx_dbm",
        GPON_HW + "TXPower": "tx_dbm",
        GPON_HW + "TransceiverTemperature": "temperature",
        GPON_HW + "BiasCurrent": "bias_ma",
        GPON_HW + "X_HUAWEI_OLT_ID": "olt_id",
        GPON_HW + "X_HUAWEI_PONPort": "pon_port",
        GPON_HW + "X_HUAWEI_ONTID": "ont_id",
        **voice_dynamic(IGD),
    },
    inform_parameters=TR098_INFORM,
    diagnostics=TR098_DIAGNOSTICS,
    use_huawei_dump=True,
)

PON_ZTE = WAN + "X_ZTE-COM_WANPONInterfaceConfig."

ZTE = ProfileSpec(
    name="zte-f660",
    description="ZTE ZXHN F660 GPON ONT (TR-098), X_ZTE-COM_ vendor parameters",
    data_model="TR-098 1.8 (InternetGatewayDevice:1.14) + ZTE vendor extensions",
    model_key="tr-098",
    root=IGD,
    identity={
        "manufacturer": "ZTE",
        "ouis": ["0019C6", "0015EB", "344B50"],
        "product_class": "F660",
        "model_name": "ZXHN F660",
        "hardware_version": "V6.0",
        "software_versions": ["V6.0.10P2T2", "V6.0.10P3N5", "V6.0.10P6N7"],
        "bad_firmware": "V6.0.10P3N5",
        "serial_format": "ZTEG{:08X}",
        "ssid_prefix": "ZTE-",
        "user_agent": "ZTE-CWMP/2.0",
    },
    roles={
        "rx_power": PON_ZTE + "RXPower",
        "rx_power_unit": "dBm/1000 (int, like TR-181 Dbm1000)",
        "tx_power": PON_ZTE + "TXPower",
        "temperature": PON_ZTE + "Temperature",
        "bias_current": PON_ZTE + "BiasCurrent",
        "pon_state": PON_ZTE + "Status",
        "olt_id": PON_ZTE + "X_ZTE-COM_OLTID",
        "pon_port": PON_ZTE + "X_ZTE-COM_PONPort",
        "wan_ip": NET_PPP + "ExternalIPAddress",
    },
    selection=TR098_SELECTION,
    values={
        **TR098_VALUES,
        IGD + "DeviceSummary": "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, WiFiLAN:1, Time:1, IPPing:1)",
        IGD + "DeviceInfo.Manufacturer": "ZTE",
        IGD + "DeviceInfo.ModelName": "ZXHN F660",
        IGD + "DeviceInfo.Description": "GPON ONT ZXHN F660",
        IGD + "DeviceInfo.ProductClass": "F660",
        IGD + "DeviceInfo.HardwareVersion": "V6.0",
        IGD + "LANDevice.{i}.LANHostConfigManagement.MinAddress": "192.168.1.2",
        IGD + "LANDevice.{i}.LANHostConfigManagement.MaxAddress": "192.168.1.254",
        IGD + "LANDevice.{i}.LANHostConfigManagement.DNSServers": "192.168.1.1",
        IGD + "LANDevice.{i}.LANHostConfigManagement.IPRouters": "192.168.1.1",
        IGD + "LANDevice.{i}.LANHostConfigManagement.IPInterface.{i}.IPInterfaceIPAddress": "192.168.1.1",
        LAN + "Hosts.Host.1.IPAddress": "192.168.1.2",
        LAN + "Hosts.Host.2.IPAddress": "192.168.1.3",
    },
    vendor_objects=[VendorObject(PON_ZTE), *voice_objects(IGD)],
    vendor_params=[
        vendor(PON_ZTE + "Status", "string", "Up"),
        vendor(PON_ZTE + "RXPower", "int", "-18000"),
        vendor(PON_ZTE + "TXPower", "int", "2200"),
        vendor(PON_ZTE + "Temperature", "int", "45"),
        vendor(PON_ZTE + "Voltage", "unsignedInt", "3300"),
        vendor(PON_ZTE + "BiasCurrent", "unsignedInt", "12000"),
        vendor(PON_ZTE + "X_ZTE-COM_OLTID", "string", ""),
        vendor(PON_ZTE + "X_ZTE-COM_PONPort", "string", ""),
        vendor(PON_ZTE + "X_ZTE-COM_ONUID", "unsignedInt", "0"),
        vendor(IGD + "DeviceInfo.X_ZTE-COM_CPUUsage", "unsignedInt", "9"),
        vendor(IGD + "DeviceInfo.X_ZTE-COM_MemoryUsage", "unsignedInt", "38"),
        vendor(IGD + "ManagementServer.X_ZTE-COM_ConnectionRequestPort", "unsignedInt", "58000", True),
        vendor(NET_PPP + "X_ZTE-COM_VLANID", "unsignedInt", "0", True),  # issue 14: the Internet VLAN
        *TR098_STATIONS,
        *voice_params(IGD),  # standard TR-104 only: no ZTE dump to take voice extensions from
    ],
    dynamic={
        **TR098_DYNAMIC,
        **TR098_STATIONS_DYNAMIC,
        PON_ZTE + "RXPower": "rx_dbm1000",
        PON_ZTE + "TXPower": "tx_dbm1000",
        PON_ZTE + "Temperature": "temperature",
        PON_ZTE + "BiasCurrent": "bias_ua",
        PON_ZTE + "X_ZTE-COM_OLTID": "olt_id",
        PON_ZTE + "X_ZTE-COM_PONPort": "pon_port",
        PON_ZTE + "X_ZTE-COM_ONUID": "ont_id",
        **voice_dynamic(IGD),
    },
    inform_parameters=TR098_INFORM,
    diagnostics=TR098_DIAGNOSTICS,
)

DEV = "Device."
OPT = DEV + "Optical.Interface.1."

TR181 = ProfileSpec(
    name="tr181-gateway",
    description="Generic TR-181 (Device:2) fibre home gateway with an optical WAN interface",
    data_model="TR-181 2.17 (Device:2.17)",
    model_key="tr-181",
    root=DEV,
    identity={
        "manufacturer": "ACS-Sim Networks",
        "ouis": ["0C1A2B", "5C3E4F"],
        "product_class": "HGW-181",
        "model_name": "HGW-181 Fibre",
        "hardware_version": "HGW181-R2",
        "software_versions": ["2.4.1", "2.5.0", "2.5.3"],
        "bad_firmware": "2.5.0",
        "serial_format": "SIM{:09d}",
        "ssid_prefix": "HGW-",
        "user_agent": "acs-sim-tr181/1.0",
    },
    roles={
        "rx_power": OPT + "OpticalSignalLevel",
        "rx_power_unit": "dBm/1000 (Dbm1000)",
        "tx_power": OPT + "TransmitOpticalLevel",
        "temperature": DEV + "DeviceInfo.TemperatureStatus.TemperatureSensor.1.Value",
        "pon_state": OPT + "Status",
        "olt_id": OPT + "X_ACSSIM_OLTID",
        "pon_port": OPT + "X_ACSSIM_PONPort",
        "wan_ip": DEV + "IP.Interface.1.IPv4Address.1.IPAddress",
    },
    selection=[
        (DEV, 0),
        (DEV + "DeviceInfo.", 0),
        (DEV + "DeviceInfo.MemoryStatus.", 0),
        (DEV + "DeviceInfo.ProcessStatus.", 0),
        (DEV + "DeviceInfo.TemperatureStatus.", 0),
        (DEV + "DeviceInfo.TemperatureStatus.TemperatureSensor.{i}.", 1),
        (DEV + "ManagementServer.", 0),
        (DEV + "Time.", 0),
        (DEV + "Optical.", 0),
        (DEV + "Optical.Interface.{i}.", 1),
        (DEV + "Optical.Interface.{i}.Stats.", 0),
        (DEV + "Ethernet.", 0),
        (DEV + "Ethernet.Interface.{i}.", 4),
        (DEV + "Ethernet.Interface.{i}.Stats.", 0),
        (DEV + "Ethernet.VLANTermination.{i}.", 1),  # issue 14: the Internet service's VLAN
        (DEV + "PPP.", 0),
        (DEV + "PPP.Interface.{i}.", 1),
        (DEV + "PPP.Interface.{i}.PPPoE.", 0),
        (DEV + "PPP.Interface.{i}.Stats.", 0),
        (DEV + "IP.", 0),
        (DEV + "IP.Interface.{i}.", 2),
        (DEV + "IP.Interface.{i}.IPv4Address.{i}.", 1),
        (DEV + "IP.Interface.{i}.Stats.", 0),
        (DEV + "IP.Diagnostics.", 0),
        (DEV + "IP.Diagnostics.IPPing.", 0),
        (DEV + "IP.Diagnostics.TraceRoute.", 0),
        (DEV + "IP.Diagnostics.TraceRoute.RouteHops.{i}.", 0),
        (DEV + "IP.Diagnostics.DownloadDiagnostics.", 0),
        (DEV + "IP.Diagnostics.UploadDiagnostics.", 0),
        (DEV + "WiFi.", 0),
        (DEV + "WiFi.Radio.{i}.", 2),
        (DEV + "WiFi.SSID.{i}.", 2),
        (DEV + "WiFi.AccessPoint.{i}.", 2),
        (DEV + "WiFi.AccessPoint.{i}.Security.", 0),
        (DEV + "WiFi.AccessPoint.{i}.AssociatedDevice.{i}.", 0),
        (DEV + "WiFi.AccessPoint.1.AssociatedDevice.{i}.", 2),
        (DEV + "Hosts.", 0),
        (DEV + "Hosts.Host.{i}.", 2),
        (DEV + "DHCPv4.", 0),
        (DEV + "DHCPv4.Server.", 0),
        (DEV + "DHCPv4.Server.Pool.{i}.", 1),
        (DEV + "NAT.", 0),
        (DEV + "NAT.PortMapping.{i}.", 0),
        (DEV + "Services.", 0),
    ],
    values={
        DEV + "RootDataModelVersion": "2.17",
        DEV + "DeviceInfo.Manufacturer": "ACS-Sim Networks",
        DEV + "DeviceInfo.ModelName": "HGW-181 Fibre",
        DEV + "DeviceInfo.Description": "TR-181 fibre home gateway (simulated)",
        DEV + "DeviceInfo.ProductClass": "HGW-181",
        DEV + "DeviceInfo.HardwareVersion": "HGW181-R2",
        DEV + "DeviceInfo.MemoryStatus.Total": "262144",
        DEV + "DeviceInfo.MemoryStatus.Free": "151000",
        DEV + "DeviceInfo.ProcessStatus.CPUUsage": "6",
        DEV + "DeviceInfo.TemperatureStatus.TemperatureSensor.{i}.Name": "SoC",
        DEV + "DeviceInfo.TemperatureStatus.TemperatureSensor.{i}.Status": "Enabled",
        DEV + "ManagementServer.EnableCWMP": "true",
        DEV + "ManagementServer.PeriodicInformEnable": "true",
        DEV + "Time.Enable": "true",
        DEV + "Time.Status": "Synchronized",
        DEV + "Time.NTPServer1": "pool.ntp.org",
        DEV + "Time.LocalTimeZone": "UTC0",
        OPT + "Name": "veip0",
        OPT + "Upstream": "true",
        DEV + "Ethernet.Interface.{i}.Upstream": "false",
        DEV + "Ethernet.Interface.{i}.MaxBitRate": "1000",
        DEV + "PPP.Interface.{i}.Name": "ppp0",
        DEV + "PPP.Interface.{i}.ConnectionStatus": "Connected",
        DEV + "PPP.Interface.{i}.LowerLayers": "Device.Optical.Interface.1",
        DEV + "IP.Interface.1.Name": "wan",
        DEV + "IP.Interface.1.LowerLayers": "Device.PPP.Interface.1",
        DEV + "IP.Interface.2.Name": "br-lan",
        DEV + "IP.Interface.2.IPv4Address.1.IPAddress": "192.168.1.1",
        DEV + "IP.Interface.2.IPv4Address.1.SubnetMask": "255.255.255.0",
        DEV + "IP.Interface.{i}.IPv4Address.{i}.AddressingType": "Static",
        DEV + "IP.Diagnostics.IPPing.NumberOfRepetitions": "3",
        DEV + "IP.Diagnostics.IPPing.Timeout": "1000",
        DEV + "IP.Diagnostics.IPPing.DataBlockSize": "56",
        DEV + "IP.Diagnostics.TraceRoute.NumberOfTries": "3",
        DEV + "IP.Diagnostics.TraceRoute.Timeout": "5000",
        DEV + "IP.Diagnostics.TraceRoute.DataBlockSize": "38",
        DEV + "IP.Diagnostics.TraceRoute.MaxHopCount": "30",
        DEV + "WiFi.Radio.1.OperatingFrequencyBand": "2.4GHz",
        DEV + "WiFi.Radio.1.Channel": "6",
        DEV + "WiFi.Radio.2.OperatingFrequencyBand": "5GHz",
        DEV + "WiFi.Radio.2.Channel": "36",
        DEV + "WiFi.SSID.1.LowerLayers": "Device.WiFi.Radio.1",
        DEV + "WiFi.SSID.2.LowerLayers": "Device.WiFi.Radio.2",
        DEV + "WiFi.AccessPoint.1.SSIDReference": "Device.WiFi.SSID.1",
        DEV + "WiFi.AccessPoint.2.SSIDReference": "Device.WiFi.SSID.2",
        DEV + "WiFi.AccessPoint.{i}.SSIDAdvertisementEnabled": "true",
        DEV + "Hosts.Host.{i}.Active": "true",
        DEV + "Hosts.Host.1.IPAddress": "192.168.1.20",
        DEV + "Hosts.Host.1.HostName": "iPhone",
        DEV + "Hosts.Host.2.IPAddress": "192.168.1.21",
        DEV + "Hosts.Host.2.HostName": "smart-tv",
        DEV + "DHCPv4.Server.Enable": "true",
        DEV + "DHCPv4.Server.Pool.{i}.MinAddress": "192.168.1.20",
        DEV + "DHCPv4.Server.Pool.{i}.MaxAddress": "192.168.1.250",
        DEV + "DHCPv4.Server.Pool.{i}.SubnetMask": "255.255.255.0",
        DEV + "DHCPv4.Server.Pool.{i}.Interface": "Device.IP.Interface.2",
    },
    vendor_params=[
        vendor(OPT + "X_ACSSIM_OLTID", "string", ""),
        vendor(OPT + "X_ACSSIM_PONPort", "string", ""),
        vendor(OPT + "X_ACSSIM_ONUID", "unsignedInt", "0"),
        vendor(OPT + "X_ACSSIM_BiasCurrent", "unsignedInt", "12000"),
        *voice_params(DEV),
    ],
    vendor_objects=voice_objects(DEV),
    dynamic={
        DEV + "DeviceInfo.ManufacturerOUI": "oui",
        DEV + "DeviceInfo.SerialNumber": "serial",
        DEV + "DeviceInfo.SoftwareVersion": "software_version",
        DEV + "DeviceInfo.UpTime": "uptime",
        DEV + "DeviceInfo.TemperatureStatus.TemperatureSensor.1.Value": "temperature",
        DEV + "ManagementServer.URL": "acs_url",
        DEV + "ManagementServer.Username": "acs_username",
        DEV + "ManagementServer.Password": "acs_password",
        DEV + "ManagementServer.PeriodicInformInterval": "periodic_interval",
        DEV + "ManagementServer.ConnectionRequestURL": "cr_url",
        DEV + "ManagementServer.ConnectionRequestUsername": "cr_username",
        DEV + "ManagementServer.ConnectionRequestPassword": "cr_password",
        DEV + "Time.CurrentLocalTime": "current_time",
        OPT + "OpticalSignalLevel": "rx_dbm1000",
        OPT + "TransmitOpticalLevel": "tx_dbm1000",
        OPT + "X_ACSSIM_OLTID": "olt_id",
        OPT + "X_ACSSIM_PONPort": "pon_port",
        OPT + "X_ACSSIM_ONUID": "ont_id",
        OPT + "X_ACSSIM_BiasCurrent": "bias_ua",
        OPT + "Stats.BytesSent": "counter:40000",
        OPT + "Stats.BytesReceived": "counter:400000",
        DEV + "PPP.Interface.1.Username": "ppp_username",
        DEV + "IP.Interface.1.IPv4Address.1.IPAddress": "wan_ip",
        DEV + "Ethernet.Interface.1.MACAddress": "mac:1",
        DEV + "Ethernet.Interface.2.MACAddress": "mac:2",
        DEV + "Ethernet.Interface.3.MACAddress": "mac:3",
        DEV + "Ethernet.Interface.4.MACAddress": "mac:4",
        DEV + "WiFi.SSID.1.SSID": "ssid:1",
        DEV + "WiFi.SSID.2.SSID": "ssid:2",
        DEV + "WiFi.SSID.1.BSSID": "mac:5",
        DEV + "WiFi.SSID.2.BSSID": "mac:6",
        DEV + "Hosts.Host.1.PhysAddress": "host_mac:1",
        DEV + "Hosts.Host.2.PhysAddress": "host_mac:2",
        DEV + "PPP.Interface.1.LastChange": "uptime",  # the link came up with the box
        DEV + "PPP.Interface.1.Stats.BytesSent": "counter:40000",
        DEV + "PPP.Interface.1.Stats.BytesReceived": "counter:400000",
        DEV + "PPP.Interface.1.Stats.PacketsSent": "counter:60",
        DEV + "PPP.Interface.1.Stats.PacketsReceived": "counter:350",
        DEV + "Ethernet.Interface.2.Stats.BytesSent": "counter:300000",
        DEV + "Ethernet.Interface.2.Stats.BytesReceived": "counter:35000",
        DEV + "WiFi.AccessPoint.1.AssociatedDevice.1.MACAddress": "host_mac:2",
        DEV + "WiFi.AccessPoint.1.AssociatedDevice.2.MACAddress": "host_mac:3",
        DEV + "WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength": "signal:1",
        DEV + "WiFi.AccessPoint.1.AssociatedDevice.2.SignalStrength": "signal:2",
        **voice_dynamic(DEV),
    },
    inform_parameters=(
        DEV + "RootDataModelVersion",
        DEV + "DeviceInfo.HardwareVersion",
        DEV + "DeviceInfo.SoftwareVersion",
        DEV + "DeviceInfo.ProvisioningCode",
        DEV + "ManagementServer.ParameterKey",
        DEV + "ManagementServer.ConnectionRequestURL",
        DEV + "IP.Interface.1.IPv4Address.1.IPAddress",
    ),
    diagnostics={
        DEV + "IP.Diagnostics.IPPing.": "ping",
        DEV + "IP.Diagnostics.TraceRoute.": "traceroute",
        DEV + "IP.Diagnostics.DownloadDiagnostics.": "download",
        DEV + "IP.Diagnostics.UploadDiagnostics.": "upload",
    },
)

PROFILES: tuple[ProfileSpec, ...] = (HUAWEI, ZTE, TR181)
