"""RPCs the ACS calls on the CPE, and the CPE's responses (TR-069 A.3.2 and A.4.1)."""

from __future__ import annotations

from typing import Literal

from cwmp.models.base import CwmpModel, CwmpTime
from cwmp.models.structs import (
    AllQueuedTransferStruct,
    ParameterAttribute,
    ParameterInfo,
    ParameterValue,
    QueuedTransferStruct,
    SetParameterAttributesStruct,
    TimeWindowStruct,
)


class GetRPCMethods(CwmpModel):
    """Sent by either side (TR-069 A.3.1.1)."""

    kind: Literal["GetRPCMethods"] = "GetRPCMethods"


class GetRPCMethodsResponse(CwmpModel):
    kind: Literal["GetRPCMethodsResponse"] = "GetRPCMethodsResponse"
    methods: tuple[str, ...] = ()


class GetParameterNames(CwmpModel):
    kind: Literal["GetParameterNames"] = "GetParameterNames"
    parameter_path: str
    next_level: bool


class GetParameterNamesResponse(CwmpModel):
    kind: Literal["GetParameterNamesResponse"] = "GetParameterNamesResponse"
    parameters: tuple[ParameterInfo, ...] = ()


class GetParameterValues(CwmpModel):
    kind: Literal["GetParameterValues"] = "GetParameterValues"
    names: tuple[str, ...]


class GetParameterValuesResponse(CwmpModel):
    kind: Literal["GetParameterValuesResponse"] = "GetParameterValuesResponse"
    parameters: tuple[ParameterValue, ...] = ()


class SetParameterValues(CwmpModel):
    kind: Literal["SetParameterValues"] = "SetParameterValues"
    parameters: tuple[ParameterValue, ...]
    parameter_key: str = ""


class SetParameterValuesResponse(CwmpModel):
    kind: Literal["SetParameterValuesResponse"] = "SetParameterValuesResponse"
    status: int


class GetParameterAttributes(CwmpModel):
    kind: Literal["GetParameterAttributes"] = "GetParameterAttributes"
    names: tuple[str, ...]


class GetParameterAttributesResponse(CwmpModel):
    kind: Literal["GetParameterAttributesResponse"] = "GetParameterAttributesResponse"
    parameters: tuple[ParameterAttribute, ...] = ()


class SetParameterAttributes(CwmpModel):
    kind: Literal["SetParameterAttributes"] = "SetParameterAttributes"
    parameters: tuple[SetParameterAttributesStruct, ...]


class SetParameterAttributesResponse(CwmpModel):
    kind: Literal["SetParameterAttributesResponse"] = "SetParameterAttributesResponse"


class AddObject(CwmpModel):
    kind: Literal["AddObject"] = "AddObject"
    object_name: str
    parameter_key: str = ""


class AddObjectResponse(CwmpModel):
    kind: Literal["AddObjectResponse"] = "AddObjectResponse"
    instance_number: int
    status: int


class DeleteObject(CwmpModel):
    kind: Literal["DeleteObject"] = "DeleteObject"
    object_name: str
    parameter_key: str = ""


class DeleteObjectResponse(CwmpModel):
    kind: Literal["DeleteObjectResponse"] = "DeleteObjectResponse"
    status: int


class Reboot(CwmpModel):
    kind: Literal["Reboot"] = "Reboot"
    command_key: str = ""


class RebootResponse(CwmpModel):
    kind: Literal["RebootResponse"] = "RebootResponse"


class FactoryReset(CwmpModel):
    kind: Literal["FactoryReset"] = "FactoryReset"


class FactoryResetResponse(CwmpModel):
    kind: Literal["FactoryResetResponse"] = "FactoryResetResponse"


class Download(CwmpModel):
    kind: Literal["Download"] = "Download"
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    success_url: str = ""
    failure_url: str = ""


class DownloadResponse(CwmpModel):
    kind: Literal["DownloadResponse"] = "DownloadResponse"
    status: int
    start_time: CwmpTime = None
    complete_time: CwmpTime = None


class Upload(CwmpModel):
    kind: Literal["Upload"] = "Upload"
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    delay_seconds: int = 0


class UploadResponse(CwmpModel):
    kind: Literal["UploadResponse"] = "UploadResponse"
    status: int
    start_time: CwmpTime = None
    complete_time: CwmpTime = None


class ScheduleInform(CwmpModel):
    kind: Literal["ScheduleInform"] = "ScheduleInform"
    delay_seconds: int
    command_key: str = ""


class ScheduleInformResponse(CwmpModel):
    kind: Literal["ScheduleInformResponse"] = "ScheduleInformResponse"


class ScheduleDownload(CwmpModel):
    """CWMP 1.2+ (TR-069 Amd 3, A.4.1.8)."""

    kind: Literal["ScheduleDownload"] = "ScheduleDownload"
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    file_size: int = 0
    target_file_name: str = ""
    time_windows: tuple[TimeWindowStruct, ...] = ()


class ScheduleDownloadResponse(CwmpModel):
    kind: Literal["ScheduleDownloadResponse"] = "ScheduleDownloadResponse"


class CancelTransfer(CwmpModel):
    """CWMP 1.2+ (TR-069 Amd 3, A.4.1.9)."""

    kind: Literal["CancelTransfer"] = "CancelTransfer"
    command_key: str


class CancelTransferResponse(CwmpModel):
    kind: Literal["CancelTransferResponse"] = "CancelTransferResponse"


class GetQueuedTransfers(CwmpModel):
    kind: Literal["GetQueuedTransfers"] = "GetQueuedTransfers"


class GetQueuedTransfersResponse(CwmpModel):
    kind: Literal["GetQueuedTransfersResponse"] = "GetQueuedTransfersResponse"
    transfers: tuple[QueuedTransferStruct, ...] = ()


class GetAllQueuedTransfers(CwmpModel):
    """CWMP 1.1+ (TR-069 Amd 2)."""

    kind: Literal["GetAllQueuedTransfers"] = "GetAllQueuedTransfers"


class GetAllQueuedTransfersResponse(CwmpModel):
    kind: Literal["GetAllQueuedTransfersResponse"] = "GetAllQueuedTransfersResponse"
    transfers: tuple[AllQueuedTransferStruct, ...] = ()
