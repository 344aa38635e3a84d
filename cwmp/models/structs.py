"""CWMP data structures used inside RPC arguments (TR-069 A.3 / cwmp-1-x.xsd complex types)."""

from __future__ import annotations

from cwmp.models.base import CwmpModel


class ParameterValue(CwmpModel):
    """ParameterValueStruct. `value` is the wire text; `type` the xsi:type as the device sent it."""

    name: str
    value: str
    type: str = "xsd:string"


class ParameterInfo(CwmpModel):
    """ParameterInfoStruct (GetParameterNamesResponse)."""

    name: str
    writable: bool


class ParameterAttribute(CwmpModel):
    """ParameterAttributeStruct (GetParameterAttributesResponse)."""

    name: str
    notification: int
    access_list: tuple[str, ...] = ()


class SetParameterAttributesStruct(CwmpModel):
    name: str
    notification_change: bool
    notification: int
    access_list_change: bool
    access_list: tuple[str, ...] = ()


class DeviceIdStruct(CwmpModel):
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str


class EventStruct(CwmpModel):
    event_code: str
    command_key: str = ""


class FaultStruct(CwmpModel):
    """Outcome of a transfer (TransferComplete); fault_code 0 means success."""

    fault_code: int = 0
    fault_string: str = ""


class SetParameterValuesFault(CwmpModel):
    parameter_name: str
    fault_code: int
    fault_string: str = ""


class QueuedTransferStruct(CwmpModel):
    command_key: str
    state: int


class AllQueuedTransferStruct(CwmpModel):
    command_key: str
    state: int
    is_download: bool
    file_type: str
    file_size: int
    target_file_name: str


class TimeWindowStruct(CwmpModel):
    window_start: int
    window_end: int
    window_mode: str
    user_message: str = ""
    max_retries: int = -1


class ArgStruct(CwmpModel):
    name: str
    value: str
