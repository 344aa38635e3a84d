"""Whole ACS sessions walked with plain calls: no sockets, no database, no clock."""

from __future__ import annotations

import json

import pytest

from cwmp import CwmpFault, CwmpVersion, LocalProtocolError, RemoteProtocolError, parse, serialize
from cwmp import models as m
from cwmp.session import (
    TRANSITIONS,
    AcsSession,
    CpeRequestReceived,
    EmptyPost,
    FaultReceived,
    InformReceived,
    ResponseReceived,
    SessionPhase,
    SessionSnapshot,
)

DEVICE = m.DeviceIdStruct(manufacturer="ACME", oui="00147F", product_class="Box 1", serial_number="SN1")


def inform(version: CwmpVersion = CwmpVersion.V1_0, **headers: object) -> m.Envelope:
    body = m.Inform(device_id=DEVICE, events=(m.EventStruct(event_code="1 BOOT"),))
    return m.Envelope.model_validate({"id": "i1", "body": body, "version": version, **headers})


def cpe(body: m.Message, envelope_id: str | None = "c1", **headers: object) -> m.Envelope:
    return m.Envelope.model_validate({"id": envelope_id, "body": body, **headers})


def through_wire(envelope: m.Envelope) -> m.Envelope:
    return parse(serialize(envelope))


def started(**headers: object) -> AcsSession:
    session = AcsSession()
    session.receive(inform(**headers))
    session.reply_to_inform()
    return session


def test_boot_session_with_transfer_complete_two_requests_and_204() -> None:
    session = AcsSession()
    event = session.receive(through_wire(inform()))
    assert isinstance(event, InformReceived) and event.device_id == "00147F-Box%201-SN1"
    reply = session.reply_to_inform()
    assert reply.body == m.InformResponse(max_envelopes=1) and reply.id == "i1"

    transfer = m.TransferComplete(command_key="fw", fault=m.FaultStruct())
    event = session.receive(through_wire(cpe(transfer, "t1")))
    assert isinstance(event, CpeRequestReceived) and event.supported
    reply = session.reply_to_cpe_request(event.request)
    assert reply.body == m.TransferCompleteResponse() and reply.id == "t1"

    assert isinstance(session.receive(None), EmptyPost)
    assert session.phase is SessionPhase.ACS_REQUESTS

    get = m.GetParameterValues(names=("Device.DeviceInfo.",))
    sent = session.send_request(get, "r1")
    assert sent.id == "r1" and session.phase is SessionPhase.AWAIT_RESPONSE
    answer = m.GetParameterValuesResponse(parameters=(m.ParameterValue(name="Device.DeviceInfo.X", value="1"),))
    event = session.receive(through_wire(cpe(answer, "r1")))
    assert event == ResponseReceived("r1", get, answer)

    session.send_request(m.Reboot(command_key="k"), "r2")
    event = session.receive(cpe(m.RebootResponse(), "r2"))
    assert isinstance(event, ResponseReceived) and event.request == m.Reboot(command_key="k")

    session.end()
    assert session.phase is SessionPhase.ENDED
    assert session.snapshot.messages_received == 5 and session.snapshot.messages_sent == 4


def test_fault_response_is_matched_to_the_request() -> None:
    session = started()
    session.receive(None)
    request = m.SetParameterValues(parameters=(m.ParameterValue(name="A", value="x"),))
    session.send_request(request, "r1")
    fault = m.Fault(
        fault_code=9003, set_parameter_values_faults=(m.SetParameterValuesFault(parameter_name="A", fault_code=9007),)
    )
    event = session.receive(cpe(fault, "r1"))
    assert event == FaultReceived("r1", request, fault)
    assert session.phase is SessionPhase.ACS_REQUESTS


def test_hold_requests_forbids_cpe_requests() -> None:
    session = AcsSession()
    session.receive(inform())
    reply = session.reply_to_inform(hold_requests=True)
    assert reply.hold_requests is True
    with pytest.raises(RemoteProtocolError, match="HoldRequests"):
        session.receive(cpe(m.TransferComplete()))


def test_hold_requests_on_an_acs_request_is_sent_and_cleared_by_the_next() -> None:
    session = started()
    session.receive(None)
    assert session.send_request(m.GetRPCMethods(), "r1", hold_requests=True).hold_requests is True
    session.receive(cpe(m.GetRPCMethodsResponse(methods=("Inform",)), "r1"))
    assert session.send_request(m.GetRPCMethods(), "r2").hold_requests is None
    assert session.snapshot.hold_requests is False


def test_unknown_and_unsupported_cpe_requests_get_fault_8000() -> None:
    session = started()
    event = session.receive(cpe(m.UnknownMessage(name="Kicked", namespace="urn:dslforum-org:cwmp-1-0"), "k1"))
    assert isinstance(event, CpeRequestReceived) and not event.supported
    reply = session.reply_to_cpe_request(event.request)
    assert isinstance(reply.body, m.Fault) and reply.body.fault_code == 8000 and reply.id == "k1"
    assert b"<FaultCode>8000</FaultCode>" in serialize(reply)


def test_cpe_get_rpc_methods_is_answered_with_acs_methods() -> None:
    session = started()
    event = session.receive(cpe(m.GetRPCMethods()))
    assert isinstance(event, CpeRequestReceived)
    body = session.reply_to_cpe_request(event.request).body
    assert isinstance(body, m.GetRPCMethodsResponse) and "TransferComplete" in body.methods


def test_version_negotiation_answers_use_cwmp_version() -> None:
    session = AcsSession()
    event = session.receive(inform(CwmpVersion.V1_2, supported_cwmp_versions="1.0,1.2,1.4"))
    assert isinstance(event, InformReceived) and event.version is CwmpVersion.V1_4
    reply = session.reply_to_inform()
    assert reply.use_cwmp_version == "1.4" and reply.version is CwmpVersion.V1_4
    assert through_wire(reply).version is CwmpVersion.V1_4


def test_replies_use_the_cpe_namespace() -> None:
    session = AcsSession()
    session.receive(inform(CwmpVersion.V1_1))
    assert b"urn:dslforum-org:cwmp-1-1" in serialize(session.reply_to_inform())


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        (["empty"], RemoteProtocolError),  # a message before Inform
        (["response"], RemoteProtocolError),
        (["inform", "reply", "inform"], RemoteProtocolError),  # second Inform
        (["inform", "reply", "response"], RemoteProtocolError),  # response, nothing pending
        (["inform", "reply", "empty", "request"], RemoteProtocolError),  # CPE request after empty POST
        (["inform", "reply", "empty", "send", "empty"], RemoteProtocolError),  # empty while awaiting
        (["inform", "reply", "send"], LocalProtocolError),  # ACS request before the empty POST
        (["inform", "reply", "end"], LocalProtocolError),
        (["inform", "send"], LocalProtocolError),
        (["inform", "empty"], LocalProtocolError),  # InformResponse never sent
        (["inform", "reply", "empty", "send", "send"], LocalProtocolError),  # two outstanding
        (["inform", "reply", "empty", "end", "empty"], RemoteProtocolError),  # after 204
    ],
)
def test_out_of_order_moves_raise_the_right_error(steps: list[str], error: type[Exception]) -> None:
    session = AcsSession()
    actions = {
        "inform": lambda: session.receive(inform()),
        "reply": session.reply_to_inform,
        "empty": lambda: session.receive(None),
        "request": lambda: session.receive(cpe(m.TransferComplete())),
        "response": lambda: session.receive(cpe(m.RebootResponse())),
        "send": lambda: session.send_request(m.Reboot(), "r"),
        "end": session.end,
    }
    for step in steps[:-1]:
        actions[step]()
    with pytest.raises(error) as caught:
        actions[steps[-1]]()
    assert caught.value.reason  # type: ignore[attr-defined]


def test_response_of_the_wrong_type_or_id_is_the_cpes_fault() -> None:
    session = started()
    session.receive(None)
    session.send_request(m.Reboot(), "r1")
    with pytest.raises(RemoteProtocolError, match="answered Reboot with FactoryResetResponse"):
        session.receive(cpe(m.FactoryResetResponse(), "r1"))
    other = started()
    other.receive(None)
    other.send_request(m.Reboot(), "r1")
    with pytest.raises(RemoteProtocolError, match="cwmp:ID"):
        other.receive(cpe(m.RebootResponse(), "r9"))


def test_response_without_id_is_tolerated() -> None:
    session = started()
    session.receive(None)
    session.send_request(m.Reboot(), "r1")
    assert isinstance(session.receive(cpe(m.RebootResponse(), None)), ResponseReceived)


def test_no_more_requests_means_no_further_cpe_requests() -> None:
    session = AcsSession()
    session.receive(inform(no_more_requests=True))
    session.reply_to_inform()
    with pytest.raises(RemoteProtocolError, match="NoMoreRequests"):
        session.receive(cpe(m.TransferComplete()))
    fine = AcsSession()
    fine.receive(inform(no_more_requests=True))
    fine.reply_to_inform()
    assert isinstance(fine.receive(None), EmptyPost)


def test_empty_post_again_in_acs_requests_is_fine() -> None:
    session = started()
    session.receive(None)
    assert isinstance(session.receive(None), EmptyPost)
    session.end()


def test_fault_reply_to_a_cpe_request_keeps_the_session_and_to_inform_ends_it() -> None:
    session = started()
    session.receive(cpe(m.RequestDownload(file_type="1 Firmware Upgrade Image"), "d1"))
    reply = session.fault_reply(CwmpFault(8005, "Retry request"), "d1")
    assert isinstance(reply.body, m.Fault) and reply.body.fault_code == 8005 and reply.id == "d1"
    assert session.phase is SessionPhase.CPE_REQUESTS
    other = AcsSession()
    other.receive(inform())
    other.fault_reply(CwmpFault(8001, "Request denied"), "i1")
    assert other.phase is SessionPhase.ENDED


def test_snapshot_round_trips_through_json_mid_session_and_continues_identically() -> None:
    def walk(session: AcsSession, resume: bool) -> list[object]:
        trace: list[object] = []
        trace.append(session.receive(inform()))
        trace.append(session.reply_to_inform())
        trace.append(session.receive(None))
        trace.append(session.send_request(m.GetParameterNames(parameter_path="Device.", next_level=True), "r1"))
        if resume:
            stored = json.dumps(session.snapshot.model_dump(mode="json"))
            session = AcsSession(SessionSnapshot.model_validate(json.loads(stored)))
        trace.append(session.receive(cpe(m.GetParameterNamesResponse(), "r1")))
        trace.append(session.send_request(m.Reboot(), "r2"))
        trace.append(session.receive(cpe(m.RebootResponse(), "r2")))
        session.end()
        trace.append(session.snapshot)
        return trace

    assert walk(AcsSession(), resume=False) == walk(AcsSession(), resume=True)


def test_snapshot_carries_the_pending_request_as_a_tagged_union() -> None:
    session = started()
    session.receive(None)
    session.send_request(m.Download(command_key="k", file_type="1 Firmware Upgrade Image", url="http://f"), "r1")
    dumped = session.snapshot.model_dump(mode="json")
    assert dumped["pending_request"]["kind"] == "Download" and dumped["pending_request_kind"] == "Download"
    assert dumped["phase"] == "await_response" and dumped["device_id"] == "00147F-Box%201-SN1"


def test_transition_table_is_the_single_source_of_moves() -> None:
    assert all(phase is not SessionPhase.ENDED for phase, _ in TRANSITIONS)
    assert {target for target in TRANSITIONS.values()} == set(SessionPhase) - {SessionPhase.AWAIT_INFORM}


def test_a_snapshot_taken_or_given_is_independent_of_the_session() -> None:
    given = SessionSnapshot()
    session = AcsSession(given)
    session.receive(inform())
    assert given.phase is SessionPhase.AWAIT_INFORM and given.messages_received == 0
    taken = session.snapshot
    taken.phase = SessionPhase.ENDED
    session.reply_to_inform()
    session.receive(None)
    session.send_request(m.Reboot(command_key="k"), "r1")
    assert taken.pending_request is None and taken.messages_sent == 0
    assert session.phase is SessionPhase.AWAIT_RESPONSE
    assert session.snapshot.pending_request == m.Reboot(command_key="k")
