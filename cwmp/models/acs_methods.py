"""RPCs the CPE calls on the ACS, and the ACS's responses (TR-069 A.3.3 and A.4.2)."""

from __future__ import annotations

from typing import Literal

from cwmp.models.base import CwmpModel, CwmpTime
from cwmp.models.structs import ArgStruct, DeviceIdStruct, EventStruct, FaultStruct, ParameterValue


class Inform(CwmpModel):
    kind: Literal["Inform"] = "Inform"
    device_id: DeviceIdStruct
    events: tuple[EventStruct, ...] = ()
    max_envelopes: int = 1
    current_time: CwmpTime = None
    retry_count: int = 0
    parameters: tuple[ParameterValue, ...] = ()

    def inform_parameter(self, name: str) -> str | None:
        """Value of a parameter carried in the Inform's ParameterList, None when absent."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter.value
        return None

    def has_event(self, event_code: str) -> bool:
        return any(event.event_code == event_code for event in self.events)


class InformResponse(CwmpModel):
    kind: Literal["InformResponse"] = "InformResponse"
    # TR-069 A.3.3.1: the ACS MUST set MaxEnvelopes to 1.
    max_envelopes: int = 1


class TransferComplete(CwmpModel):
    kind: Literal["TransferComplete"] = "TransferComplete"
    command_key: str = ""
    fault: FaultStruct = FaultStruct()
    start_time: CwmpTime = None
    complete_time: CwmpTime = None


class TransferCompleteResponse(CwmpModel):
    kind: Literal["TransferCompleteResponse"] = "TransferCompleteResponse"


class AutonomousTransferComplete(CwmpModel):
    """CWMP 1.1+ (TR-069 Amd 2, A.3.3.3)."""

    kind: Literal["AutonomousTransferComplete"] = "AutonomousTransferComplete"
    announce_url: str = ""
    transfer_url: str = ""
    is_download: bool = True
    file_type: str = ""
    file_size: int = 0
    target_file_name: str = ""
    fault: FaultStruct = FaultStruct()
    start_time: CwmpTime = None
    complete_time: CwmpTime = None


class AutonomousTransferCompleteResponse(CwmpModel):
    kind: Literal["AutonomousTransferCompleteResponse"] = "AutonomousTransferCompleteResponse"


class RequestDownload(CwmpModel):
    kind: Literal["RequestDownload"] = "RequestDownload"
    file_type: str
    file_type_args: tuple[ArgStruct, ...] = ()


class RequestDownloadResponse(CwmpModel):
    kind: Literal["RequestDownloadResponse"] = "RequestDownloadResponse"
