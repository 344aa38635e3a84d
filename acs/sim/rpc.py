"""How a simulated CPE answers each ACS request (TR-069 A.3.2 / A.4.1). Pure, like device.py.

`answer(device, request, now)` returns the response model or a `Fault` with the CWMP fault a
real CPE would send: 9005 unknown name, 9007 bad value, 9008 not writable, 9003 with one
SetParameterValuesFault per bad parameter (SetParameterValues is all-or-nothing, A.3.2.1).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from acs.sim import validation
from acs.sim.device import SimDevice, Timer, Transfer
from acs.sim.values import FREE_RUNNING
from cwmp import (
    AddObject,
    AddObjectResponse,
    CancelTransfer,
    CancelTransferResponse,
    CwmpVersion,
    DeleteObject,
    DeleteObjectResponse,
    Download,
    DownloadResponse,
    FactoryReset,
    FactoryResetResponse,
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
    ParameterAttribute,
    ParameterInfo,
    ParameterValue,
    Reboot,
    RebootResponse,
    ScheduleDownload,
    ScheduleDownloadResponse,
    ScheduleInform,
    ScheduleInformResponse,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterValues,
    SetParameterValuesFault,
    SetParameterValuesResponse,
    Upload,
    UploadResponse,
)
from cwmp.faults import fault_string, soap_faultcode
from cwmp.models import AllQueuedTransferStruct, CwmpModel, QueuedTransferStruct
from cwmp.versions import version_order

METHODS_1_0 = (
    "GetRPCMethods",
    "GetParameterNames",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterAttributes",
    "SetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "FactoryReset",
    "Download",
    "Upload",
    "ScheduleInform",
    "GetQueuedTransfers",
)
METHODS_1_1 = ("GetAllQueuedTransfers",)
METHODS_1_2 = ("ScheduleDownload", "CancelTransfer")
DOWNLOAD_TYPES = (
    "1 Firmware Upgrade Image",
    "2 Web Content",
    "3 Vendor Configuration File",
    "4 Tone File",
    "5 Ringer File",
)
UPLOAD_TYPES = ("1 Vendor Configuration File", "2 Vendor Log File", "3 Vendor Configuration File", "4 Vendor Log File")
TRANSFER_SCHEMES = ("http", "https", "ftp")


class CpeFault(Exception):
    def __init__(self, code: int, detail: str = "", per_parameter: tuple[SetParameterValuesFault, ...] = ()):
        super().__init__(code, detail)
        self.code, self.detail, self.per_parameter = code, detail, per_parameter


def fault(code: int, per_parameter: tuple[SetParameterValuesFault, ...] = ()) -> Fault:
    return Fault(
        fault_code=code,
        fault_string=fault_string(code),
        set_parameter_values_faults=per_parameter,
        soap_faultcode=soap_faultcode(code),
    )


def supported_methods(version: CwmpVersion) -> tuple[str, ...]:
    methods = list(METHODS_1_0)
    if version_order(version) >= (1, 1):
        methods += METHODS_1_1
    if version_order(version) >= (1, 2):
        methods += METHODS_1_2
    return tuple(methods)


def answer(device: SimDevice, request: CwmpModel, now: float) -> CwmpModel:
    """The CPE's response to one ACS request; a `Fault` when the request fails."""
    if request.__class__.__name__ not in supported_methods(device.cwmp_version):
        return fault(9000)
    try:
        return _dispatch(device, request, now)
    except CpeFault as error:
        return fault(error.code, error.per_parameter)


def _dispatch(device: SimDevice, request: CwmpModel, now: float) -> CwmpModel:
    match request:
        case GetRPCMethods():
            return GetRPCMethodsResponse(methods=supported_methods(device.cwmp_version))
        case GetParameterNames():
            return get_parameter_names(device, request)
        case GetParameterValues():
            return get_parameter_values(device, request, now)
        case SetParameterValues():
            return set_parameter_values(device, request, now)
        case GetParameterAttributes():
            return get_parameter_attributes(device, request)
        case SetParameterAttributes():
            return set_parameter_attributes(device, request, now)
        case AddObject():
            return add_object(device, request)
        case DeleteObject():
            return delete_object(device, request)
        case Reboot():
            device.pending_actions.append(("reboot", request.command_key))
            return RebootResponse()
        case FactoryReset():
            device.pending_actions.append(("factory_reset", ""))
            return FactoryResetResponse()
        case Download() | ScheduleDownload() | Upload():
            return queue_transfer(device, request, now)
        case ScheduleInform():
            return schedule_inform(device, request, now)
        case CancelTransfer():
            return cancel_transfer(device, request)
        case GetQueuedTransfers():
            return GetQueuedTransfersResponse(
                transfers=tuple(QueuedTransferStruct(command_key=t.command_key, state=t.state) for t in device.queued)
            )
        case GetAllQueuedTransfers():
            return GetAllQueuedTransfersResponse(transfers=tuple(_all_queued(t) for t in device.queued))
        case _:
            raise CpeFault(9000)


# -- names, values, attributes ---------------------------------------------------------------------


def _expand(device: SimDevice, path: str) -> list[str]:
    """Parameters named by `path`: itself, or all parameters below a partial path ending in "."."""
    if path == "":
        path = device.profile.root
    if path.endswith("."):
        if not device.tree.exists(path):
            raise CpeFault(9005, path)
        return [n for n in device.tree.subtree(path) if not n.endswith(".")]
    if not device.tree.exists(path):
        raise CpeFault(9005, path)
    return [path]


def _object_writable(device: SimDevice, path: str) -> bool:
    """Tables are writable when AddObject works on them, instances when DeleteObject does."""
    if device.profile.is_table(path):
        return device.profile.table_writable(path)
    parent = path[: path.rstrip(".").rfind(".") + 1]
    is_instance = path.rstrip(".").rsplit(".", 1)[-1].isdigit()
    return is_instance and device.profile.table_writable(parent)


def _writable(device: SimDevice, name: str) -> bool:
    if name.endswith("."):
        return _object_writable(device, name)
    spec = device.profile.spec(name)
    return spec is not None and spec.writable


def get_parameter_names(device: SimDevice, request: GetParameterNames) -> GetParameterNamesResponse:
    path = request.parameter_path
    if path == "" and request.next_level:  # A.3.2.3: the root object only
        names = [device.profile.root]
    elif path == "" or path.endswith("."):
        start = path or device.profile.root
        if not device.tree.exists(start):
            raise CpeFault(9005, path)
        names = device.tree.subtree(start)
        if request.next_level:
            names = [n for n in names[1:] if "." not in n[len(start) :].rstrip(".")]
    elif not device.tree.exists(path):
        raise CpeFault(9005, path)
    elif request.next_level:  # A.3.2.3: NextLevel true with a parameter name is invalid
        raise CpeFault(9003, path)
    else:
        names = [path]
    return GetParameterNamesResponse(
        parameters=tuple(ParameterInfo(name=n, writable=_writable(device, n)) for n in names)
    )


def get_parameter_values(device: SimDevice, request: GetParameterValues, now: float) -> GetParameterValuesResponse:
    result: list[ParameterValue] = []
    for path in request.names:
        for name in _expand(device, path):
            spec = device.profile.spec(name)
            result.append(
                ParameterValue(
                    name=name, value=device.wire_value(name, now), type=spec.xsd_type if spec else "xsd:string"
                )
            )
    return GetParameterValuesResponse(parameters=tuple(result))


def _check_value(device: SimDevice, parameter: ParameterValue, seen: set[str]) -> int | str:
    """The normalized value to store, or the fault code for this parameter."""
    name = parameter.name
    spec = device.profile.spec(name)
    if name in seen:
        return 9003  # A.3.2.1: the same parameter twice in one request
    seen.add(name)
    if spec is None or name.endswith(".") or not device.tree.exists(name):
        return 9005
    if not spec.writable:
        return 9008
    if not validation.type_accepted(spec, parameter.type):
        return 9006
    if name.endswith("DiagnosticsState") and parameter.value != "Requested":
        return 9007  # TR-098/TR-181: "Requested" is the only value an ACS may write
    normalized = validation.normalize(spec, parameter.value)
    return 9007 if normalized is None else normalized


def set_parameter_values(device: SimDevice, request: SetParameterValues, now: float) -> SetParameterValuesResponse:
    seen: set[str] = set()
    checked = [(p.name, _check_value(device, p, seen)) for p in request.parameters]
    faults = tuple(
        SetParameterValuesFault(parameter_name=name, fault_code=code, fault_string=fault_string(code))
        for name, code in checked
        if isinstance(code, int)
    )
    if faults:
        raise CpeFault(9003, "SetParameterValues", faults)
    for name, value in checked:
        assert isinstance(value, str)
        device.tree.set(name, value)
        if device.attributes and name in device.attributes:
            device.note_reported(name, now)  # A.3.2.4: changes made by the ACS are not notified
        if name.endswith("DiagnosticsState"):
            device.pending_actions.append(("diagnostics", name[: name.rfind(".") + 1]))
        if name.endswith("ManagementServer.PeriodicInformInterval"):
            device.periodic_anchor = now  # the new interval counts from now
    device.tree.set(device.param("ManagementServer.ParameterKey"), request.parameter_key)
    return SetParameterValuesResponse(status=0)


def get_parameter_attributes(device: SimDevice, request: GetParameterAttributes) -> GetParameterAttributesResponse:
    attributes = device.attributes or {}
    names = [name for path in request.names for name in _expand(device, path)]
    return GetParameterAttributesResponse(
        parameters=tuple(ParameterAttribute(name=n, notification=attributes.get(n, 0), access_list=()) for n in names)
    )


def set_parameter_attributes(
    device: SimDevice, request: SetParameterAttributes, now: float
) -> SetParameterAttributesResponse:
    changes: dict[str, int] = {}
    for item in request.parameters:
        names = _expand(device, item.name)
        if not item.notification_change:
            continue
        if item.notification not in (0, 1, 2):
            raise CpeFault(9003, item.name)
        for name in names:
            kind = device.profile.dynamic.get(name, "").partition(":")[0]
            if item.notification == 2 and kind in FREE_RUNNING:
                raise CpeFault(9009, name)  # active notification on a counter is refused
            changes[name] = item.notification
    if device.attributes is None:
        device.attributes = {}
    for name, notification in changes.items():
        if notification:
            device.attributes[name] = notification
            device.note_reported(name, now)
        else:
            device.attributes.pop(name, None)
    return SetParameterAttributesResponse()


# -- objects ---------------------------------------------------------------------------------------


def add_object(device: SimDevice, request: AddObject) -> AddObjectResponse:
    table = request.object_name
    if not table.endswith(".") or not device.tree.exists(table) or not device.profile.is_table(table):
        raise CpeFault(9005, table)
    if not device.profile.table_writable(table):
        raise CpeFault(9005, table)  # a read-only table: the name is not an addable object
    number = device.tree.add_instance(table, device.settings.max_instances)
    if number is None:
        raise CpeFault(9004, table)
    device.tree.set(device.param("ManagementServer.ParameterKey"), request.parameter_key)
    return AddObjectResponse(instance_number=number, status=0)


def delete_object(device: SimDevice, request: DeleteObject) -> DeleteObjectResponse:
    path = request.object_name
    last = path.rstrip(".").rsplit(".", 1)[-1]
    if not path.endswith(".") or not last.isdigit() or not device.tree.exists(path):
        raise CpeFault(9005, path)
    if not _object_writable(device, path):
        raise CpeFault(9005, path)
    device.tree.delete(path)
    device.tree.set(device.param("ManagementServer.ParameterKey"), request.parameter_key)
    return DeleteObjectResponse(status=0)


# -- transfers and scheduling ---------------------------------------------------------------------


def queue_transfer(device: SimDevice, request: Download | ScheduleDownload | Upload, now: float) -> CwmpModel:
    is_upload = isinstance(request, Upload)
    if request.file_type not in (UPLOAD_TYPES if is_upload else DOWNLOAD_TYPES):
        raise CpeFault(9003, request.file_type)
    if urlsplit(request.url).scheme.lower() not in TRANSFER_SCHEMES:
        raise CpeFault(9013, request.url)
    if len(device.queued) >= device.settings.max_queued_transfers:
        raise CpeFault(9004, "transfer queue full")
    transfer = Transfer(
        command_key=request.command_key,
        is_download=not is_upload,
        file_type=request.file_type,
        url=request.url,
        due=now + _transfer_delay(request),
        username=request.username,
        password=request.password,
        seq=max((t.seq for t in device.queued), default=0) + 1,
        file_size=0 if isinstance(request, Upload) else request.file_size,
        target_file_name="" if isinstance(request, Upload) else request.target_file_name,
    )
    device.queued.append(transfer)
    device.pending_actions.append(("transfer", str(transfer.seq)))
    if isinstance(request, ScheduleDownload):
        return ScheduleDownloadResponse()
    # Status 1: the transfer has not completed yet; TransferComplete follows (A.3.2.8).
    return UploadResponse(status=1) if is_upload else DownloadResponse(status=1)


def _transfer_delay(request: Download | ScheduleDownload | Upload) -> float:
    if isinstance(request, ScheduleDownload):
        if not request.time_windows or len(request.time_windows) > 2:
            raise CpeFault(9003, "TimeWindowList")
        return float(request.time_windows[0].window_start)
    return float(max(0, request.delay_seconds))


def schedule_inform(device: SimDevice, request: ScheduleInform, now: float) -> ScheduleInformResponse:
    if request.delay_seconds <= 0:  # A.4.1.4: DelaySeconds MUST be greater than zero
        raise CpeFault(9003, "DelaySeconds")
    device.timers.append(Timer(now + request.delay_seconds, "scheduled_inform", request.command_key))
    return ScheduleInformResponse()


def cancel_transfer(device: SimDevice, request: CancelTransfer) -> CancelTransferResponse:
    matching = [t for t in device.queued if t.command_key == request.command_key]
    if not matching:
        raise CpeFault(9003, request.command_key)
    if any(t.state != 1 for t in matching):
        raise CpeFault(9021, request.command_key)
    for transfer in matching:
        device.queued.remove(transfer)
        device.timers = [t for t in device.timers if not (t.kind == "transfer" and t.arg == str(transfer.seq))]
    return CancelTransferResponse()


def _all_queued(transfer: Transfer) -> AllQueuedTransferStruct:
    return AllQueuedTransferStruct(
        command_key=transfer.command_key,
        state=transfer.state,
        is_download=transfer.is_download,
        file_type=transfer.file_type,
        file_size=transfer.file_size,
        target_file_name=transfer.target_file_name,
    )
