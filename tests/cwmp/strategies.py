"""Hypothesis strategies producing every CWMP message, valid against the XSD of a version.

Values respect the schema facets (lengths, patterns, enumerations) so that a validation failure
means the serializer is wrong, not the generated data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from cwmp import models as m
from cwmp.timefmt import format_time
from cwmp.versions import CwmpVersion, version_order

# XML can carry any character except most C0 controls, surrogates and U+FFFE/U+FFFF.
_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"), include_characters="\t\n\r")


def text(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(_CHARS, max_size=max_size)


def word(max_size: int = 10) -> st.SearchStrategy[str]:
    return st.text("abcXYZ019_.", min_size=1, max_size=max_size)


UINT = st.integers(0, 2**32 - 1)
TIMES = st.one_of(
    st.none(),
    st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.builds(
        lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes))),
        st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1)),
        st.integers(-14 * 60, 14 * 60),
    ),
)
DOWNLOAD_FILE_TYPES = st.sampled_from(["1 Firmware Upgrade Image", "2 Web Content", "3 Vendor Configuration File"])
UPLOAD_FILE_TYPES = st.sampled_from(["1 Vendor Configuration File", "2 Vendor Log File"])
EVENT_CODES = st.sampled_from(
    [
        "0 BOOTSTRAP",
        "1 BOOT",
        "2 PERIODIC",
        "4 VALUE CHANGE",
        "6 CONNECTION REQUEST",
        "7 TRANSFER COMPLETE",
        "8 DIAGNOSTICS COMPLETE",
        "M Reboot",
        "M Download",
        "X 00147F VendorEvent",
    ]
)
PARAMETER_NAMES = st.lists(st.sampled_from(["Device.", "Device.DeviceInfo.", "InternetGatewayDevice.X_1.Y"]))


def _typed_value() -> st.SearchStrategy[tuple[str, str]]:
    return st.one_of(
        st.tuples(st.just("xsd:string"), text(40)),
        st.tuples(st.just("xsd:unsignedInt"), UINT.map(str)),
        st.tuples(st.just("xsd:int"), st.integers(-(2**31), 2**31 - 1).map(str)),
        st.tuples(st.just("xsd:boolean"), st.sampled_from(["0", "1", "true", "false"])),
        st.tuples(st.just("xsd:dateTime"), TIMES.map(format_time)),
    )


PARAMETER_VALUES = st.builds(
    lambda name, typed: m.ParameterValue(name=name, type=typed[0], value=typed[1]), word(30), _typed_value()
)
FAULT_STRUCT_CODES_1_0 = [0, 9001, 9002, 9010, 9011, 9012]
# Per-parameter faults are CPE faults; cwmp-1-2 restricts them to that range.
SPV_FAULT_CODES = st.sampled_from([9005, 9006, 9007, 9008, 9850])


def fault_struct(version: CwmpVersion) -> st.SearchStrategy[m.FaultStruct]:
    codes = FAULT_STRUCT_CODES_1_0 + ([9015, 9019, 9850] if version != CwmpVersion.V1_0 else [])
    return st.builds(m.FaultStruct, fault_code=st.sampled_from(codes), fault_string=text(30))


def fault_codes(version: CwmpVersion) -> st.SearchStrategy[int]:
    codes = [*range(8000, 8006), *range(9000, 9014), 8850, 9850]
    if version_order(version) >= (1, 1):
        codes += list(range(9014, 9020))
    if version_order(version) >= (1, 2):
        codes += list(range(9020, 9033))
    if version == CwmpVersion.V1_4:
        codes.append(8006)
    return st.sampled_from(codes)


def _messages(version: CwmpVersion) -> dict[type[Any], st.SearchStrategy[Any]]:
    key = text(32).filter(lambda s: len(s) <= 32)
    object_name = word(20).map(lambda s: s + ".")
    access_list = st.lists(st.just("Subscriber"), max_size=2).map(tuple)
    return {
        m.GetRPCMethods: st.builds(m.GetRPCMethods),
        m.GetRPCMethodsResponse: st.builds(m.GetRPCMethodsResponse, methods=st.lists(word(), min_size=1).map(tuple)),
        m.GetParameterNames: st.builds(m.GetParameterNames, parameter_path=text(40), next_level=st.booleans()),
        m.GetParameterNamesResponse: st.builds(
            m.GetParameterNamesResponse,
            parameters=st.lists(st.builds(m.ParameterInfo, name=word(30), writable=st.booleans())).map(tuple),
        ),
        m.GetParameterValues: st.builds(m.GetParameterValues, names=st.lists(word(30), min_size=1).map(tuple)),
        m.GetParameterValuesResponse: st.builds(
            m.GetParameterValuesResponse, parameters=st.lists(PARAMETER_VALUES, max_size=5).map(tuple)
        ),
        m.SetParameterValues: st.builds(
            m.SetParameterValues, parameters=st.lists(PARAMETER_VALUES, max_size=5).map(tuple), parameter_key=key
        ),
        m.SetParameterValuesResponse: st.builds(m.SetParameterValuesResponse, status=st.sampled_from([0, 1])),
        m.GetParameterAttributes: st.builds(m.GetParameterAttributes, names=st.lists(word(30), min_size=1).map(tuple)),
        m.GetParameterAttributesResponse: st.builds(
            m.GetParameterAttributesResponse,
            parameters=st.lists(
                st.builds(
                    m.ParameterAttribute,
                    name=word(30),
                    notification=st.sampled_from([0, 1, 2]),
                    access_list=access_list,
                ),
                max_size=3,
            ).map(tuple),
        ),
        m.SetParameterAttributes: st.builds(
            m.SetParameterAttributes,
            parameters=st.lists(
                st.builds(
                    m.SetParameterAttributesStruct,
                    name=word(30),
                    notification_change=st.booleans(),
                    notification=st.sampled_from([0, 1, 2]),
                    access_list_change=st.booleans(),
                    access_list=access_list,
                ),
                min_size=1,
                max_size=3,
            ).map(tuple),
        ),
        m.SetParameterAttributesResponse: st.builds(m.SetParameterAttributesResponse),
        m.AddObject: st.builds(m.AddObject, object_name=object_name, parameter_key=key),
        m.AddObjectResponse: st.builds(
            m.AddObjectResponse, instance_number=st.integers(1, 2**32 - 1), status=st.sampled_from([0, 1])
        ),
        m.DeleteObject: st.builds(m.DeleteObject, object_name=object_name, parameter_key=key),
        m.DeleteObjectResponse: st.builds(m.DeleteObjectResponse, status=st.sampled_from([0, 1])),
        m.Reboot: st.builds(m.Reboot, command_key=key),
        m.RebootResponse: st.builds(m.RebootResponse),
        m.FactoryReset: st.builds(m.FactoryReset),
        m.FactoryResetResponse: st.builds(m.FactoryResetResponse),
        m.Download: st.builds(
            m.Download,
            command_key=key,
            file_type=DOWNLOAD_FILE_TYPES,
            url=text(60),
            username=text(),
            password=text(),
            file_size=UINT,
            target_file_name=text(),
            delay_seconds=UINT,
            success_url=text(),
            failure_url=text(),
        ),
        m.DownloadResponse: st.builds(
            m.DownloadResponse, status=st.sampled_from([0, 1]), start_time=TIMES, complete_time=TIMES
        ),
        m.Upload: st.builds(
            m.Upload,
            command_key=key,
            file_type=UPLOAD_FILE_TYPES,
            url=text(60),
            username=text(),
            password=text(),
            delay_seconds=UINT,
        ),
        m.UploadResponse: st.builds(
            m.UploadResponse, status=st.sampled_from([0, 1]), start_time=TIMES, complete_time=TIMES
        ),
        m.ScheduleInform: st.builds(m.ScheduleInform, delay_seconds=UINT, command_key=key),
        m.ScheduleInformResponse: st.builds(m.ScheduleInformResponse),
        m.ScheduleDownload: st.builds(
            m.ScheduleDownload,
            command_key=key,
            file_type=DOWNLOAD_FILE_TYPES,
            url=text(60),
            username=text(),
            password=text(),
            file_size=UINT,
            target_file_name=text(),
            time_windows=st.lists(
                st.builds(
                    m.TimeWindowStruct,
                    window_start=UINT,
                    window_end=UINT,
                    window_mode=st.sampled_from(["1 At Any Time", "2 Immediately", "4 Confirmation Needed"]),
                    user_message=text(),
                    max_retries=st.integers(-1, 10),
                ),
                min_size=1,
                max_size=2,
            ).map(tuple),
        ),
        m.ScheduleDownloadResponse: st.builds(m.ScheduleDownloadResponse),
        m.CancelTransfer: st.builds(m.CancelTransfer, command_key=key),
        m.CancelTransferResponse: st.builds(m.CancelTransferResponse),
        m.GetQueuedTransfers: st.builds(m.GetQueuedTransfers),
        m.GetQueuedTransfersResponse: st.builds(
            m.GetQueuedTransfersResponse,
            transfers=st.lists(
                st.builds(m.QueuedTransferStruct, command_key=key, state=st.sampled_from([1, 2, 3])), max_size=3
            ).map(tuple),
        ),
        m.GetAllQueuedTransfers: st.builds(m.GetAllQueuedTransfers),
        m.GetAllQueuedTransfersResponse: st.builds(
            m.GetAllQueuedTransfersResponse,
            transfers=st.lists(
                st.builds(
                    m.AllQueuedTransferStruct,
                    command_key=key,
                    state=st.sampled_from([1, 2, 3]),
                    is_download=st.booleans(),
                    file_type=DOWNLOAD_FILE_TYPES,
                    file_size=UINT,
                    target_file_name=text(),
                ),
                max_size=3,
            ).map(tuple),
        ),
        m.Inform: st.builds(
            m.Inform,
            device_id=st.builds(
                m.DeviceIdStruct,
                manufacturer=text(),
                oui=st.from_regex(r"\A[0-9A-F]{6}\Z"),
                product_class=text(),
                serial_number=text(),
            ),
            events=st.lists(st.builds(m.EventStruct, event_code=EVENT_CODES, command_key=key), max_size=3).map(tuple),
            max_envelopes=UINT,
            current_time=TIMES,
            retry_count=UINT,
            parameters=st.lists(PARAMETER_VALUES, max_size=4).map(tuple),
        ),
        m.InformResponse: st.builds(m.InformResponse, max_envelopes=UINT),
        m.TransferComplete: st.builds(
            m.TransferComplete, command_key=key, fault=fault_struct(version), start_time=TIMES, complete_time=TIMES
        ),
        m.TransferCompleteResponse: st.builds(m.TransferCompleteResponse),
        m.AutonomousTransferComplete: st.builds(
            m.AutonomousTransferComplete,
            announce_url=text(60),
            transfer_url=text(60),
            is_download=st.booleans(),
            file_type=DOWNLOAD_FILE_TYPES,
            file_size=UINT,
            target_file_name=text(),
            fault=fault_struct(version),
            start_time=TIMES,
            complete_time=TIMES,
        ),
        m.AutonomousTransferCompleteResponse: st.builds(m.AutonomousTransferCompleteResponse),
        m.RequestDownload: st.builds(
            m.RequestDownload,
            file_type=DOWNLOAD_FILE_TYPES,
            file_type_args=st.lists(st.builds(m.ArgStruct, name=word(), value=text()), max_size=3).map(tuple),
        ),
        m.RequestDownloadResponse: st.builds(m.RequestDownloadResponse),
        m.Fault: st.builds(
            m.Fault,
            fault_code=fault_codes(version),
            fault_string=text(40),
            set_parameter_values_faults=st.lists(
                st.builds(
                    m.SetParameterValuesFault, parameter_name=word(30), fault_code=SPV_FAULT_CODES, fault_string=text()
                ),
                max_size=3,
            ).map(tuple),
            soap_faultcode=st.sampled_from(["Client", "Server"]),
        ),
    }


MIN_VERSION = {
    m.GetAllQueuedTransfers: (1, 1),
    m.GetAllQueuedTransfersResponse: (1, 1),
    m.AutonomousTransferComplete: (1, 1),
    m.AutonomousTransferCompleteResponse: (1, 1),
    m.ScheduleDownload: (1, 2),
    m.ScheduleDownloadResponse: (1, 2),
    m.CancelTransfer: (1, 2),
    m.CancelTransferResponse: (1, 2),
}


def message_classes(version: CwmpVersion) -> list[type[Any]]:
    return [cls for cls in _messages(version) if version_order(version) >= MIN_VERSION.get(cls, (1, 0))]


def messages(version: CwmpVersion, cls: type[Any] | None = None) -> st.SearchStrategy[Any]:
    table = _messages(version)
    if cls is not None:
        return table[cls]
    return st.one_of([table[c] for c in message_classes(version)])


def headers(version: CwmpVersion) -> st.SearchStrategy[dict[str, Any]]:
    """Headers consistent with `version`, so that the parser detects the same version back."""
    base = st.fixed_dictionaries(
        {},
        optional={"id": text(20), "hold_requests": st.booleans(), "no_more_requests": st.booleans()},
    )
    extra: st.SearchStrategy[dict[str, Any]] = st.just({})
    if version == CwmpVersion.V1_3:
        extra = st.builds(lambda t: {"session_timeout": t}, UINT)
    elif version == CwmpVersion.V1_4:
        extra = st.one_of(
            st.just({"supported_cwmp_versions": "1.0,1.1,1.2,1.3,1.4"}),
            st.just({"use_cwmp_version": "1.4"}),
            st.builds(lambda t: {"session_timeout": t, "supported_cwmp_versions": "1.2,1.4"}, UINT),
        )
    return st.builds(lambda a, b: {**a, **b}, base, extra)


@st.composite
def envelopes(draw: st.DrawFn, version: CwmpVersion | None = None) -> m.Envelope:
    chosen = version or draw(st.sampled_from(list(CwmpVersion)))
    body = draw(messages(chosen))
    return m.Envelope(body=body, version=chosen, **draw(headers(chosen)))
