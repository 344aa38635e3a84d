"""How each model maps to XML: one declarative table shared by the parser and the serializer.

Element names and order follow cwmp-1-x.xsd (TR-069 Annex A). Child elements of an RPC are
unqualified (elementFormDefault="unqualified"); arrays are SOAP-ENC arrays with arrayType.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cwmp import models as m
from cwmp.versions import CwmpVersion

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


class Scalar(Enum):
    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    TIME = "time"
    # ParameterValueStruct's Value: text plus its xsi:type, stored in `value` and `type`.
    TYPED_VALUE = "typed_value"


@dataclass(frozen=True)
class Struct:
    model: type[m.CwmpModel]
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class Array:
    """A SOAP-ENC array: `<X soap-enc:arrayType="cwmp:ItemStruct[n]"><Item/>...</X>`."""

    item_element: str
    item: Scalar | Struct
    array_type: str


@dataclass(frozen=True)
class Repeated:
    """Sibling elements repeated without a wrapper (SetParameterValuesFault in cwmp:Fault)."""

    item: Struct


Codec = Scalar | Struct | Array | Repeated


@dataclass(frozen=True)
class FieldSpec:
    attr: str
    element: str
    codec: Codec


def _f(attr: str, element: str, codec: Codec = Scalar.TEXT) -> FieldSpec:
    return FieldSpec(attr, element, codec)


def _strings(item_element: str = "string") -> Array:
    return Array(item_element, Scalar.TEXT, "xsd:string")


PARAMETER_VALUE = Struct(m.ParameterValue, (_f("name", "Name"), FieldSpec("value", "Value", Scalar.TYPED_VALUE)))
PARAMETER_INFO = Struct(m.ParameterInfo, (_f("name", "Name"), _f("writable", "Writable", Scalar.BOOL)))
PARAMETER_ATTRIBUTE = Struct(
    m.ParameterAttribute,
    (
        _f("name", "Name"),
        _f("notification", "Notification", Scalar.INT),
        _f("access_list", "AccessList", _strings()),
    ),
)
SET_PARAMETER_ATTRIBUTES = Struct(
    m.SetParameterAttributesStruct,
    (
        _f("name", "Name"),
        _f("notification_change", "NotificationChange", Scalar.BOOL),
        _f("notification", "Notification", Scalar.INT),
        _f("access_list_change", "AccessListChange", Scalar.BOOL),
        _f("access_list", "AccessList", _strings()),
    ),
)
DEVICE_ID = Struct(
    m.DeviceIdStruct,
    (
        _f("manufacturer", "Manufacturer"),
        _f("oui", "OUI"),
        _f("product_class", "ProductClass"),
        _f("serial_number", "SerialNumber"),
    ),
)
EVENT = Struct(m.EventStruct, (_f("event_code", "EventCode"), _f("command_key", "CommandKey")))
FAULT_STRUCT = Struct(m.FaultStruct, (_f("fault_code", "FaultCode", Scalar.INT), _f("fault_string", "FaultString")))
SPV_FAULT = Struct(
    m.SetParameterValuesFault,
    (
        _f("parameter_name", "ParameterName"),
        _f("fault_code", "FaultCode", Scalar.INT),
        _f("fault_string", "FaultString"),
    ),
)
QUEUED_TRANSFER = Struct(m.QueuedTransferStruct, (_f("command_key", "CommandKey"), _f("state", "State", Scalar.INT)))
ALL_QUEUED_TRANSFER = Struct(
    m.AllQueuedTransferStruct,
    (
        _f("command_key", "CommandKey"),
        _f("state", "State", Scalar.INT),
        _f("is_download", "IsDownload", Scalar.BOOL),
        _f("file_type", "FileType"),
        _f("file_size", "FileSize", Scalar.INT),
        _f("target_file_name", "TargetFileName"),
    ),
)
TIME_WINDOW = Struct(
    m.TimeWindowStruct,
    (
        _f("window_start", "WindowStart", Scalar.INT),
        _f("window_end", "WindowEnd", Scalar.INT),
        _f("window_mode", "WindowMode"),
        _f("user_message", "UserMessage"),
        _f("max_retries", "MaxRetries", Scalar.INT),
    ),
)
ARG = Struct(m.ArgStruct, (_f("name", "Name"), _f("value", "Value")))

PARAMETER_VALUE_LIST = Array("ParameterValueStruct", PARAMETER_VALUE, "cwmp:ParameterValueStruct")
PARAMETER_NAMES = _f("names", "ParameterNames", _strings())

_TRANSFER_FILE = (
    _f("command_key", "CommandKey"),
    _f("file_type", "FileType"),
    _f("url", "URL"),
    _f("username", "Username"),
    _f("password", "Password"),
)
_TRANSFER_RESULT = (
    _f("status", "Status", Scalar.INT),
    _f("start_time", "StartTime", Scalar.TIME),
    _f("complete_time", "CompleteTime", Scalar.TIME),
)

# Field layout of every RPC body element, in schema order. Messages without arguments map to ().
MESSAGE_FIELDS: dict[type[m.CwmpModel], tuple[FieldSpec, ...]] = {
    m.GetRPCMethods: (),
    m.GetRPCMethodsResponse: (_f("methods", "MethodList", _strings()),),
    m.GetParameterNames: (_f("parameter_path", "ParameterPath"), _f("next_level", "NextLevel", Scalar.BOOL)),
    m.GetParameterNamesResponse: (
        _f(
            "parameters",
            "ParameterList",
            Array("ParameterInfoStruct", PARAMETER_INFO, "cwmp:ParameterInfoStruct"),
        ),
    ),
    m.GetParameterValues: (PARAMETER_NAMES,),
    m.GetParameterValuesResponse: (_f("parameters", "ParameterList", PARAMETER_VALUE_LIST),),
    m.SetParameterValues: (
        _f("parameters", "ParameterList", PARAMETER_VALUE_LIST),
        _f("parameter_key", "ParameterKey"),
    ),
    m.SetParameterValuesResponse: (_f("status", "Status", Scalar.INT),),
    m.GetParameterAttributes: (PARAMETER_NAMES,),
    m.GetParameterAttributesResponse: (
        _f(
            "parameters",
            "ParameterList",
            Array("ParameterAttributeStruct", PARAMETER_ATTRIBUTE, "cwmp:ParameterAttributeStruct"),
        ),
    ),
    m.SetParameterAttributes: (
        _f(
            "parameters",
            "ParameterList",
            Array("SetParameterAttributesStruct", SET_PARAMETER_ATTRIBUTES, "cwmp:SetParameterAttributesStruct"),
        ),
    ),
    m.SetParameterAttributesResponse: (),
    m.AddObject: (_f("object_name", "ObjectName"), _f("parameter_key", "ParameterKey")),
    m.AddObjectResponse: (
        _f("instance_number", "InstanceNumber", Scalar.INT),
        _f("status", "Status", Scalar.INT),
    ),
    m.DeleteObject: (_f("object_name", "ObjectName"), _f("parameter_key", "ParameterKey")),
    m.DeleteObjectResponse: (_f("status", "Status", Scalar.INT),),
    m.Reboot: (_f("command_key", "CommandKey"),),
    m.RebootResponse: (),
    m.FactoryReset: (),
    m.FactoryResetResponse: (),
    m.Download: (
        *_TRANSFER_FILE,
        _f("file_size", "FileSize", Scalar.INT),
        _f("target_file_name", "TargetFileName"),
        _f("delay_seconds", "DelaySeconds", Scalar.INT),
        _f("success_url", "SuccessURL"),
        _f("failure_url", "FailureURL"),
    ),
    m.DownloadResponse: _TRANSFER_RESULT,
    m.Upload: (*_TRANSFER_FILE, _f("delay_seconds", "DelaySeconds", Scalar.INT)),
    m.UploadResponse: _TRANSFER_RESULT,
    m.ScheduleInform: (_f("delay_seconds", "DelaySeconds", Scalar.INT), _f("command_key", "CommandKey")),
    m.ScheduleInformResponse: (),
    m.ScheduleDownload: (
        *_TRANSFER_FILE,
        _f("file_size", "FileSize", Scalar.INT),
        _f("target_file_name", "TargetFileName"),
        _f("time_windows", "TimeWindowList", Array("TimeWindowStruct", TIME_WINDOW, "cwmp:TimeWindowStruct")),
    ),
    m.ScheduleDownloadResponse: (),
    m.CancelTransfer: (_f("command_key", "CommandKey"),),
    m.CancelTransferResponse: (),
    m.GetQueuedTransfers: (),
    m.GetQueuedTransfersResponse: (
        _f(
            "transfers",
            "TransferList",
            Array("QueuedTransferStruct", QUEUED_TRANSFER, "cwmp:QueuedTransferStruct"),
        ),
    ),
    m.GetAllQueuedTransfers: (),
    m.GetAllQueuedTransfersResponse: (
        _f(
            "transfers",
            "TransferList",
            Array("AllQueuedTransferStruct", ALL_QUEUED_TRANSFER, "cwmp:AllQueuedTransferStruct"),
        ),
    ),
    m.Inform: (
        _f("device_id", "DeviceId", DEVICE_ID),
        _f("events", "Event", Array("EventStruct", EVENT, "cwmp:EventStruct")),
        _f("max_envelopes", "MaxEnvelopes", Scalar.INT),
        _f("current_time", "CurrentTime", Scalar.TIME),
        _f("retry_count", "RetryCount", Scalar.INT),
        _f("parameters", "ParameterList", PARAMETER_VALUE_LIST),
    ),
    m.InformResponse: (_f("max_envelopes", "MaxEnvelopes", Scalar.INT),),
    m.TransferComplete: (
        _f("command_key", "CommandKey"),
        _f("fault", "FaultStruct", FAULT_STRUCT),
        _f("start_time", "StartTime", Scalar.TIME),
        _f("complete_time", "CompleteTime", Scalar.TIME),
    ),
    m.TransferCompleteResponse: (),
    m.AutonomousTransferComplete: (
        _f("announce_url", "AnnounceURL"),
        _f("transfer_url", "TransferURL"),
        _f("is_download", "IsDownload", Scalar.BOOL),
        _f("file_type", "FileType"),
        _f("file_size", "FileSize", Scalar.INT),
        _f("target_file_name", "TargetFileName"),
        _f("fault", "FaultStruct", FAULT_STRUCT),
        _f("start_time", "StartTime", Scalar.TIME),
        _f("complete_time", "CompleteTime", Scalar.TIME),
    ),
    m.AutonomousTransferCompleteResponse: (),
    m.RequestDownload: (
        _f("file_type", "FileType"),
        _f("file_type_args", "FileTypeArg", Array("ArgStruct", ARG, "cwmp:ArgStruct")),
    ),
    m.RequestDownloadResponse: (),
}

# cwmp:Fault inside a SOAP Fault's detail (TR-069 A.5).
FAULT_DETAIL: tuple[FieldSpec, ...] = (
    _f("fault_code", "FaultCode", Scalar.INT),
    _f("fault_string", "FaultString"),
    _f("set_parameter_values_faults", "SetParameterValuesFault", Repeated(SPV_FAULT)),
)

MESSAGE_BY_NAME: dict[str, type[m.CwmpModel]] = {cls.__name__: cls for cls in MESSAGE_FIELDS}

# RPCs absent from older schemas: cwmp-1-0.xsd lacks the Amd 2 and Amd 3 additions.
MIN_VERSION: dict[type[m.CwmpModel], CwmpVersion] = {
    m.GetAllQueuedTransfers: CwmpVersion.V1_1,
    m.GetAllQueuedTransfersResponse: CwmpVersion.V1_1,
    m.AutonomousTransferComplete: CwmpVersion.V1_1,
    m.AutonomousTransferCompleteResponse: CwmpVersion.V1_1,
    m.ScheduleDownload: CwmpVersion.V1_2,
    m.ScheduleDownloadResponse: CwmpVersion.V1_2,
    m.CancelTransfer: CwmpVersion.V1_2,
    m.CancelTransferResponse: CwmpVersion.V1_2,
}
