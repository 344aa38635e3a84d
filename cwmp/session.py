"""The ACS side of one CWMP session as a pure state machine (TR-069 3.7.1).

    CPE                                    ACS (this class)
    POST Inform                  ->  receive()      AWAIT_INFORM   -> CPE_REQUESTS
                                 <-  reply_to_inform()
    POST TransferComplete...     ->  receive()      CPE_REQUESTS   (any number)
                                 <-  reply_to_cpe_request()
    empty POST                   ->  receive()      CPE_REQUESTS   -> ACS_REQUESTS
                                 <-  send_request()  ACS_REQUESTS  -> AWAIT_RESPONSE
    POST response / Fault        ->  receive()      AWAIT_RESPONSE -> ACS_REQUESTS
                                 <-  end() (HTTP 204)  ACS_REQUESTS -> ENDED

All allowed moves are in TRANSITIONS; anything else raises RemoteProtocolError when the CPE
made the move and LocalProtocolError when the ACS did. The whole state is a SessionSnapshot,
plain JSON, so a session can continue in another process after the CPE reconnects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, TypeAdapter

from cwmp import models as m
from cwmp.device_id import identity_problem, make_device_id
from cwmp.errors import CwmpFault, LocalProtocolError, ProtocolError, RemoteProtocolError
from cwmp.faults import make_fault
from cwmp.versions import CwmpVersion, negotiate


class SessionPhase(StrEnum):
    AWAIT_INFORM = "await_inform"
    CPE_REQUESTS = "cpe_requests"  # the CPE may send requests until its empty POST
    ACS_REQUESTS = "acs_requests"  # the ACS may send one request, or end the session
    AWAIT_RESPONSE = "await_response"  # one ACS request outstanding
    ENDED = "ended"


class Move(StrEnum):
    INFORM = "Inform"
    CPE_REQUEST = "a CPE request"
    EMPTY_POST = "an empty POST"
    RESPONSE = "a response"
    FAULT = "a Fault"
    SEND_REQUEST = "send a request"
    END = "end the session"


_ACS_MOVES = frozenset({Move.SEND_REQUEST, Move.END})

# The only legal moves. TR-069 3.7.1: Inform first; CPE requests until its empty POST;
# then ACS requests one at a time (MaxEnvelopes 1, A.3.3.1), each answered before the next.
TRANSITIONS: dict[tuple[SessionPhase, Move], SessionPhase] = {
    (SessionPhase.AWAIT_INFORM, Move.INFORM): SessionPhase.CPE_REQUESTS,
    (SessionPhase.CPE_REQUESTS, Move.CPE_REQUEST): SessionPhase.CPE_REQUESTS,
    (SessionPhase.CPE_REQUESTS, Move.EMPTY_POST): SessionPhase.ACS_REQUESTS,
    (SessionPhase.ACS_REQUESTS, Move.EMPTY_POST): SessionPhase.ACS_REQUESTS,
    (SessionPhase.ACS_REQUESTS, Move.SEND_REQUEST): SessionPhase.AWAIT_RESPONSE,
    (SessionPhase.ACS_REQUESTS, Move.END): SessionPhase.ENDED,
    (SessionPhase.AWAIT_RESPONSE, Move.RESPONSE): SessionPhase.ACS_REQUESTS,
    (SessionPhase.AWAIT_RESPONSE, Move.FAULT): SessionPhase.ACS_REQUESTS,
}

# Why a move is illegal in a phase, for the error message (whose fault is in the class).
_WHY: dict[SessionPhase, str] = {
    SessionPhase.AWAIT_INFORM: "a session must start with Inform (TR-069 3.7.1.1)",
    SessionPhase.CPE_REQUESTS: "the CPE is sending its requests; only requests or an empty POST may follow",
    SessionPhase.ACS_REQUESTS: "the CPE sent its empty POST: no CPE requests and no request is pending",
    SessionPhase.AWAIT_RESPONSE: "an ACS request is outstanding; the CPE must answer it first",
    SessionPhase.ENDED: "the session has ended",
}

CPE_REQUESTS_SUPPORTED: tuple[type[m.CwmpModel], ...] = tuple(m.ACS_METHOD_RESPONSES)
_RESPONSE_TYPES = frozenset(m.REQUEST_RESPONSE.values())
_MESSAGE: TypeAdapter[m.Message] = TypeAdapter(m.Message)


class SessionSnapshot(BaseModel):
    """Everything the session knows, JSON-serializable (stored between HTTP requests)."""

    phase: SessionPhase = SessionPhase.AWAIT_INFORM
    version: CwmpVersion = CwmpVersion.V1_0
    device_id: str | None = None
    use_cwmp_version: str | None = None
    cpe_max_envelopes: int = 1
    # The CPE message we still owe an HTTP reply to: "inform" or "cpe_request", and its cwmp:ID.
    reply_owed: str | None = None
    reply_id: str | None = None
    hold_requests: bool = False
    cpe_done: bool = False  # empty POST or NoMoreRequests seen
    pending_request_id: str | None = None
    pending_request_kind: str | None = None
    pending_request: m.Message | None = None
    messages_received: int = 0
    messages_sent: int = 0


@dataclass(frozen=True)
class InformReceived:
    envelope: m.Envelope
    inform: m.Inform
    device_id: str
    version: CwmpVersion


@dataclass(frozen=True)
class CpeRequestReceived:
    """Answer with reply_to_cpe_request(request); unsupported ones get fault 8000 there."""

    envelope: m.Envelope
    request: m.Message
    supported: bool


@dataclass(frozen=True)
class EmptyPost:
    pass


@dataclass(frozen=True)
class ResponseReceived:
    request_id: str
    request: m.Message
    response: m.Message


@dataclass(frozen=True)
class FaultReceived:
    request_id: str
    request: m.Message
    fault: m.Fault


SessionEvent = InformReceived | CpeRequestReceived | EmptyPost | ResponseReceived | FaultReceived


class AcsSession:
    def __init__(self, snapshot: SessionSnapshot | None = None) -> None:
        # A shallow copy is a full one: every field is an enum, a scalar or a frozen message
        # (tuples inside), so nothing the caller holds can change this session's state or back.
        self._state = snapshot.model_copy() if snapshot is not None else SessionSnapshot()

    @property
    def snapshot(self) -> SessionSnapshot:
        return self._state.model_copy()

    @property
    def phase(self) -> SessionPhase:
        return self._state.phase

    @property
    def version(self) -> CwmpVersion:
        return self._state.version

    # ----- what the CPE sends -----

    def receive(self, envelope: m.Envelope | None) -> SessionEvent:
        """One HTTP POST from the CPE; None is the empty POST."""
        self._check_reply_made()
        self._state.messages_received += 1
        if envelope is None:
            self._move(Move.EMPTY_POST)
            self._state.cpe_done = True
            return EmptyPost()
        match envelope.body:
            case m.Inform():
                return self._on_inform(envelope, envelope.body)
            case m.Fault():
                return self._on_fault(envelope, envelope.body)
            case body if type(body) in _RESPONSE_TYPES:
                return self._on_response(envelope, envelope.body)
            case body:
                return self._on_cpe_request(envelope, body)

    def _on_inform(self, envelope: m.Envelope, inform: m.Inform) -> InformReceived:
        self._move(Move.INFORM)
        device = inform.device_id
        problem = identity_problem(device.oui, device.product_class, device.serial_number)
        if problem is not None:
            raise RemoteProtocolError(8003, problem)
        state = self._state
        state.device_id = make_device_id(device.oui, device.product_class, device.serial_number)
        state.version = negotiate(envelope.supported_cwmp_versions, envelope.version)
        # TR-069 Amd 5, 3.7.4: answer SupportedCWMPVersions with the chosen UseCWMPVersion.
        state.use_cwmp_version = state.version.value if envelope.supported_cwmp_versions else None
        state.cpe_max_envelopes = inform.max_envelopes
        state.cpe_done = bool(envelope.no_more_requests)
        self._owe_reply("inform", envelope.id)
        return InformReceived(envelope, inform, state.device_id, state.version)

    def _on_cpe_request(self, envelope: m.Envelope, request: Any) -> CpeRequestReceived:
        self._move(Move.CPE_REQUEST)
        if self._state.hold_requests:
            raise RemoteProtocolError(8003, "CPE sent a request while HoldRequests is true (TR-069 3.4.2)")
        if self._state.cpe_done:
            raise RemoteProtocolError(8003, "CPE sent a request after saying NoMoreRequests")
        self._owe_reply("cpe_request", envelope.id)
        if envelope.no_more_requests:
            self._state.cpe_done = True
        supported = isinstance(request, CPE_REQUESTS_SUPPORTED)
        return CpeRequestReceived(envelope, request, supported)

    def _on_response(self, envelope: m.Envelope, response: m.Message) -> ResponseReceived:
        self._move(Move.RESPONSE)
        request_id, request = self._take_pending(envelope)
        expected = m.REQUEST_RESPONSE[type(request)]
        if response.kind != expected.__name__:
            raise RemoteProtocolError(8003, f"CPE answered {type(request).__name__} with {type(response).__name__}")
        return ResponseReceived(request_id, request, response)

    def _on_fault(self, envelope: m.Envelope, fault: m.Fault) -> FaultReceived:
        self._move(Move.FAULT)
        request_id, request = self._take_pending(envelope)
        return FaultReceived(request_id, request, fault)

    def _take_pending(self, envelope: m.Envelope) -> tuple[str, m.Message]:
        state = self._state
        request_id, request = state.pending_request_id, state.pending_request
        assert request_id is not None and request is not None  # AWAIT_RESPONSE guarantees both
        # TR-069 3.4.2: the response carries the request's cwmp:ID. A missing header is
        # tolerated (MikroTik sends none at all); a different ID is not.
        if envelope.id is not None and envelope.id != request_id:
            raise RemoteProtocolError(8003, f"CPE response has cwmp:ID {envelope.id!r}, expected {request_id!r}")
        state.pending_request_id = state.pending_request_kind = state.pending_request = None
        return request_id, request

    # ----- what the ACS sends -----

    def reply_to_inform(self, hold_requests: bool = False) -> m.Envelope:
        """InformResponse with MaxEnvelopes 1 (TR-069 A.3.3.1), echoing the Inform's cwmp:ID."""
        reply_id = self._settle_reply("inform")
        self._state.hold_requests = hold_requests
        return self._envelope(
            m.InformResponse(max_envelopes=1),
            reply_id,
            hold_requests=hold_requests or None,
            use_cwmp_version=self._state.use_cwmp_version,
        )

    def reply_to_cpe_request(self, request: m.Message, response_body: m.Message | None = None) -> m.Envelope:
        """The response to a CPE request, same cwmp:ID; fault 8000 for unsupported requests."""
        reply_id = self._settle_reply("cpe_request")
        body = response_body if response_body is not None else default_cpe_reply(request)
        return self._envelope(body, reply_id)

    def send_request(self, request: m.Message, request_id: str, hold_requests: bool = False) -> m.Envelope:
        """Send one ACS request; legal only in ACS_REQUESTS (after the empty POST or a response)."""
        if type(request) not in m.CPE_METHOD_RESPONSES:
            raise LocalProtocolError(8002, f"{type(request).__name__} is not a request the ACS can send")
        self._move(Move.SEND_REQUEST)
        state = self._state
        state.pending_request_id, state.pending_request = request_id, request
        state.pending_request_kind = request.kind
        state.hold_requests = hold_requests
        return self._envelope(request, request_id, hold_requests=hold_requests or None)

    def end(self) -> None:
        """The ACS has nothing more to send: the caller answers HTTP 204 (TR-069 3.7.1.4)."""
        self._move(Move.END)

    def fault_reply(self, fault: CwmpFault, request_id: str | None) -> m.Envelope:
        """Answer a CPE message with a SOAP Fault (TR-069 3.5).

        For a CPE request the session goes on; a faulted Inform, or a fault answering a message
        that broke the protocol, ends the session (the CPE retries with a new one).
        """
        owed = self._state.reply_owed
        self._state.reply_owed = self._state.reply_id = None
        if owed != "cpe_request":
            self._state.phase = SessionPhase.ENDED
        return self._envelope(make_fault(fault.code, fault.string), request_id)

    # ----- helpers -----

    def _move(self, move: Move) -> None:
        phase = self._state.phase
        new_phase = TRANSITIONS.get((phase, move))
        if new_phase is None:
            raise _illegal(phase, move)
        self._state.phase = new_phase

    def _owe_reply(self, kind: str, reply_id: str | None) -> None:
        self._state.reply_owed, self._state.reply_id = kind, reply_id

    def _check_reply_made(self) -> None:
        if self._state.reply_owed is not None:
            raise LocalProtocolError(8002, f"ACS has not answered the CPE's {self._state.reply_owed} yet")

    def _settle_reply(self, kind: str) -> str | None:
        if self._state.reply_owed != kind:
            raise LocalProtocolError(8002, f"no {kind} to answer (owed: {self._state.reply_owed})")
        reply_id = self._state.reply_id
        self._state.reply_owed = self._state.reply_id = None
        return reply_id

    def _envelope(self, body: m.Message, envelope_id: str | None, **headers: Any) -> m.Envelope:
        self._state.messages_sent += 1
        present = {name: value for name, value in headers.items() if value is not None}
        return m.Envelope(id=envelope_id, body=body, version=self._state.version, **present)


def default_cpe_reply(request: m.Message) -> m.Message:
    """What the ACS answers a CPE request with when the caller has nothing better."""
    if isinstance(request, m.GetRPCMethods):
        return m.GetRPCMethodsResponse(methods=m.ACS_RPC_METHODS)
    response_type = m.ACS_METHOD_RESPONSES.get(type(request))
    if response_type is None or isinstance(request, m.Inform):
        # SPEC section 2: anything else gets CWMP fault 8000 inside a SOAP fault.
        return make_fault(8000)
    return _MESSAGE.validate_python({"kind": response_type.__name__})


def _illegal(phase: SessionPhase, move: Move) -> ProtocolError:
    if move in _ACS_MOVES:
        return LocalProtocolError(8002, f"ACS cannot {move.value} in phase {phase.value}: {_WHY[phase]}")
    return RemoteProtocolError(8003, f"CPE sent {move.value} in phase {phase.value}: {_WHY[phase]}")
