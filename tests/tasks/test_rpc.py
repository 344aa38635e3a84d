"""tasks/rpc.py, pure: the RPC each task kind sends, and what each answer or fault means."""

from __future__ import annotations

from typing import Any

import pytest

from cwmp import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    Download,
    DownloadResponse,
    FactoryReset,
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    Message,
    ParameterInfo,
    ParameterValue,
    Reboot,
    RebootResponse,
    ScheduleInform,
    SetParameterValues,
    SetParameterValuesFault,
    SetParameterValuesResponse,
)
from tasks.rpc import REFRESH_CHUNK, Next, Outcome, TaskProtocolError, apply_fault, apply_response, build_request

KEY = "65f000000000000000000001"
ROOT = "InternetGatewayDevice."


def task(kind: str, **params: Any) -> dict[str, Any]:
    return {"_id": KEY, "kind": kind, "params": params, "command_key": KEY, "device_id": "D"}


def values(*names: str) -> GetParameterValuesResponse:
    return GetParameterValuesResponse(
        parameters=tuple(ParameterValue(name=name, value="v", type="xsd:string") for name in names)
    )


def test_simple_kinds_build_their_rpc_with_the_task_id_as_key() -> None:
    assert build_request(task("reboot"), {}, {}) == Reboot(command_key=KEY)
    assert build_request(task("factory_reset"), {}, {}) == FactoryReset()
    assert build_request(task("get_rpc_methods"), {}, {}) == GetRPCMethods()
    assert build_request(task("get_parameter_values", names=[ROOT + "DeviceInfo."]), {}, {}) == GetParameterValues(
        names=(ROOT + "DeviceInfo.",)
    )
    assert build_request(task("schedule_inform", delay_seconds=30), {}, {}) == ScheduleInform(
        delay_seconds=30, command_key=KEY
    )
    assert build_request(task("delete_object", object=ROOT + "X.2."), {}, {}) == DeleteObject(
        object_name=ROOT + "X.2.", parameter_key=KEY
    )
    download = build_request(task("download", file_type="1 Firmware Upgrade Image", url="http://h/f"), {}, {})
    assert isinstance(download, Download) and download.command_key == KEY and download.url == "http://h/f"


def test_set_values_types_come_from_the_request_then_the_cache_then_string() -> None:
    settings = [
        {"name": ROOT + "A", "value": 5, "type": "xsd:int"},
        {"name": ROOT + "B", "value": True},
        {"name": ROOT + "C", "value": "x"},
    ]
    message = build_request(task("set_parameter_values", values=settings), {}, {ROOT + "B": "xsd:boolean"})
    assert isinstance(message, SetParameterValues) and message.parameter_key == KEY
    assert [(p.name, p.value, p.type) for p in message.parameters] == [
        (ROOT + "A", "5", "xsd:int"),
        (ROOT + "B", "true", "xsd:boolean"),
        (ROOT + "C", "x", "xsd:string"),
    ]


def test_answers_settle_reads_writes_and_proofs() -> None:
    read = task("get_parameter_values", names=[ROOT + "A"])
    outcome = apply_response(read, {}, build_request(read, {}, {}), values(ROOT + "A"))
    assert outcome.next is Next.DONE
    assert outcome.result == {"values": [{"name": ROOT + "A", "value": "v", "type": "xsd:string"}]}
    assert outcome.cache.values == [(ROOT + "A", "v", "xsd:string")]

    methods = apply_response(task("get_rpc_methods"), {}, GetRPCMethods(), GetRPCMethodsResponse(methods=("Inform",)))
    assert (methods.next, methods.result) == (Next.DONE, {"methods": ["Inform"]})

    reboot = apply_response(task("reboot"), {}, Reboot(command_key=KEY), RebootResponse())
    assert reboot.next is Next.AWAIT_INFORM  # done only when the next Inform says M Reboot

    spv = task("set_parameter_values", values=[{"name": ROOT + "A", "value": "1"}])
    sent = build_request(spv, {}, {})
    applied = apply_response(spv, {}, sent, SetParameterValuesResponse(status=1))
    assert applied.next is Next.DONE and applied.result == {"status": 1, "applied_after_reboot": True}
    assert applied.cache.values == [(ROOT + "A", "1", "xsd:string")]

    deleted = apply_response(
        task("delete_object", object=ROOT + "X.2."),
        {},
        DeleteObject(object_name=ROOT + "X.2.", parameter_key=KEY),
        DeleteObjectResponse(status=0),
    )
    assert deleted.next is Next.DONE and deleted.cache.delete == [ROOT + "X.2."]


def test_a_transfer_is_done_at_once_or_waits_for_transfer_complete() -> None:
    download = task("download", file_type="1 Firmware Upgrade Image", url="http://h/f")
    sent = build_request(download, {}, {})
    assert apply_response(download, {}, sent, DownloadResponse(status=1)).next is Next.AWAIT_TRANSFER
    assert apply_response(download, {}, sent, DownloadResponse(status=0)).next is Next.DONE


def test_add_object_with_values_sets_them_on_the_new_instance_in_a_second_step() -> None:
    add = task("add_object", object=ROOT + "X.", values=[{"name": "Enable", "value": True, "type": "xsd:boolean"}])
    first = build_request(add, {}, {})
    assert first == AddObject(object_name=ROOT + "X.", parameter_key=KEY)
    created = apply_response(add, {}, first, AddObjectResponse(instance_number=3, status=0))
    assert created.next is Next.STEP and created.state == {"instance": 3}
    assert created.cache.names == [(ROOT + "X.3.", True)]
    second = build_request(add, created.state, {})
    assert isinstance(second, SetParameterValues)
    assert [(p.name, p.value) for p in second.parameters] == [(ROOT + "X.3.Enable", "true")]
    done = apply_response(add, created.state, second, SetParameterValuesResponse(status=0))
    assert done.next is Next.DONE and done.result == {"instance_number": 3, "object": ROOT + "X.3.", "set_status": 0}


def test_add_object_sets_its_other_values_with_the_instances_in_one_set_parameter_values() -> None:
    add = task(
        "add_object",
        object=ROOT + "X.",
        values=[{"name": "Port", "value": 80, "type": "xsd:unsignedInt"}],
        other_values=[{"name": ROOT + "A", "value": "a"}],
    )
    created = apply_response(add, {}, build_request(add, {}, {}), AddObjectResponse(instance_number=2, status=0))
    assert created.next is Next.STEP
    second = build_request(add, created.state, {ROOT + "A": "xsd:string"})
    assert isinstance(second, SetParameterValues) and second.parameter_key == KEY
    assert [(p.name, p.value, p.type) for p in second.parameters] == [
        (ROOT + "X.2.Port", "80", "xsd:unsignedInt"),
        (ROOT + "A", "a", "xsd:string"),
    ]
    done = apply_response(add, created.state, second, SetParameterValuesResponse(status=0))
    assert done.next is Next.DONE and done.cache.values == [
        (ROOT + "X.2.Port", "80", "xsd:unsignedInt"),
        (ROOT + "A", "a", "xsd:string"),
    ]
    no_own = task("add_object", object=ROOT + "X.", other_values=[{"name": ROOT + "A", "value": "a"}])
    alone = apply_response(no_own, {}, build_request(no_own, {}, {}), AddObjectResponse(instance_number=1, status=0))
    assert alone.next is Next.STEP
    assert [p.name for p in build_request(no_own, alone.state, {}).parameters] == [ROOT + "A"]  # type: ignore[attr-defined]


def test_a_refused_add_object_still_sets_its_other_values_and_fails_with_its_fault() -> None:
    add = task(
        "add_object",
        object=ROOT + "X.",
        values=[{"name": "Port", "value": 80}],
        other_values=[{"name": ROOT + "A", "value": "a"}],
    )
    refused = apply_fault(add, {}, Fault(fault_code=9004, fault_string="Resources exceeded"))
    assert refused.next is Next.STEP
    alone = build_request(add, refused.state, {})
    assert isinstance(alone, SetParameterValues)
    assert [p.name for p in alone.parameters] == [ROOT + "A"]  # the instance's values need the instance
    ended = apply_response(add, refused.state, alone, SetParameterValuesResponse(status=0))
    assert ended.next is Next.FAILED and ended.fault is not None and ended.fault["code"] == 9004
    assert ended.cache.values == [(ROOT + "A", "a", "xsd:string")]
    plain = task("add_object", object=ROOT + "X.")
    assert apply_fault(plain, {}, Fault(fault_code=9004, fault_string="Resources exceeded")).next is Next.FAILED
    again = apply_fault(add, refused.state, Fault(fault_code=9003, fault_string="Invalid arguments"))
    assert again.next is Next.FAILED and again.fault is not None and again.fault["code"] == 9003


def test_a_set_values_fault_keeps_the_per_parameter_detail() -> None:
    spv = task("set_parameter_values", values=[{"name": ROOT + "A", "value": "x"}])
    fault = Fault(
        fault_code=9003,
        fault_string="Invalid arguments",
        set_parameter_values_faults=(SetParameterValuesFault(parameter_name=ROOT + "A", fault_code=9007),),
    )
    outcome = apply_fault(spv, {}, fault)
    assert outcome.next is Next.FAILED and outcome.reason == "device fault 9003"
    assert outcome.fault == {
        "code": 9003,
        "string": "Invalid arguments",
        "detail": [{"parameter": ROOT + "A", "code": 9007, "string": ""}],
    }


def test_an_answer_that_does_not_fit_the_request_is_a_protocol_error() -> None:
    refresh = task("refresh", path=ROOT + "DeviceInfo.")
    with pytest.raises(TaskProtocolError):
        apply_response(refresh, {"names": []}, GetParameterValues(names=()), RebootResponse())


# -- refresh: names first, then the subtree, else the names in chunks (faults 9002 / 9004) -----


def _names_answer(count: int) -> tuple[list[str], GetParameterNamesResponse]:
    leaves = [f"{ROOT}DeviceInfo.P{index}" for index in range(count)]
    infos = [ParameterInfo(name=ROOT + "DeviceInfo.", writable=False)]
    infos += [ParameterInfo(name=name, writable=False) for name in leaves]
    return leaves, GetParameterNamesResponse(parameters=tuple(infos))


def _step(refresh: dict[str, Any], state: dict[str, Any], answer: Message | Fault) -> tuple[Message, Outcome]:
    request = build_request(refresh, state, {})
    if isinstance(answer, Fault):
        return request, apply_fault(refresh, state, answer)
    return request, apply_response(refresh, state, request, answer)


def test_refresh_reads_the_subtree_in_one_request_when_the_device_can() -> None:
    refresh = task("refresh", path=ROOT + "DeviceInfo.")
    leaves, names = _names_answer(3)
    request, outcome = _step(refresh, {}, names)
    assert request == GetParameterNames(parameter_path=ROOT + "DeviceInfo.", next_level=False)
    assert outcome.next is Next.STEP and outcome.state["names"] == leaves
    request, done = _step(refresh, outcome.state, values(*leaves))
    assert request == GetParameterValues(names=(ROOT + "DeviceInfo.",))
    assert done.next is Next.DONE and done.result == {"names": 4, "values": 3}


@pytest.mark.parametrize("code", [9002, 9004])
def test_refresh_falls_back_to_chunks_of_names_when_the_subtree_is_refused(code: int) -> None:
    refresh = task("refresh", path=ROOT + "DeviceInfo.")
    count = 2 * REFRESH_CHUNK + 7
    leaves, names = _names_answer(count)
    _, outcome = _step(refresh, {}, names)
    _, refused = _step(refresh, outcome.state, Fault(fault_code=code, fault_string="Resources exceeded"))
    assert refused.next is Next.STEP and refused.state["chunked"] is True and refused.state["offset"] == 0
    state = refused.state
    asked: list[tuple[str, ...]] = []
    while True:
        request = build_request(refresh, state, {})
        assert isinstance(request, GetParameterValues)
        asked.append(request.names)
        outcome = apply_response(refresh, state, request, values(*request.names))
        if outcome.next is Next.DONE:
            break
        assert outcome.next is Next.STEP
        state = outcome.state
    assert [len(names) for names in asked] == [REFRESH_CHUNK, REFRESH_CHUNK, 7]
    assert [name for chunk in asked for name in chunk] == leaves
    assert outcome.result == {"names": count + 1, "values": count}


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ({}, 9004),  # GetParameterNames itself refused: nothing to chunk
        ({"names": ["A.B"], "name_count": 1}, 9005),  # another fault than resources exceeded
        ({"names": ["A.B"], "name_count": 1, "chunked": True, "offset": 0}, 9004),  # a chunk refused too
    ],
)
def test_refresh_fails_on_any_other_fault(state: dict[str, Any], code: int) -> None:
    outcome = apply_fault(task("refresh", path="A."), state, Fault(fault_code=code, fault_string="no"))
    assert outcome.next is Next.FAILED and outcome.fault is not None and outcome.fault["code"] == code
