"""The discriminated union of all messages, request/response pairing, and the SOAP envelope."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from cwmp.models.acs_methods import (
    AutonomousTransferComplete,
    AutonomousTransferCompleteResponse,
    Inform,
    InformResponse,
    RequestDownload,
    RequestDownloadResponse,
    TransferComplete,
    TransferCompleteResponse,
)
from cwmp.models.base import CwmpModel
from cwmp.models.cpe_methods import (
    AddObject,
    AddObjectResponse,
    CancelTransfer,
    CancelTransferResponse,
    DeleteObject,
    DeleteObjectResponse,
    Download,
    DownloadResponse,
    FactoryReset,
    FactoryResetResponse,
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
    Reboot,
    RebootResponse,
    ScheduleDownload,
    ScheduleDownloadResponse,
    ScheduleInform,
    ScheduleInformResponse,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterValues,
    SetParameterValuesResponse,
    Upload,
    UploadResponse,
)
from cwmp.models.fault import Fault, UnknownMessage
from cwmp.versions import CwmpVersion

# Union[...] rather than "|": the members are listed one per line and mypy reads it the same.
Message = Annotated[
    Union[  # noqa: UP007
        GetRPCMethods,
        GetRPCMethodsResponse,
        GetParameterNames,
        GetParameterNamesResponse,
        GetParameterValues,
        GetParameterValuesResponse,
        SetParameterValues,
        SetParameterValuesResponse,
        GetParameterAttributes,
        GetParameterAttributesResponse,
        SetParameterAttributes,
        SetParameterAttributesResponse,
        AddObject,
        AddObjectResponse,
        DeleteObject,
        DeleteObjectResponse,
        Reboot,
        RebootResponse,
        FactoryReset,
        FactoryResetResponse,
        Download,
        DownloadResponse,
        Upload,
        UploadResponse,
        ScheduleInform,
        ScheduleInformResponse,
        ScheduleDownload,
        ScheduleDownloadResponse,
        CancelTransfer,
        CancelTransferResponse,
        GetQueuedTransfers,
        GetQueuedTransfersResponse,
        GetAllQueuedTransfers,
        GetAllQueuedTransfersResponse,
        Inform,
        InformResponse,
        TransferComplete,
        TransferCompleteResponse,
        AutonomousTransferComplete,
        AutonomousTransferCompleteResponse,
        RequestDownload,
        RequestDownloadResponse,
        Fault,
        UnknownMessage,
    ],
    Field(discriminator="kind"),
]

# Requests the ACS sends to the CPE (TR-069 A.3.2 / A.4.1), paired with their responses.
CPE_METHOD_RESPONSES: dict[type[CwmpModel], type[CwmpModel]] = {
    GetRPCMethods: GetRPCMethodsResponse,
    GetParameterNames: GetParameterNamesResponse,
    GetParameterValues: GetParameterValuesResponse,
    SetParameterValues: SetParameterValuesResponse,
    GetParameterAttributes: GetParameterAttributesResponse,
    SetParameterAttributes: SetParameterAttributesResponse,
    AddObject: AddObjectResponse,
    DeleteObject: DeleteObjectResponse,
    Reboot: RebootResponse,
    FactoryReset: FactoryResetResponse,
    Download: DownloadResponse,
    Upload: UploadResponse,
    ScheduleInform: ScheduleInformResponse,
    ScheduleDownload: ScheduleDownloadResponse,
    CancelTransfer: CancelTransferResponse,
    GetQueuedTransfers: GetQueuedTransfersResponse,
    GetAllQueuedTransfers: GetAllQueuedTransfersResponse,
}

# Requests the CPE sends to the ACS (TR-069 A.3.3 / A.4.2), paired with their responses.
ACS_METHOD_RESPONSES: dict[type[CwmpModel], type[CwmpModel]] = {
    Inform: InformResponse,
    TransferComplete: TransferCompleteResponse,
    AutonomousTransferComplete: AutonomousTransferCompleteResponse,
    RequestDownload: RequestDownloadResponse,
    GetRPCMethods: GetRPCMethodsResponse,
}

REQUEST_RESPONSE: dict[type[CwmpModel], type[CwmpModel]] = {**CPE_METHOD_RESPONSES, **ACS_METHOD_RESPONSES}

# What the ACS answers to a CPE's GetRPCMethods (TR-069 A.3.3: the ACS methods it supports).
ACS_RPC_METHODS: tuple[str, ...] = (
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "RequestDownload",
)


class Envelope(CwmpModel):
    """One SOAP envelope: the cwmp header elements and exactly one body message.

    `version` is the protocol version the message is written in (see cwmp.parse.detect_version
    for how a received envelope's version is derived).
    """

    id: str | None = None
    hold_requests: bool | None = None
    no_more_requests: bool | None = None
    session_timeout: int | None = None
    supported_cwmp_versions: str | None = None
    use_cwmp_version: str | None = None
    body: Message
    version: CwmpVersion = CwmpVersion.V1_0
