"""Pure device behaviour: every RPC, every fault, events, value movement. No sockets."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from acs.sim import rpc
from acs.sim.device import SimDevice
from acs.sim.rpc import answer
from acs.sim.session import retry_after_seconds
from cwmp import (
    AddObject,
    AddObjectResponse,
    CancelTransfer,
    CwmpVersion,
    DeleteObject,
    DeleteObjectResponse,
    Download,
    DownloadResponse,
    FactoryReset,
    Fault,
    GetAllQueuedTransfers,
    GetAllQueuedTransfersResponse,
    GetParameterAttributes,
    GetParameterAttributesResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetQueuedTransfers,
    GetQueuedTransfersResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    ParameterValue,
    Reboot,
    ScheduleDownload,
    ScheduleInform,
    SetParameterAttributes,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
    TimeWindowStruct,
    Upload,
    UploadResponse,
)
from cwmp.models import CwmpModel
from tests.sim.conftest import T0, MakeDevice

IGD = "InternetGatewayDevice."
PPP_TABLE = IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection."


def ok(device: SimDevice, request: CwmpModel, now: float = T0 + 10) -> CwmpModel:
    response = answer(device, request, now)
    assert not isinstance(response, Fault), response
    return response


def fault_of(device: SimDevice, request: CwmpModel, now: float = T0 + 10) -> Fault:
    response = answer(device, request, now)
    assert isinstance(response, Fault), response
    return response


def values_of(device: SimDevice, *names: str, now: float = T0 + 10) -> dict[str, str]:
    response = ok(device, GetParameterValues(names=names), now)
    assert isinstance(response, GetParameterValuesResponse)
    return {p.name: p.value for p in response.parameters}


def spv(*pairs: tuple[str, str], key: str = "key-1") -> SetParameterValues:
    return SetParameterValues(parameters=tuple(ParameterValue(name=n, value=v) for n, v in pairs), parameter_key=key)


def session(device: SimDevice, now: float, *requests: CwmpModel) -> tuple[list[str], list[CwmpModel]]:
    """One whole session at `now`: the Inform's events and the answers to `requests`."""
    assert device.tick(now)
    inform = device.start_session(now)
    device.inform_accepted(now)
    answers = [answer(device, r, now) for r in requests]
    device.end_session(now, ok=True)
    return [e.event_code for e in inform.events], answers


def run_until_session(device: SimDevice, start: float, limit: float = 120.0) -> float:
    """Advance the clock second by second until the device wants a session; the time it does."""
    now = start
    while now < start + limit:
        if device.tick(now):
            return now
        now += 1.0
    raise AssertionError("the device never asked for a session")


# -- boot and events -------------------------------------------------------------------------------


def test_first_contact_is_bootstrap_then_boot_only_after_restart(new_device: MakeDevice) -> None:
    device: SimDevice = new_device()
    assert device.bootstrapped
    device.reboot(T0 + 5)
    when = run_until_session(device, T0 + 5)
    inform = device.start_session(when)
    assert [e.event_code for e in inform.events] == ["1 BOOT"]


def test_reboot_rpc_gives_m_reboot_and_boot_with_the_command_key(new_device: MakeDevice) -> None:
    device = new_device()
    device.add_event("6 CONNECTION REQUEST")
    device.want_session(T0 + 1)
    _events, answers = session(device, T0 + 1, Reboot(command_key="rb-1"))
    assert not isinstance(answers[0], Fault)
    assert not device.online  # rebooting
    when = run_until_session(device, T0 + 1)
    inform = device.start_session(when)
    assert [(e.event_code, e.command_key) for e in inform.events] == [("1 BOOT", ""), ("M Reboot", "rb-1")]
    assert int(inform.inform_parameter(IGD + "DeviceInfo.SoftwareVersion") is not None)
    assert values_of(device, IGD + "DeviceInfo.UpTime", now=when + 7)[IGD + "DeviceInfo.UpTime"] == "7"


def test_uptime_grows_and_reboot_resets_it(new_device: MakeDevice) -> None:
    device = new_device()
    uptime = IGD + "DeviceInfo.UpTime"
    assert values_of(device, uptime, now=T0 + 100)[uptime] == "100"
    assert values_of(device, uptime, now=T0 + 500)[uptime] == "500"
    device.reboot(T0 + 600)
    when = run_until_session(device, T0 + 600)
    assert values_of(device, uptime, now=when + 3)[uptime] == "3"


def test_periodic_inform_follows_the_interval_the_acs_sets(new_device: MakeDevice) -> None:
    device = new_device()
    assert device.next_due() == T0 + 300  # the fleet default until the ACS sets one
    _events, _ = session_with_event(device, T0 + 10, spv((IGD + "ManagementServer.PeriodicInformInterval", "60")))
    assert device.next_due() == T0 + 10 + 60
    assert run_until_session(device, T0 + 11) == T0 + 70
    inform = device.start_session(T0 + 70)
    assert [e.event_code for e in inform.events] == ["2 PERIODIC"]


def session_with_event(device: SimDevice, now: float, *requests: CwmpModel) -> tuple[list[str], list[CwmpModel]]:
    device.add_event("6 CONNECTION REQUEST")
    device.want_session(now)
    return session(device, now, *requests)


def test_connection_request_event_and_ignored_during_a_session(new_device: MakeDevice) -> None:
    device = new_device()
    assert device.connection_request(T0 + 5)
    device.tick(T0 + 5)
    inform = device.start_session(T0 + 5)
    assert [e.event_code for e in inform.events] == ["6 CONNECTION REQUEST"]
    device.inform_accepted(T0 + 5)
    assert device.connection_request(T0 + 6)  # answered...
    assert device.events == []  # ...but ignored: TR-069 3.2.2
    device.end_session(T0 + 7, ok=True)
    device.power_off()
    assert not device.connection_request(T0 + 8)


def test_failed_inform_keeps_events_and_retries_with_backoff(new_device: MakeDevice) -> None:
    device = new_device()
    device.connection_request(T0 + 1)
    device.tick(T0 + 1)
    device.start_session(T0 + 1)
    device.end_session(T0 + 2, ok=False)
    assert device.retry_count == 1
    due = device.next_due()
    assert due is not None and T0 + 2 + 5 <= due <= T0 + 2 + 10
    inform = device.start_session(due)
    assert inform.retry_count == 1 and [e.event_code for e in inform.events] == ["6 CONNECTION REQUEST"]


def test_retry_after_pushes_the_retry_later_never_sooner(new_device: MakeDevice) -> None:
    device = new_device()
    device.connection_request(T0 + 1)
    device.start_session(T0 + 1)
    device.end_session(T0 + 2, ok=False, retry_after=300.0)
    assert device.session_wanted_at == T0 + 2 + 300
    device.start_session(T0 + 302)
    device.end_session(T0 + 303, ok=False, retry_after=1.0)  # shorter than the back-off: ignored
    due = device.session_wanted_at
    assert due is not None and T0 + 303 + 10 <= due <= T0 + 303 + 20


def test_retry_after_header_values() -> None:
    assert retry_after_seconds("10", T0) == 10.0
    assert retry_after_seconds(" 0 ", T0) == 0.0
    assert retry_after_seconds(formatdate(T0 + 90, usegmt=True), T0) == 90.0
    assert retry_after_seconds(formatdate(T0 - 90, usegmt=True), T0) == 0.0
    assert retry_after_seconds(None, T0) is None
    assert retry_after_seconds("", T0) is None
    assert retry_after_seconds("-5", T0) is None
    assert retry_after_seconds("soon", T0) is None


# -- GetRPCMethods, names, values --------------------------------------------------------------------


def test_get_rpc_methods_depends_on_the_cwmp_version(new_device: MakeDevice) -> None:
    old = ok(new_device(cwmp_version="1.0"), GetRPCMethods())
    new = ok(new_device(cwmp_version="1.4"), GetRPCMethods())
    assert isinstance(old, GetRPCMethodsResponse) and isinstance(new, GetRPCMethodsResponse)
    assert "ScheduleDownload" not in old.methods and "ScheduleDownload" in new.methods
    assert fault_of(new_device(cwmp_version="1.0"), CancelTransfer(command_key="x")).fault_code == 9000


def test_get_parameter_names_next_level_and_full(new_device: MakeDevice) -> None:
    device = new_device()
    root = ok(device, GetParameterNames(parameter_path="", next_level=True))
    assert isinstance(root, GetParameterNamesResponse)
    assert [p.name for p in root.parameters] == [IGD]
    level = ok(device, GetParameterNames(parameter_path=IGD + "ManagementServer.", next_level=True))
    assert isinstance(level, GetParameterNamesResponse)
    writable = {p.name: p.writable for p in level.parameters}
    assert writable[IGD + "ManagementServer.PeriodicInformInterval"] is True
    assert writable[IGD + "ManagementServer.ParameterKey"] is False
    full = ok(device, GetParameterNames(parameter_path=IGD + "LANDevice.1.Hosts.", next_level=False))
    assert isinstance(full, GetParameterNamesResponse)
    names = [p.name for p in full.parameters]
    assert names[0] == IGD + "LANDevice.1.Hosts." and IGD + "LANDevice.1.Hosts.Host.2.MACAddress" in names


def test_get_parameter_names_faults(new_device: MakeDevice) -> None:
    device = new_device()
    assert fault_of(device, GetParameterNames(parameter_path=IGD + "Nope.", next_level=True)).fault_code == 9005
    path = IGD + "DeviceInfo.UpTime"
    assert fault_of(device, GetParameterNames(parameter_path=path, next_level=True)).fault_code == 9003


def test_get_parameter_values_partial_path_types_and_unknown_name(new_device: MakeDevice) -> None:
    device = new_device()
    response = ok(device, GetParameterValues(names=(IGD + "DeviceInfo.",)))
    assert isinstance(response, GetParameterValuesResponse)
    types = {p.name: p.type for p in response.parameters}
    assert types[IGD + "DeviceInfo.UpTime"] == "xsd:unsignedInt"
    assert values_of(device, IGD + "DeviceInfo.SerialNumber")[IGD + "DeviceInfo.SerialNumber"] == device.serial
    assert fault_of(device, GetParameterValues(names=(IGD + "DeviceInfo.Bogus",))).fault_code == 9005


def test_passwords_read_back_empty(new_device: MakeDevice) -> None:
    device = new_device()
    name = IGD + "ManagementServer.ConnectionRequestPassword"
    assert values_of(device, name)[name] == ""
    assert device.read(name, T0) != ""


# -- SetParameterValues ------------------------------------------------------------------------------


def test_set_parameter_values_changes_value_and_parameter_key(new_device: MakeDevice) -> None:
    device = new_device()
    ssid = IGD + "LANDevice.1.WLANConfiguration.1.SSID"
    response = ok(device, spv((ssid, "home"), (IGD + "ManagementServer.PeriodicInformEnable", "1"), key="k7"))
    assert isinstance(response, SetParameterValuesResponse) and response.status == 0
    current = values_of(
        device, ssid, IGD + "ManagementServer.ParameterKey", IGD + "ManagementServer.PeriodicInformEnable"
    )
    assert current == {
        ssid: "home",
        IGD + "ManagementServer.ParameterKey": "k7",
        IGD + "ManagementServer.PeriodicInformEnable": "true",
    }


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        (IGD + "DeviceInfo.NoSuchThing", "1", 9005),
        (IGD + "DeviceInfo.", "1", 9005),
        (IGD + "DeviceInfo.UpTime", "1", 9008),
        (IGD + "ManagementServer.PeriodicInformInterval", "abc", 9007),
        (IGD + "ManagementServer.PeriodicInformInterval", "0", 9007),  # minInclusive 1
        (IGD + "ManagementServer.PeriodicInformEnable", "maybe", 9007),
        (IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.ConnectionType", "Carrier_Pigeon", 9007),
        (IGD + "IPPingDiagnostics.DiagnosticsState", "Complete", 9007),
    ],
)
def test_set_parameter_values_faults_are_all_or_nothing(
    new_device: MakeDevice, name: str, value: str, code: int
) -> None:
    device = new_device()
    ssid = IGD + "LANDevice.1.WLANConfiguration.1.SSID"
    before = values_of(device, ssid, IGD + "ManagementServer.ParameterKey")
    error = fault_of(device, spv((ssid, "changed"), (name, value)))
    assert error.fault_code == 9003
    assert [(f.parameter_name, f.fault_code) for f in error.set_parameter_values_faults] == [(name, code)]
    assert values_of(device, ssid, IGD + "ManagementServer.ParameterKey") == before


def test_set_parameter_values_rejects_a_declared_type_that_cannot_fit(new_device: MakeDevice) -> None:
    device = new_device()
    request = SetParameterValues(
        parameters=(
            ParameterValue(name=IGD + "ManagementServer.PeriodicInformInterval", value="60", type="xsd:boolean"),
        ),
        parameter_key="",
    )
    assert fault_of(device, request).set_parameter_values_faults[0].fault_code == 9006
    accepted = SetParameterValues(
        parameters=(
            ParameterValue(name=IGD + "ManagementServer.PeriodicInformInterval", value="60", type="xsd:string"),
        ),
        parameter_key="",
    )
    ok(device, accepted)


def test_set_same_parameter_twice_is_invalid(new_device: MakeDevice) -> None:
    device = new_device()
    name = IGD + "LANDevice.1.WLANConfiguration.1.SSID"
    assert fault_of(device, spv((name, "a"), (name, "b"))).set_parameter_values_faults[0].fault_code == 9003


# -- objects -----------------------------------------------------------------------------------------


def test_add_object_numbers_instances_and_creates_children(new_device: MakeDevice) -> None:
    device = new_device()
    first = ok(device, AddObject(object_name=PPP_TABLE, parameter_key="a1"))
    second = ok(device, AddObject(object_name=PPP_TABLE, parameter_key="a2"))
    assert isinstance(first, AddObjectResponse) and isinstance(second, AddObjectResponse)
    assert (first.instance_number, second.instance_number) == (2, 3)
    name = f"{PPP_TABLE}2.Username"
    ok(device, spv((name, "alice@isp")))
    assert values_of(device, name)[name] == "alice@isp"
    assert values_of(device, f"{PPP_TABLE}3.ConnectionType")[f"{PPP_TABLE}3.ConnectionType"] == "IP_Routed"
    count = IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnectionNumberOfEntries"
    assert values_of(device, count)[count] == "3"
    assert values_of(device, IGD + "ManagementServer.ParameterKey")[IGD + "ManagementServer.ParameterKey"] == "key-1"


def test_delete_object_removes_the_subtree_and_numbers_are_not_reused(new_device: MakeDevice) -> None:
    device = new_device()
    ok(device, AddObject(object_name=PPP_TABLE))
    response = ok(device, DeleteObject(object_name=f"{PPP_TABLE}2."))
    assert isinstance(response, DeleteObjectResponse) and response.status == 0
    assert fault_of(device, GetParameterValues(names=(f"{PPP_TABLE}2.",))).fault_code == 9005
    again = ok(device, AddObject(object_name=PPP_TABLE))
    assert isinstance(again, AddObjectResponse) and again.instance_number == 3
    ok(device, DeleteObject(object_name=f"{PPP_TABLE}1."))  # a factory instance
    assert fault_of(device, GetParameterValues(names=(f"{PPP_TABLE}1.Username",))).fault_code == 9005


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (AddObject(object_name=IGD + "LANDevice.1.Hosts.Host."), 9005),  # read-only table
        (AddObject(object_name=IGD + "DeviceInfo."), 9005),  # not a table
        (AddObject(object_name=IGD + "Nope."), 9005),
        (DeleteObject(object_name=IGD + "LANDevice.1.Hosts.Host.1."), 9005),
        (DeleteObject(object_name=PPP_TABLE + "9."), 9005),
    ],
)
def test_object_faults(new_device: MakeDevice, request_: CwmpModel, code: int) -> None:
    assert fault_of(new_device(), request_).fault_code == code


def test_add_object_limit_is_resources_exceeded(new_device: MakeDevice) -> None:
    device = new_device()
    device.settings.max_instances = 2
    ok(device, AddObject(object_name=PPP_TABLE))
    assert fault_of(device, AddObject(object_name=PPP_TABLE)).fault_code == 9004
    device.settings.max_instances = 32


# -- attributes and value change ---------------------------------------------------------------------


def test_attributes_and_passive_value_change_on_next_inform(new_device: MakeDevice) -> None:
    device = new_device()
    wan_ip = IGD + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.ExternalIPAddress"
    ok(
        device,
        SetParameterAttributes(
            parameters=(
                SetParameterAttributesStruct(
                    name=wan_ip, notification_change=True, notification=1, access_list_change=False
                ),
            )
        ),
    )
    attributes = ok(device, GetParameterAttributes(names=(wan_ip,)))
    assert isinstance(attributes, GetParameterAttributesResponse)
    assert attributes.parameters[0].notification == 1
    device.reboot(T0 + 20)  # a new PPP session gets a new address
    when = run_until_session(device, T0 + 20)
    inform = device.start_session(when)
    assert {e.event_code for e in inform.events} == {"1 BOOT", "4 VALUE CHANGE"}
    assert inform.inform_parameter(wan_ip) == device.read(wan_ip, when)


def test_active_notification_refused_on_counters(new_device: MakeDevice) -> None:
    device = new_device()
    request = SetParameterAttributes(
        parameters=(
            SetParameterAttributesStruct(
                name=IGD + "DeviceInfo.UpTime", notification_change=True, notification=2, access_list_change=False
            ),
        )
    )
    assert fault_of(device, request).fault_code == 9009


def test_acs_set_values_are_not_notified(new_device: MakeDevice) -> None:
    device = new_device()
    ssid = IGD + "LANDevice.1.WLANConfiguration.1.SSID"
    ok(
        device,
        SetParameterAttributes(
            parameters=(
                SetParameterAttributesStruct(
                    name=ssid, notification_change=True, notification=2, access_list_change=False
                ),
            )
        ),
    )
    ok(device, spv((ssid, "by-acs")))
    assert device.value_changes(T0 + 11) == []


# -- transfers, schedule, factory reset --------------------------------------------------------------


def test_download_upgrades_firmware_then_transfer_complete_after_boot(new_device: MakeDevice) -> None:
    device = new_device()
    target = device.profile.identity.software_versions[2]
    download = Download(
        command_key="fw-1",
        file_type="1 Firmware Upgrade Image",
        url=f"http://files.example/{target}.bin",
        file_size=1000,
    )
    _events, answers = session_with_event(device, T0 + 10, download)
    assert isinstance(answers[0], DownloadResponse) and answers[0].status == 1
    device.tick(T0 + 11)
    (transfer,) = device.transfers_in_progress()
    device.transfer_finished(transfer, 0, T0 + 12)
    when = run_until_session(device, T0 + 12)
    inform = device.start_session(when)
    assert [(e.event_code, e.command_key) for e in inform.events] == [
        ("1 BOOT", ""),
        ("M Download", "fw-1"),
        ("7 TRANSFER COMPLETE", ""),
    ]
    assert inform.inform_parameter(IGD + "DeviceInfo.SoftwareVersion") == target
    device.inform_accepted(when)
    complete = device.next_request()
    assert complete is not None and complete.command_key == "fw-1" and complete.fault.fault_code == 0


def test_failed_download_reports_the_fault_without_reboot(new_device: MakeDevice) -> None:
    device = new_device()
    version = device.software_version
    session_with_event(
        device,
        T0 + 10,
        Download(command_key="fw-2", file_type="1 Firmware Upgrade Image", url="http://files.example/missing.bin"),
    )
    device.tick(T0 + 10)
    (transfer,) = device.transfers_in_progress()
    device.transfer_finished(transfer, 9016, T0 + 11, "HTTP 404")
    assert device.online and device.software_version == version
    inform = device.start_session(T0 + 11)
    assert [e.event_code for e in inform.events] == ["M Download", "7 TRANSFER COMPLETE"]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (Download(command_key="x", file_type="9 Nonsense", url="http://f/x"), 9003),
        (Download(command_key="x", file_type="1 Firmware Upgrade Image", url="tftp://f/x"), 9013),
        (ScheduleInform(delay_seconds=0), 9003),
        (Upload(command_key="u", file_type="7 Bad", url="http://f/u"), 9003),
    ],
)
def test_transfer_and_schedule_faults(new_device: MakeDevice, request_: CwmpModel, code: int) -> None:
    assert fault_of(new_device(), request_).fault_code == code


def test_queued_transfers_and_cancel(new_device: MakeDevice) -> None:
    device = new_device(cwmp_version="1.4")
    later = Download(command_key="later", file_type="3 Vendor Configuration File", url="http://f/c", delay_seconds=3600)
    ok(device, later)
    ok(
        device,
        ScheduleDownload(
            command_key="sched",
            file_type="1 Firmware Upgrade Image",
            url="http://f/v",
            time_windows=(TimeWindowStruct(window_start=600, window_end=1200, window_mode="1 At Any Time"),),
        ),
    )
    queued = ok(device, GetQueuedTransfers())
    assert isinstance(queued, GetQueuedTransfersResponse)
    assert [(t.command_key, t.state) for t in queued.transfers] == [("later", 1), ("sched", 1)]
    all_queued = ok(device, GetAllQueuedTransfers())
    assert isinstance(all_queued, GetAllQueuedTransfersResponse) and all_queued.transfers[0].is_download
    ok(device, CancelTransfer(command_key="later"))
    assert fault_of(device, CancelTransfer(command_key="later")).fault_code == 9003


def test_upload_completes_with_m_upload(new_device: MakeDevice) -> None:
    device = new_device()
    _, answers = session_with_event(
        device, T0 + 5, Upload(command_key="up", file_type="2 Vendor Log File", url="http://f/log")
    )
    assert isinstance(answers[0], UploadResponse)
    device.tick(T0 + 5)
    (transfer,) = device.transfers_in_progress()
    device.transfer_finished(transfer, 0, T0 + 6)
    assert [e.event_code for e in device.start_session(T0 + 6).events] == ["M Upload", "7 TRANSFER COMPLETE"]


def test_schedule_inform(new_device: MakeDevice) -> None:
    device = new_device()
    session_with_event(device, T0 + 5, ScheduleInform(delay_seconds=30, command_key="si"))
    assert run_until_session(device, T0 + 6) == T0 + 35
    events = [(e.event_code, e.command_key) for e in device.start_session(T0 + 35).events]
    assert events == [("3 SCHEDULED", ""), ("M ScheduleInform", "si")]


def test_factory_reset_bootstraps_again_with_factory_values(new_device: MakeDevice) -> None:
    device = new_device()
    ssid = IGD + "LANDevice.1.WLANConfiguration.1.SSID"
    factory = values_of(device, ssid)[ssid]
    session_with_event(device, T0 + 5, spv((ssid, "mine")), FactoryReset())
    when = run_until_session(device, T0 + 5)
    assert [e.event_code for e in device.start_session(when).events] == ["0 BOOTSTRAP", "1 BOOT"]
    assert values_of(device, ssid, now=when)[ssid] == factory


def test_diagnostics_run_after_the_session_and_report_8_diagnostics_complete(new_device: MakeDevice) -> None:
    device = new_device()
    ping = IGD + "IPPingDiagnostics."
    session_with_event(device, T0 + 5, spv((ping + "Host", "8.8.8.8"), (ping + "DiagnosticsState", "Requested")))
    when = run_until_session(device, T0 + 5)
    assert [e.event_code for e in device.start_session(when).events] == ["8 DIAGNOSTICS COMPLETE"]
    result = values_of(device, ping + "DiagnosticsState", ping + "SuccessCount", now=when)
    assert result == {ping + "DiagnosticsState": "Complete", ping + "SuccessCount": "3"}


def test_traceroute_creates_route_hops(new_device: MakeDevice) -> None:
    device = new_device(profile="tr181-gateway")
    trace = "Device.IP.Diagnostics.TraceRoute."
    session_with_event(device, T0 + 5, spv((trace + "Host", "example.net"), (trace + "DiagnosticsState", "Requested")))
    when = run_until_session(device, T0 + 5)
    result = values_of(device, trace + "RouteHopsNumberOfEntries", trace + "RouteHops.3.HostAddress", now=when)
    assert result == {trace + "RouteHopsNumberOfEntries": "3", trace + "RouteHops.3.HostAddress": "203.0.113.9"}


def test_injected_internal_error_is_9002() -> None:
    assert rpc.fault(9002).fault_string == "Internal error"


def test_cwmp_1_4_device_is_marked(new_device: MakeDevice) -> None:
    assert new_device(cwmp_version="1.4").cwmp_version == CwmpVersion.V1_4
