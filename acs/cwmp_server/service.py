"""One CWMP HTTP request in, one reply out: the I/O around the pure ``cwmp.session`` machine.

Between requests a running session's state lives in the database (the CPE may open a new TCP
connection, landing on another worker or host): in the device's lease in ``session_locks`` (which
also keeps one session per device) as the Inform left it, then in one step insert per save; its
history record is inserted in ``sessions`` when it ends (``tasks/store/sessions.py``). This module
never renders HTTP itself: it returns a :class:`Reply`.

A *lazy* session is the exception (issue 10: most periodic sessions have nothing to do). When the
Inform finds nothing for the session to do (no task queued, waiting for proof or orphaned, nothing
queued by provisioning or profiles, not a BOOTSTRAP) on a keep-alive connection, no lease is written:
the worker that owns the connection holds the session's state alone (``CwmpService.lazy``), and its
empty POST ends it: two commands before the InformResponse, none before the 204 (its history record
leaves after it with the other lazy ends of the next moment: ``SessionRepository.record_end_later``). The
lease is written (the session *promoted*) only when the session gets something to do (a CPE request,
an RPC to send), or when its connection closes or its next message is ``LAZY_HOLD`` late
(``keep_lazy_sessions``, every ``LAZY_SWEEP`` seconds), so that another worker can take the next
message: that worker, given the lazy cookie and no lease, waits up to ``LAZY_WAIT`` for it. A lazy
session idle past its expiry is ended by its worker as timed out. What is given up: for up to
``LAZY_HOLD`` a lazy session is not seen by another process (the device's page shows it once it
ended or was written out), and a worker that dies in that time, or within ``HISTORY_LINGER`` after
its end, loses that session's history record (the device's last inform is stored by then; there is
no task to lose).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from acs.config import CpeUsernameRule
from acs.cwmp_server.auth import ANONYMOUS, CpePrincipal, binding_problem
from acs.cwmp_server.live import (
    Lazy,
    LazySessions,
    LiveSessions,
    connection_closing,
    is_lazy_cookie,
    lazy_cookie,
    parse_session_cookie,
    session_cookie,
)
from acs.cwmp_server.metrics import CwmpMetrics
from cwmp import (
    AutonomousTransferComplete,
    CwmpVersion,
    Envelope,
    Inform,
    MalformedMessage,
    RemoteProtocolError,
    RequestDownload,
    TransferComplete,
    parse,
    serialize,
)
from cwmp.codec import ParserLimits
from cwmp.logtext import loggable
from cwmp.session import (
    AcsSession,
    CpeRequestReceived,
    EmptyPost,
    FaultReceived,
    InformReceived,
    ResponseReceived,
    SessionEvent,
    SessionSnapshot,
)
from tasks.dispatch import Dispatcher, SessionContext, SessionTasks
from tasks.params import SEALED
from tasks.profiles.engine import ProfileEngine
from tasks.provisioning import Provisioner, ProvisioningPlan, SessionClaim
from tasks.records import Document, SessionFields, SessionRecord, TaskRecord
from tasks.registry import DeviceRegistry, InformSummary, summarize_inform
from tasks.secretbox import SecretBox
from tasks.session_ids import new_session_id
from tasks.store.devices import CredentialsRequired, HasConnectionRequestCredentials, IdentityCollision
from tasks.store.locks import SessionLockRepository
from tasks.store.sessions import MAX_RPCS_PER_SESSION, SessionRepository
from tasks.store.tasks import OpenTasks

log = logging.getLogger("acs.cwmp")
COOKIE = "acs_session"
LOCK_SLACK = timedelta(seconds=5)
SUPERSEDED = "superseded"  # outcome of a session ended by the device's next Inform
LAZY_LIMIT = 20_000  # lazy sessions one worker holds at most; past it a session takes its lease at once
LAZY_SWEEP = 0.2  # seconds between two looks at the lazy sessions' connections and expiries
# A lazy session whose next message has not come within this many seconds is written out anyway:
# a CPE may open a new connection (to another worker) while its first one stays open.
LAZY_HOLD = 0.5
# How long a worker given a lazy session's cookie, with no lease stored, waits for the session's
# worker to write it out (it does within LAZY_SWEEP of the connection closing): the delays between reads.
LAZY_WAIT = (0.05, 0.1, 0.2, 0.4, 0.8)
# Within this long of a device's Inform a lazy session of it may still run with no lease: it ends,
# or is written out, by LAZY_HOLD + LAZY_SWEEP (with room for a busy loop).
LAZY_SETTLE = timedelta(seconds=1.5)
# The state a lease or a step stores: the worker's own fields left out.
WORKER_ONLY = ("lazy", "claimed_record", "sent_task", "live", "seq")


class _LeaseRefused(Exception):
    """The device's lease could not be taken for this session, even after ending its holder."""


@dataclass
class _Lease:
    """Whether the session being opened holds the device's lease yet."""

    taken: bool




@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    set_session: str | None = None  # cookie to set
    clear_session: bool = False
    message: str | None = None  # the RPC carried, for the session record
    message_id: str | None = None
    challenge: bool = False  # answer with the CPE authentication challenge (401) instead

    @classmethod
    def soap(cls, envelope: Envelope, set_session: str | None = None) -> Reply:
        return cls(
            200,
            serialize(envelope),
            'text/xml; charset="utf-8"',
            set_session=set_session,
            message=envelope.body.kind,
            message_id=envelope.id,
        )

    @classmethod
    def reason(cls, status: int, text: str, **headers: str) -> Reply:
        return cls(status, text.encode() + b"\n", "text/plain; charset=utf-8", dict(headers), clear_session=True)


@dataclass(frozen=True)
class SessionTimeouts:
    """The idle timeout between two messages of a session, and the device lease that outlives it.

    The lease runs two idle periods (plus slack) and is renewed only once less than one idle
    period (plus slack) is left, so most messages of a session cost no lease write, while the
    lease always ends at least ``LOCK_SLACK`` after the session's own expiry (``expires_at``,
    one idle period after its last message): a session is reaped before its lease can be taken.
    """

    idle: timedelta

    def lease_until(self, now: datetime) -> datetime:
        return now + 2 * self.idle + LOCK_SLACK

    def renew_due(self, lease_until: datetime, now: datetime) -> bool:
        return lease_until - now < self.idle + LOCK_SLACK


class CwmpService:
    def __init__(
        self,
        registry: DeviceRegistry,
        sessions: SessionRepository,
        locks: SessionLockRepository,
        dispatcher: Dispatcher,
        provisioner: Provisioner,
        clock: Callable[[], datetime],
        timeouts: SessionTimeouts,
        limits: ParserLimits,
        default_interval: int,
        metrics: CwmpMetrics,
        username_rule: CpeUsernameRule = CpeUsernameRule.NONE,
        box: SecretBox | None = None,
        profiles: ProfileEngine | None = None,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.locks = locks
        self.dispatcher = dispatcher
        self.provisioner = provisioner
        self.clock = clock
        self.timeouts = timeouts
        self.limits = limits
        self.default_interval = default_interval
        self.metrics = metrics
        self.username_rule = username_rule
        self.box = box
        self.profiles = profiles
        self.live = LiveSessions()
        self.lazy = LazySessions()

    async def handle(
        self,
        body: bytes,
        cookie: str | None,
        remote_ip: str | None,
        connection: Any = None,
        principal: CpePrincipal = ANONYMOUS,
        keep_alive: bool = True,
    ) -> Reply:
        """One HTTP request of a CPE; ``connection`` (its transport) may let the session skip a read.

        ``principal`` is who the request authenticated as: it must be allowed to speak for the
        device (checked before anything is stored) and stays the same for the whole session.
        ``keep_alive`` False (HTTP/1.0, ``Connection: close``): the next message comes on a new
        connection, so a session started here takes its lease at once (no lazy session).
        """
        session_id, seq = parse_session_cookie(cookie) if cookie else (None, None)
        try:
            envelope = parse(body, self.limits) if body.strip() else None
        except MalformedMessage as exc:
            log.warning("malformed CWMP message from %s: %s", remote_ip, loggable(exc.reason))
            self.metrics.rejected.inc(reason="malformed")
            if session_id:
                await self.abort(session_id, "protocol_error", f"malformed message: {exc.reason}")
            return Reply.reason(400, f"malformed CWMP message: {exc.reason}")
        record: SessionRecord | None = None
        verified = True
        lazy = self.lazy.pop(session_id) if session_id else None
        if lazy is not None:
            # This worker's own, and no other process knows the session: the newest state whatever
            # the connection. Taken out while the message is handled (the sweep leaves it alone).
            try:
                return await self._continue_lazy(lazy, envelope, connection, principal, remote_ip)
            except BaseException:
                if lazy.record["_id"] not in self.lazy and "lazy" in lazy.record:
                    self.lazy.put(lazy)  # not promoted nor ended: still this worker's
                raise
        if session_id:
            now = self.clock()
            record = self.live.get(session_id, seq, connection, now)
            if record is None and seq is None:
                # The InformResponse's cookie names no sequence (a CPE that never updates its cookie
                # keeps sending it): the record this worker created may be stale if the CPE went to
                # another worker meanwhile. It is used unverified: its save checks the sequence,
                # and a stale one is read again and the message handled anew (``_verified_again``).
                record = self.live.first(session_id, connection, now)
                verified = record is None
            if record is None:
                record = await self.sessions.load_live(session_id)
            if record is None and cookie is not None and is_lazy_cookie(cookie) and not _is_inform(envelope):
                record = await self._written_out(session_id)
        if record is None:
            return await self._start(envelope, session_id, remote_ip, principal, connection, keep_alive)
        if record.get("auth_user") != principal.username:
            return self._identity_refused(record, principal, remote_ip)
        return await self._continue(record, envelope, connection, verified)

    def _identity_refused(self, record: SessionRecord, principal: CpePrincipal, remote_ip: str | None) -> Reply:
        """A request of the session authenticated as someone else than its Inform (issue 11): 403."""
        log.warning(
            "request from %s in session %s of %s refused: authenticated as %s, the session as %s",
            remote_ip,
            record["_id"],
            record["device_id"],
            loggable(principal.username),
            loggable(record.get("auth_user")),
        )
        self.metrics.rejected.inc(reason="identity_mismatch")
        return Reply.reason(403, "this session belongs to other credentials")

    # -- a new session ----------------------------------------------------------------------

    async def _start(
        self,
        envelope: Envelope | None,
        stale_id: str | None,
        remote_ip: str | None,
        principal: CpePrincipal,
        connection: Any = None,
        keep_alive: bool = True,
    ) -> Reply:
        if envelope is None or not isinstance(envelope.body, Inform):
            what = "an empty POST" if envelope is None else envelope.body.kind
            note = " (unknown or expired session)" if stale_id else ""
            # TR-069 3.7.1.1: every session begins with Inform.
            return Reply.reason(400, f"a CWMP session must begin with Inform, got {what}{note}")
        session = AcsSession()
        try:
            event = session.receive(envelope)
        except RemoteProtocolError as exc:
            log.warning("invalid Inform from %s refused: %s", remote_ip, loggable(exc.reason))
            self.metrics.rejected.inc(reason="invalid_inform")
            return Reply.reason(400, f"invalid Inform: {exc.reason}")
        assert isinstance(event, InformReceived)
        now = self.clock()
        summary = summarize_inform(event.inform, event.version, remote_ip, self.default_interval, now)
        problem = binding_problem(principal, self.username_rule, summary.device_id, summary.identity["serial_number"])
        if problem is not None:
            # Issue 11: device A authenticated as A must not Inform as B (B's tasks, B's cache).
            log.warning("Inform from %s refused: %s", remote_ip, problem)
            self.metrics.rejected.inc(reason="identity_mismatch")
            return Reply.reason(403, f"these credentials may not speak for device {summary.device_id}")
        old = self.lazy.of_device(summary.device_id)
        if old is not None:
            self.lazy.pop(old.record["_id"])
            # TR-069 3.7.1.1: a new Inform means the CPE gave its session here up (data flow 3a).
            await self._end_lazy(old.record, SUPERSEDED, "the device started a new session with Inform")
        session_id = new_session_id(summary.device_id)
        lease_until = self.timeouts.lease_until(now)
        # The InformResponse depends on the Inform alone: the session's state as it answers rides in
        # the lease's insert (what another worker needs to take the next message).
        reply = session.reply_to_inform()
        events = [f"{e.event_code} {e.command_key}".strip() for e in event.inform.events]
        # A BOOTSTRAP's provisioning task is planned from the Inform alone, its id with it: the
        # session's state names it as the task stored claimed for the session, to send next.
        plan = self.provisioner.plan(
            summary.device_id, event.inform, summary.bootstrap, now, authenticated=principal.authenticated
        )
        record: SessionRecord = {
            "_id": session_id,
            "device_id": summary.device_id,
            "started_at": now,
            "last_message_at": now,
            "expires_at": now + self.timeouts.idle,
            "lease_until": lease_until,
            # Until the Inform's open tasks are read, a worker taking the next message assumes the
            # most: a released task may wait, and it claims until the queue is empty.
            "resumable": True,
            "claims_left": None,
            "claimed_task": None if plan is None else plan.task["_id"],
            "remote_ip": remote_ip,
            "auth_user": principal.username,
            "cwmp_version": event.version.value,
            "events": events,
            "rpcs": [
                _rpc(now, "cpe", "Inform", envelope_id(event.envelope)),
                _rpc(now, "acs", "InformResponse", reply.id),
            ],
            "rpc_count": 2,
            "faults": [],
            "snapshot": self._stored_snapshot(session),
        }
        # A BOOTSTRAP (its provisioning is claimed for the session), or a session whose next message
        # comes on a new connection, takes the lease first; any other waits to see whether it has
        # anything to do (``_open``).
        lease = _Lease(taken=False)
        if plan is not None or connection is None or not keep_alive or len(self.lazy) >= LAZY_LIMIT:
            if not await self._take_lease(summary.device_id, session_id, lease_until, now, record):
                return self._in_progress(summary.device_id)
            lease.taken = True
        try:
            # The InformResponse's cookie carries no sequence number: a CPE that never updates its
            # cookie keeps sending this one; only the next message on this connection gets the
            # record from LiveSessions, unverified (``LiveSessions.first``).
            return await self._open(event, summary, plan, record, reply, principal, connection, lease)
        except _LeaseRefused:
            return self._in_progress(summary.device_id)
        except CredentialsRequired as exc:
            if lease.taken:
                await self.locks.release(summary.device_id, session_id)
            log.warning(
                "Inform from %s for %s refused: the device has credentials of its own and %s",
                remote_ip,
                exc.device_id,
                "sent none" if not principal.authenticated else f"used {loggable(principal.username)}",
            )
            self.metrics.rejected.inc(reason="credentials_required")
            return Reply(401, challenge=True)
        except IdentityCollision as exc:
            if lease.taken:
                await self.locks.release(summary.device_id, session_id)
            log.warning(
                "Inform from %s refused: device id %s collides with a stored device (stored %s, this Inform %s)",
                remote_ip,
                exc.device_id,
                loggable(exc.stored),
                loggable(exc.claimed),
            )
            self.metrics.rejected.inc(reason="device_id_collision")
            return Reply.reason(409, f"device id {exc.device_id} already belongs to another device")
        except BaseException:
            if lease.taken:
                await self.locks.release(summary.device_id, session_id)
            raise

    def _in_progress(self, device_id: str) -> Reply:
        log.info("second concurrent session refused for %s", device_id)
        self.metrics.rejected.inc(reason="session_in_progress")
        retry = str(int(self.timeouts.idle.total_seconds()) + 1)
        return Reply.reason(503, f"device {device_id} already has a session in progress", **{"Retry-After": retry})

    async def _lease_now(self, record: SessionRecord, lease: _Lease) -> bool:
        """The lease of a session the Inform found work for, taken before that work starts; True
        when a holder had to be ended first (its tasks were settled after the Inform read them).
        Raises ``_LeaseRefused`` when it cannot be had."""
        lease_until = record["lease_until"]
        device_id, session_id = record["device_id"], record["_id"]
        if await self.locks.acquire(device_id, session_id, lease_until, self.clock(), _stored_state(record)):
            lease.taken = True
            return False
        if not await self._take_lease(device_id, session_id, lease_until, self.clock(), record):
            raise _LeaseRefused
        lease.taken = True
        return True

    async def _take_lease(
        self, device_id: str, session_id: str, lease_until: datetime, now: datetime, record: SessionRecord
    ) -> bool:
        """The device's lease for a new session, carrying its state; an Inform ends the session that
        holds it.

        TR-069 3.7.1.1: a session begins with Inform and a CPE sends one Inform per session, so an
        Inform on a new connection while the device's session holds the lease means the CPE gave
        that session up (it dropped mid-session, or its InformResponse was lost): the old session
        ends as a broken one (its tasks settled, its history written), and the new one starts
        without waiting ~30 s. An expired lease is a session the reaper has not ended yet: ended
        here the same way, as timed out.
        """
        live = _stored_state(record)
        if await self.locks.acquire(device_id, session_id, lease_until, now, live):
            return True
        lease = await self.locks.lease(device_id)
        if lease is not None:
            holder = str(lease["session_id"])
            if lease["until"] > now:
                ended = await self.abort(holder, SUPERSEDED, "the device started a new session with Inform")
            else:
                ended = await self.abort(holder, "timeout", "the device stopped answering (session timeout)")
            if not ended:  # a lease with no running session behind it (its end wrote the history)
                await self.dispatcher.on_session_broken(holder, "the session's worker stopped")
                await self.locks.release(device_id, holder)
        return await self.locks.acquire(device_id, session_id, lease_until, now, live)

    async def _open(
        self,
        event: InformReceived,
        summary: InformSummary,
        plan: ProvisioningPlan | None,
        record: SessionRecord,
        reply: Envelope,
        principal: CpePrincipal,
        connection: Any,
        lease: _Lease,
    ) -> Reply:
        inform, device_id, session_id = event.inform, summary.device_id, record["_id"]
        now, remote_ip, events = record["started_at"], record.get("remote_ip"), record.get("events", [])
        lease_until = record["lease_until"]
        own = principal.device_id is not None
        # A BOOTSTRAP's provisioning (its device fields) rides in the Inform's own device write;
        # the task is stored right after (the device as it was decides whether it may carry new
        # credentials). A CPE keeps BOOTSTRAP until an InformResponse arrives (TR-069 3.7.1.5), so
        # a crash in between is followed by a new BOOTSTRAP and a new task. The fields carry what
        # the task sets (``Provisioner.plan``); for an unauthenticated Inform only if the device has
        # no connection-request credentials, else the credentials stay pending (issue 11).
        try:
            stored = await self.registry.record_session_inform(
                summary,
                inform,
                now,
                own_credentials=own,
                fields=None if plan is None else plan.fields,
                without_connection_request=plan is not None and plan.pending is not None,
                cached=() if plan is None else plan.cached,
            )
        except HasConnectionRequestCredentials:
            assert plan is not None and plan.pending is not None
            plan = plan.pending
            stored = await self.registry.record_session_inform(
                summary, inform, now, own_credentials=own, fields=plan.fields, stored_already=True
            )
        device = stored.device
        # What waits for this device is read from its tasks, one query by device_id, never from a
        # counter on the device document: FerretDB 1.24 writes a device update as "read it, write
        # it whole", so a concurrent device write could put an old counter back and hide a task.
        # A device this very Inform stored has none: tasks are queued only for stored devices.
        found = OpenTasks([], []) if stored.created else await self.dispatcher.repository.open_for_device(device_id)
        # Work found: the lease first (one session per device settles and claims its tasks).
        work = bool(found.queued or found.awaiting_proof or found.orphaned)
        if work and not lease.taken and await self._lease_now(record, lease):
            found = await self.dispatcher.repository.open_for_device(device_id)
        resumable = False
        if found.awaiting_proof:
            parameter_key = summary.state.get("parameter_key")
            resumable = await self.dispatcher.settle_inform(found.awaiting_proof, inform, parameter_key)
        created: int | None = 0  # tasks queued by this Inform after its tasks were read (None: unknown)
        if found.orphaned:
            await self.dispatcher.settle_orphaned(found.orphaned)
            created = None  # some went back to the queue: claim until it is empty
        claimed: TaskRecord | None = None  # stored claimed by this session, sent next
        if plan is not None:
            claim = SessionClaim(session_id, lease_until, now)
            claimed = await self.provisioner.queue_planned(
                plan, inform, device, stored.before, principal.authenticated, claim
            )
        else:
            queued = await self.provisioner.on_inform(
                device, inform, summary.bootstrap, authenticated=principal.authenticated
            )
            created = None if created is None else created + int(queued)
        if self.profiles is not None:
            # Issue 14: the device's profiles queue their differences like provisioning (one read when in sync).
            profiled = await self.profiles.on_inform(device, inform, summary.bootstrap)
            created = None if profiled is None or created is None else created + profiled
        # Provisioning or a profile queued work: the lease before it is claimed; a holder ended
        # meanwhile may have put tasks back in the queue, so claim until it is empty.
        if created != 0 and not lease.taken and await self._lease_now(record, lease):
            created = None
        # The claims this session makes: what it found queued and what it queued; a task queued by
        # anyone else from now on goes out in the device's next session.
        claims_left = None if created is None else len(found.queued) + created
        # This worker's copy knows what the Inform found (the lease carries cautious defaults): the
        # next message on this connection uses it (``LiveSessions.first``).
        created_record: SessionRecord = {
            **record,
            "resumable": resumable,
            "claims_left": claims_left,
            "claimed_task": None if claimed is None else claimed["_id"],
            "live": True,
            "seq": 0,
        }
        created_record["claimed_record"] = claimed  # kept in this worker only (LiveSessions), never stored
        self.metrics.started.inc()
        for inform_event in inform.events:
            self.metrics.events.inc(event=inform_event.event_code)
        log.info("session %s for %s from %s: %s", session_id, device_id, remote_ip, loggable(", ".join(events)))
        if not lease.taken:
            # Nothing to do (claims_left 0, nothing resumable or claimed): held here alone.
            assert claims_left == 0 and not resumable and claimed is None
            created_record["lazy"] = True
            self.lazy.put(Lazy(_weak(connection), created_record))
            return Reply.soap(reply, set_session=lazy_cookie(session_id))
        self.live.put(session_id, connection, created_record, now)
        return Reply.soap(reply, set_session=session_id)

    # -- later messages of a session ----------------------------------------------------------

    async def _continue(
        self, record: SessionRecord, envelope: Envelope | None, connection: Any, verified: bool = True
    ) -> Reply:
        now = self.clock()
        session_id, device_id = record["_id"], record["device_id"]
        lease_until: datetime = record.get("lease_until") or now
        renewed = not record.get("lazy") and self.timeouts.renew_due(lease_until, now)
        if renewed:
            lease_until = self.timeouts.lease_until(now)
            if not await self.locks.renew(device_id, session_id, lease_until):
                await self.abort(session_id, "lease_lost", "the device's session lease was lost")
                return Reply.reason(409, "session lease lost; start a new session with Inform")
        session = AcsSession(self._loaded_snapshot(record["snapshot"]))
        try:
            event = session.receive(envelope)
        except RemoteProtocolError as exc:
            if not verified:  # maybe right for the session as it is now, not as this worker left it
                return await self._verified_again(session_id, envelope, connection)
            log.warning("protocol error from %s in session %s: %s", device_id, session_id, loggable(exc.reason))
            await self._abort_record(record, "protocol_error", exc.reason)
            return Reply.reason(400, f"CWMP protocol error: {exc.reason}")
        ctx = SessionContext(device_id, session_id, session.version, lease_until)
        rpcs: list[Document] = [_event_rpc(now, event)]
        self.metrics.messages.inc(direction="cpe", rpc=rpcs[0]["name"])
        if isinstance(event, FaultReceived):
            self.metrics.faults.inc(code=str(event.fault.fault_code))
        known = SessionTasks(
            step=await self._claimed_task(record, ctx),
            resumable=bool(record.get("resumable")),
            sent=record.get("sent_task"),
            claims_left=record.get("claims_left"),
        )
        try:
            reply, known = await self._react(session, record, event, ctx, known)
        except PyMongoError:
            raise  # the handler answers 503; the reaper settles the session
        except Exception as exc:
            # A bug or an unforeseen value while building the reply: end this session now (its
            # tasks settled, the lease freed) instead of leaving the CPE locked out until the reaper.
            why = f"internal error while answering: {type(exc).__name__}: {exc}"
            log.error("session %s for %s: %s", session_id, device_id, loggable(why), exc_info=True)
            await self._abort_record(record, "error", why)
            return Reply.reason(500, "internal error; the session is ended, start a new one")
        fields: SessionFields = {
            "last_message_at": now,
            "expires_at": now + self.timeouts.idle,
        }
        if renewed:
            fields["lease_until"] = lease_until
        if known.resumable != bool(record.get("resumable")):
            fields["resumable"] = known.resumable
        if known.claims_left != record.get("claims_left"):
            fields["claims_left"] = known.claims_left
        if record.get("claimed_task") is not None and not isinstance(event, CpeRequestReceived):
            fields["claimed_task"] = None  # sent in this reply (or finished, or left to the next Inform)
        if isinstance(event, FaultReceived):
            fields["faults"] = [
                *record.get("faults", []),
                {"code": event.fault.fault_code, "string": event.fault.fault_string},
            ][-50:]
        if record.get("end_after_response"):
            fields["end_after_response"] = True
        if reply.status == 204:
            # The machine's state is not in a session's history (``LIVE_ONLY``): not dumped for it.
            return await self._finish(record, rpcs, fields, now, verified, envelope, connection)
        fields["snapshot"] = self._stored_snapshot(session)
        if record.get("lazy") and not await self._promote(record):
            return Reply.reason(409, "this CWMP session has ended; start a new one with Inform")
        if reply.message is not None:
            rpcs.append(_rpc(now, "acs", reply.message, reply.message_id))
            self.metrics.messages.inc(direction="acs", rpc=reply.message)
        saved: SessionRecord = {**record, **fields, "seq": record["seq"] + 1, **_with_rpcs(record, rpcs)}
        saved.pop("sent_task", None)
        # The state before the RPC goes out: a step insert, colliding if another request (or the
        # session's end) took this sequence first.
        if not await self.sessions.save(saved, saved["seq"]):
            if not verified:
                # Handled on a stale copy: the task claimed for this reply never left; it goes back
                # to the queue, and the message is handled on the session as it is now.
                if known.sent is not None:
                    await self.dispatcher.withdraw(known.sent, session_id)
                return await self._verified_again(session_id, envelope, connection)
            return await self._lost_save(session_id)
        saved["sent_task"] = known.sent  # kept in this worker only (LiveSessions), never stored
        if saved.get("claimed_task") is None:
            saved.pop("claimed_record", None)
        self.live.put(session_id, connection, saved, now)
        return replace(reply, set_session=session_cookie(session_id, saved["seq"]))

    async def _react(
        self,
        session: AcsSession,
        record: SessionRecord,
        event: SessionEvent,
        ctx: SessionContext,
        known: SessionTasks,
    ) -> tuple[Reply, SessionTasks]:
        """The reply to this message, and what the session then knows of its tasks."""
        match event:
            case CpeRequestReceived():
                await self._on_cpe_request(ctx, event)
                return Reply.soap(session.reply_to_cpe_request(event.request)), known
            case ResponseReceived():
                known = await self.dispatcher.on_response(ctx, event.request_id, event.request, event.response, known)
            case FaultReceived():
                known = await self.dispatcher.on_fault(ctx, event.request_id, event.request, event.fault, known)
            case EmptyPost():
                pass
        if record.get("end_after_response"):
            session.end()
            return Reply(204), known
        outgoing, known = await self.dispatcher.next_request(ctx, known)
        if outgoing is None:
            session.end()
            return Reply(204), replace(known, claims_left=0)  # nothing left queued for this session
        if outgoing.ends_session:
            record["end_after_response"] = True
        return Reply.soap(session.send_request(outgoing.message, outgoing.request_id)), known

    async def _claimed_task(self, record: SessionRecord, ctx: SessionContext) -> TaskRecord | None:
        """The task the session's Inform stored claimed for it, not sent yet: this worker's copy,
        else read back (it is sent next; a session that never sends it leaves it to the device's
        next Inform, which puts it back in the queue: ``Dispatcher.settle_orphaned``)."""
        task_id = record.get("claimed_task")
        if task_id is None:
            return None
        held = record.get("claimed_record")
        if held is not None and held["_id"] == task_id:
            return held
        return await self.dispatcher.claimed_task(ctx, task_id)

    async def _on_cpe_request(self, ctx: SessionContext, event: CpeRequestReceived) -> None:
        request = event.request
        if isinstance(request, TransferComplete):
            await self.dispatcher.on_transfer_complete(ctx.device_id, request)
        elif isinstance(request, AutonomousTransferComplete):
            log.info(
                "%s reports an autonomous transfer of %s (fault %s)",
                ctx.device_id,
                loggable(request.file_type),
                request.fault.fault_code,
            )
        elif isinstance(request, RequestDownload):
            log.info(
                "%s requests a download of file type %s; no file is configured for it",
                ctx.device_id,
                loggable(request.file_type),
            )

    async def _finish(
        self,
        record: SessionRecord,
        rpcs: list[Document],
        fields: SessionFields,
        now: datetime,
        verified: bool = True,
        envelope: Envelope | None = None,
        connection: Any = None,
    ) -> Reply:
        session_id, device_id = record["_id"], record["device_id"]
        self.live.drop(session_id)
        duration = (now - record["started_at"]).total_seconds()
        ending: SessionFields = {**fields, "ended_at": now, "outcome": "ok", "duration_ms": int(duration * 1000)}
        history: SessionRecord = {**record, **ending, **_with_rpcs(record, rpcs)}
        if record.get("lazy"):
            # No lease, so no other request or process can end it: its history record leaves after
            # the 204, with the other lazy ends of the next moment (``record_end_later``).
            self.sessions.record_end_later(history)
        # The history record, inserted once and complete (a session ended meanwhile collides).
        elif not await self.sessions.record_end(history):
            if not verified:
                return await self._verified_again(session_id, envelope, connection)
            return await self._lost_save(session_id)
        # The steps it saved are deleted; one saved by another request racing this end (a CPE on
        # two connections at once) is the reaper's, which settles its task (``reap_stale``). Both
        # deletes are deferred: nothing the 204 says depends on them, and a second of
        # clean ends frees its leases in one statement (``GroupWriter.write_later``).
        if not record.get("lazy"):
            self.locks.release_later(device_id, session_id)
        if record["seq"] > 0:
            self.sessions.forget_steps_later(session_id, device_id)
        self.metrics.sessions.inc(outcome="ok")
        log.info("session %s for %s ended after %.3f s", session_id, device_id, duration)
        return Reply(204, clear_session=True)

    async def _free(self, device_id: str, session_id: str, steps: bool = True) -> None:
        """The ended session's lease and steps deleted (each merged with other sessions' deletes
        into one statement); ``steps`` False: the lease only (the reaper deletes the steps)."""
        if steps:
            await asyncio.gather(
                self.locks.release(device_id, session_id), self.sessions.forget_steps(session_id, device_id)
            )
        else:
            await self.locks.release(device_id, session_id)

    async def _verified_again(self, session_id: str, envelope: Envelope | None, connection: Any) -> Reply:
        """The message was handled on this worker's copy of the session, which another worker had
        moved on: handle it again on the record as stored."""
        self.live.drop(session_id)
        record = await self.sessions.load_live(session_id)
        if record is None:
            return Reply.reason(409, "this CWMP session has ended; start a new one with Inform")
        return await self._continue(record, envelope, connection)

    async def _lost_save(self, session_id: str) -> Reply:
        """The record moved on without this request: a racing request won, or the session ended.

        An ended session (a newer Inform, the reaper) settled its tasks when it ended; a task this
        request claimed after that is settled here, so it never stays dispatched to nobody.
        """
        self.live.drop(session_id)
        if await self.sessions.load_live(session_id) is None:
            await self.dispatcher.on_session_broken(session_id, "the session ended while its request was handled")
            return Reply.reason(409, "this CWMP session has ended; start a new one with Inform")
        return Reply.reason(409, "concurrent requests on one CWMP session")

    async def abort(self, session_id: str, outcome: str, why: str) -> bool:
        """End a session that did not finish normally: stop a request still in flight on it (an end
        step at its next sequence), write its history from its newest state, settle its tasks, free
        the device. False when no running session was found."""
        self.live.drop(session_id)
        lazy = self.lazy.pop(session_id)
        if lazy is not None:
            return await self._end_lazy(lazy.record, outcome, why)
        record = await self.sessions.load_live(session_id)
        for _ in range(3):
            if record is None or await self.sessions.seal(
                session_id, record["device_id"], record["seq"] + 1, self.clock()
            ):
                break
            record = await self.sessions.load_live(session_id)  # a request saved meanwhile: its state
        if record is None:
            return False
        device_id = record["device_id"]
        now = self.clock()
        duration_ms = int((now - record["started_at"]).total_seconds() * 1000)
        ended = await self.sessions.record_end(
            {**record, "ended_at": now, "outcome": outcome, "error": why, "duration_ms": duration_ms}
        )
        # Settled and freed even when another end wrote the history first (it may have died before
        # doing so): settling and deleting again find nothing. The steps stay, the end step among
        # them, so a request still in flight on the session fails its save; the reaper deletes
        # them once no request can be (``reap_stale``). A session ended by an error of ours may have
        # been broken by its task: that one is not re-queued merely because it was never sent (it
        # would break the next session too).
        await self.dispatcher.on_session_broken(session_id, why, requeue_unsent=outcome != "error")
        await self._free(device_id, session_id, steps=False)
        if ended:
            self.metrics.sessions.inc(outcome=outcome)
            log.warning("session %s for %s ended: %s (%s)", session_id, device_id, outcome, loggable(why))
        return True

    # -- lazy sessions (the module's docstring) ----------------------------------------------------

    async def _continue_lazy(
        self, lazy: Lazy, envelope: Envelope | None, connection: Any, principal: CpePrincipal, remote_ip: str | None
    ) -> Reply:
        record = lazy.record  # promoted: "lazy" popped, so a failure after it does not put it back
        if record.get("auth_user") != principal.username:
            self.lazy.put(lazy)  # refused, the session unchanged
            return self._identity_refused(record, principal, remote_ip)
        # Anything but the empty POST that ends it may settle or claim tasks: under the lease.
        if envelope is not None and not await self._promote(record):
            return Reply.reason(409, "this CWMP session has ended; start a new one with Inform")
        return await self._continue(record, envelope, connection)

    async def _promote(self, record: SessionRecord) -> bool:
        """A lazy session takes the device's lease, carrying its state, before it does anything; False
        (and the session ended as superseded) when another session holds it."""
        record.pop("lazy", None)
        record["lease_until"] = self.timeouts.lease_until(self.clock())
        return await self._lease_lazy(record)

    async def _write_out(self, record: SessionRecord) -> bool:
        """A lazy session not ended in time: its lease written (until the end its Inform gave it), so
        that another worker can take its next message (``_written_out``), or the reaper end it."""
        return await self._lease_lazy(_written(record))

    async def _lease_lazy(self, record: SessionRecord) -> bool:
        """The lease of a session that was lazy, carrying its state; False when a newer session holds
        it: this one is then ended as superseded, that lease left alone."""
        device_id, session_id = record["device_id"], record["_id"]
        if await self.locks.acquire(device_id, session_id, record["lease_until"], self.clock(), _stored_state(record)):
            return True
        await self._end_lazy(record, SUPERSEDED, "another session of the device holds its lease")
        return False

    async def _written_out(self, session_id: str) -> SessionRecord | None:
        """A lazy session of another worker, once that worker wrote it out (None if it never does)."""
        for delay in LAZY_WAIT:
            await asyncio.sleep(delay)
            record = await self.sessions.load_live(session_id)
            if record is not None:
                return record
        return None

    async def _end_lazy(self, record: SessionRecord, outcome: str, why: str) -> bool:
        now = self.clock()
        duration_ms = int((now - record["started_at"]).total_seconds() * 1000)
        if await self.sessions.record_end(
            {**record, "ended_at": now, "outcome": outcome, "error": why, "duration_ms": duration_ms}
        ):
            self.metrics.sessions.inc(outcome=outcome)
            log.warning("session %s for %s ended: %s (%s)", record["_id"], record["device_id"], outcome, loggable(why))
        return True

    async def _abort_record(self, record: SessionRecord, outcome: str, why: str) -> bool:
        if record.get("lazy"):
            self.lazy.pop(record["_id"])
            return await self._end_lazy(record, outcome, why)
        return await self.abort(record["_id"], outcome, why)

    async def sweep_lazy(self, write_out_all: bool = False) -> int:
        """The lazy sessions whose connection closed, or whose next message is ``LAZY_HOLD`` late,
        written out; those idle past their expiry ended as timed out (``write_out_all``: every one
        written out, at shutdown); how many."""
        if not self.lazy:
            return 0
        now = self.clock()
        hold = timedelta(seconds=LAZY_HOLD)
        done = 0
        for session_id, lazy in self.lazy.items():
            connection = None if lazy.connection is None else lazy.connection()
            expired = lazy.record["expires_at"] <= now
            late = now - lazy.record["last_message_at"] >= hold
            if not (write_out_all or expired or late or connection is None or connection_closing(connection)):
                continue
            if self.lazy.get(session_id) is not lazy:
                continue  # taken by a request meanwhile
            self.lazy.pop(session_id)
            self.live.drop(session_id)
            try:
                if expired and not write_out_all:
                    await self._end_lazy(lazy.record, "timeout", "the device stopped answering (session timeout)")
                elif await self._write_out(lazy.record) and connection is not None:
                    # Its next message on the same connection need not read it back.
                    self.live.put(session_id, connection, _written(lazy.record), now)
            except PyMongoError as exc:
                if session_id not in self.lazy:
                    self.lazy.put(lazy)  # tried again at the next sweep
                log.warning("lazy session %s not written out yet: %s", session_id, exc)
                continue
            done += 1
        return done

    async def keep_lazy_sessions(self) -> None:
        """Runs while the endpoint serves (``acs/app.py``)."""
        while True:
            await asyncio.sleep(LAZY_SWEEP)
            try:
                await self.sweep_lazy()
            except Exception:
                log.exception("the lazy sessions' sweep failed; tried again")

    def _stored_snapshot(self, session: AcsSession) -> Document:
        """The machine's state for the database, the request in flight sealed: it may be the
        SetParameterValues carrying a password or a Wi-Fi key (issue 11: secrets sealed at rest)."""
        snapshot = session.snapshot.model_dump(mode="json")
        pending = snapshot.get("pending_request")
        if pending is not None and self.box is not None:
            snapshot["pending_request"] = {SEALED: self.box.encrypt(json.dumps(pending))}
        return snapshot

    def _loaded_snapshot(self, stored: Document) -> SessionSnapshot:
        pending = stored.get("pending_request")
        if isinstance(pending, dict) and SEALED in pending and self.box is not None:
            stored = {**stored, "pending_request": json.loads(self.box.decrypt(pending[SEALED]))}
        return SessionSnapshot.model_validate(stored)

    async def reap_stale(self) -> int:
        """Sessions whose device went silent: the scheduled job calls this. Their history is written
        from the lease and the newest step, as for any broken session; steps left by a request that
        lost its race after a session ended are deleted once well past their expiry."""
        now = self.clock()
        count = 0
        for record in await self.sessions.stale(now):
            if record.get("live"):
                await self.abort(record["_id"], "timeout", "the device stopped answering (session timeout)")
                count += 1
            else:  # a lease its ended session did not free (a crash in between)
                await self.dispatcher.on_session_broken(record["_id"], "the session's worker stopped")
                await self._free(record["device_id"], record["_id"])
        strays = await self.sessions.stray_steps(now - 2 * self.timeouts.idle - LOCK_SLACK)
        for session_id, device_id in {(str(step["session_id"]), str(step["device_id"])) for step in strays}:
            if await self.sessions.load_live(session_id) is not None:
                continue  # an early step of a long session that is still running
            # A task the session claimed in its racing request may still be dispatched to it.
            await self.dispatcher.on_session_broken(session_id, "the session ended meanwhile")
            await self.sessions.forget_steps(session_id, device_id)
        return count


def envelope_id(envelope: Envelope) -> str | None:
    return envelope.id


def _written(record: SessionRecord) -> SessionRecord:
    written = record.copy()
    written.pop("lazy", None)
    return written


def _stored_state(record: SessionRecord) -> Document:
    return {name: value for name, value in record.items() if name not in WORKER_ONLY}


def _is_inform(envelope: Envelope | None) -> bool:
    return envelope is not None and isinstance(envelope.body, Inform)


def _weak(connection: Any) -> weakref.ref[Any] | None:
    try:
        return weakref.ref(connection)
    except TypeError:  # cannot be weakly referenced: treated as closed at the next sweep
        return None


def _rpc(at: datetime, direction: str, name: str, message_id: str | None, **extra: Any) -> Document:
    entry: Document = {"at": at, "dir": direction, "name": name, "id": message_id}
    entry.update(extra)
    return entry


def _event_rpc(now: datetime, event: SessionEvent) -> Document:
    match event:
        case CpeRequestReceived():
            return _rpc(now, "cpe", event.request.kind, event.envelope.id)
        case ResponseReceived():
            return _rpc(now, "cpe", event.response.kind, event.request_id)
        case FaultReceived():
            return _rpc(
                now,
                "cpe",
                "Fault",
                event.request_id,
                fault={"code": event.fault.fault_code, "string": event.fault.fault_string},
            )
    return _rpc(now, "cpe", "empty", None)


def _with_rpcs(record: SessionRecord, rpcs: list[Document]) -> SessionRecord:
    """The exchange so far with ``rpcs`` added: listed up to MAX_RPCS_PER_SESSION, counted beyond."""
    listed = list(record.get("rpcs", []))
    room = MAX_RPCS_PER_SESSION - len(listed)
    return {"rpcs": listed + rpcs[: max(room, 0)], "rpc_count": int(record.get("rpc_count", len(listed))) + len(rpcs)}  # type: ignore[typeddict-item]


def version_of(record: SessionRecord) -> CwmpVersion:
    return CwmpVersion(record.get("cwmp_version", "1.0"))
