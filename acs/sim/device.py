"""One simulated CPE: state, event bookkeeping and the session lifecycle. Pure: no I/O, no clock.

The caller passes `now` (seconds since the epoch) everywhere. RPC answers live in rpc.py.
Lifecycle, as a real CPE does it (TR-069 3.7.1):

    tick(now) -> True?  ->  start_session(now) -> Inform  ->  inform_accepted(now)
        -> next_request() / request_accepted()        (TransferComplete to deliver)
        -> handle(rpc, now) -> response | Fault        (repeated, one per ACS request)
        -> end_session(now, ok)                        (reboot, transfers, diagnostics start here)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from acs.sim import values
from acs.sim.diagnostics import complete_diagnostics
from acs.sim.profile import Profile
from acs.sim.tree import ParameterTree
from cwmp import CwmpVersion, DeviceIdStruct, EventStruct, Inform, ParameterValue, TransferComplete
from cwmp.models import FaultStruct

# TR-069 3.2.1.1: retry wait = m * (k/1000)^(n-1) seconds, m=5, k=2000, at most 10 doublings.
RETRY_MINIMUM_WAIT = 5.0
RETRY_MULTIPLIER = 2.0
HIDDEN_SUFFIXES = ("Password", "KeyPassphrase", "PreSharedKey", "WEPKey")


@dataclass
class DeviceSettings:
    """Fleet-wide knobs every device reads (one shared instance)."""

    acs_url: str = "http://127.0.0.1:7547/"
    acs_username: str = ""
    acs_password: str = ""
    periodic_interval: int = 300
    cr_base_url: str = ""  # "http://127.0.0.1:PORT/cr/"; the serial is appended
    boot_seconds: float = 2.0
    transfer_seconds: float = 1.0
    diagnostics_seconds: float = 1.0
    max_instances: int = 32
    max_queued_transfers: int = 4
    brick_share: float = 0.0  # devices that never boot again after a firmware upgrade (a bricked ONT)


@dataclass
class Transfer:
    """A Download / ScheduleDownload / Upload the CPE accepted (TR-069 A.4.1.6 states)."""

    command_key: str
    is_download: bool
    file_type: str
    url: str
    due: float
    file_size: int = 0
    target_file_name: str = ""
    username: str = ""
    password: str = ""
    state: int = 1  # 1 not yet started, 2 in progress
    started_at: float | None = None
    seq: int = 0  # command keys may repeat (often ""): timers refer to this


@dataclass(order=True)
class Timer:
    due: float
    kind: str = field(compare=False)  # boot | transfer | diagnostics | scheduled_inform | crash
    arg: str = field(default="", compare=False)


class SimDevice:
    __slots__ = (
        "_reported",
        "attributes",
        "boot_at",
        "boot_count",
        "boot_events",
        "bootstrapped",
        "crash_interval",
        "cwmp_version",
        "drift_since",
        "events",
        "in_session",
        "index",
        "last_inform_at",
        "olt_id",
        "online",
        "ont_id",
        "oui",
        "pending_actions",
        "periodic_anchor",
        "pon_port",
        "profile",
        "queued",
        "retry_count",
        "rx_drift_db_per_hour",
        "seed",
        "serial",
        "session_wanted_at",
        "settings",
        "software_version",
        "timers",
        "transfers_done",
        "tree",
    )

    profile: Profile
    settings: DeviceSettings
    index: int
    seed: int
    serial: str
    oui: str
    software_version: str
    cwmp_version: CwmpVersion
    olt_id: str
    pon_port: str
    ont_id: int
    tree: ParameterTree
    boot_count: int

    def __init__(
        self,
        profile: Profile,
        settings: DeviceSettings,
        index: int,
        seed: int,
        *,
        serial: str,
        oui: str,
        software_version: str,
        cwmp_version: CwmpVersion,
        olt_id: str = "",
        pon_port: str = "",
        ont_id: int = 0,
    ) -> None:
        self.profile = profile
        self.settings = settings
        self.index = index
        self.seed = seed
        self.serial = serial
        self.oui = oui
        self.software_version = software_version
        self.cwmp_version = cwmp_version
        self.olt_id = olt_id
        self.pon_port = pon_port
        self.ont_id = ont_id
        self.tree = ParameterTree(profile)
        self.boot_at = 0.0
        self.boot_count = 0
        self.bootstrapped = False
        self.online = False
        self.in_session = False
        self.events: list[EventStruct] = []
        self.boot_events: list[EventStruct] = []  # "M Reboot" etc., delivered with the next 1 BOOT
        self.transfers_done: list[TransferComplete] = []
        self.queued: list[Transfer] = []
        self.timers: list[Timer] = []
        self.pending_actions: list[tuple[str, str]] = []  # applied at session end
        self.attributes: dict[str, int] | None = None  # notification per parameter (0 is absent)
        self._reported: dict[str, str] | None = None  # last value the ACS saw, for notified params
        self.periodic_anchor = 0.0
        self.last_inform_at: float | None = None
        self.session_wanted_at: float | None = None
        self.retry_count = 0
        self.rx_drift_db_per_hour = 0.0
        self.drift_since: float | None = None
        self.crash_interval: float | None = None

    # -- identity and values -------------------------------------------------------------------

    @property
    def device_id(self) -> DeviceIdStruct:
        identity = self.profile.identity
        return DeviceIdStruct(
            manufacturer=identity.manufacturer,
            oui=self.oui,
            product_class=identity.product_class,
            serial_number=self.serial,
        )

    @property
    def connection_request_url(self) -> str:
        return self.settings.cr_base_url + self.serial if self.settings.cr_base_url else ""

    def param(self, relative: str) -> str:
        """Full name of a parameter below the root, e.g. "ManagementServer.ParameterKey"."""
        return self.profile.root + relative

    def read(self, name: str, now: float) -> str | None:
        """Current value of an existing parameter, None when there is no such parameter."""
        if self.tree.is_overridden(name):
            return self.tree.stored_value(name)
        kind = self.profile.dynamic.get(name)
        if kind is not None and self.tree.exists(name):
            return values.compute(self, kind, now)
        return self.tree.stored_value(name)

    def wire_value(self, name: str, now: float) -> str:
        # TR-069 A.3.2.2: a CPE returns an empty string for a password on read.
        return "" if name.endswith(HIDDEN_SUFFIXES) else self.read(name, now) or ""

    def uptime(self, now: float) -> int:
        return max(0, int(now - self.boot_at)) if self.online else 0

    def rx_degradation_db(self, now: float) -> float:
        if self.drift_since is None or self.software_version != self.profile.identity.bad_firmware:
            return 0.0
        return self.rx_drift_db_per_hour * max(0.0, now - self.drift_since) / 3600.0

    def periodic_interval(self) -> int:
        """The ACS-set PeriodicInformInterval, else the fleet's default (`--interval`)."""
        stored = self.read(self.param("ManagementServer.PeriodicInformInterval"), 0.0)
        return max(1, int(stored)) if stored and stored.isdigit() else self.settings.periodic_interval

    def periodic_enabled(self) -> bool:
        return self.read(self.param("ManagementServer.PeriodicInformEnable"), 0.0) in ("true", "1")

    # -- events --------------------------------------------------------------------------------

    def add_event(self, code: str, command_key: str = "") -> None:
        # Single events appear once per Inform; "M ..." events once per command (TR-069 3.7.1.5).
        if code.startswith("M ") or all(e.event_code != code for e in self.events):
            self.events.append(EventStruct(event_code=code, command_key=command_key))

    def want_session(self, now: float) -> None:
        if self.session_wanted_at is None or self.session_wanted_at > now:
            self.session_wanted_at = now

    # -- power and time ------------------------------------------------------------------------

    def power_on(self, now: float, boot_delay: float = 0.0) -> None:
        """Plug the device in: it boots after `boot_delay` seconds."""
        self.timers.append(Timer(now + boot_delay, "boot"))

    def power_off(self) -> None:
        """Power loss (or OLT outage): nothing pending survives except what a CPE keeps in flash."""
        self.online = False
        self.in_session = False
        self.timers = [t for t in self.timers if t.kind == "transfer"]
        self.session_wanted_at = None
        self.pending_actions.clear()

    def _boot(self, now: float) -> None:
        self.online = True
        self.boot_at = now
        self.boot_count += 1
        self.periodic_anchor = now
        if not self.bootstrapped:
            self.add_event("0 BOOTSTRAP")
        self.add_event("1 BOOT")
        for event in self.boot_events:
            self.add_event(event.event_code, event.command_key)
        self.boot_events = []
        if self.crash_interval and self.software_version == self.profile.identity.bad_firmware:
            self.timers.append(Timer(now + self.crash_interval, "crash"))
        self.want_session(now)

    def reboot(self, now: float, *events: EventStruct) -> None:
        self.boot_events.extend(events)
        self.power_off()
        self.timers.append(Timer(now + self.settings.boot_seconds, "boot"))

    def next_periodic(self) -> float | None:
        if not self.online or not self.periodic_enabled():
            return None
        interval = self.periodic_interval()
        return self.periodic_anchor + interval

    def next_due(self) -> float | None:
        """When `tick` has something to do next (None: nothing until something external happens)."""
        candidates = [t.due for t in self.timers]
        if self.online and not self.in_session:
            candidates += [x for x in (self.session_wanted_at, self.next_periodic()) if x is not None]
        return min(candidates, default=None)

    def tick(self, now: float) -> bool:
        """Run what is due; True when the device wants to open a session now."""
        for timer in sorted(t for t in self.timers if t.due <= now):
            self.timers.remove(timer)
            self._fire(timer, now)
        periodic = self.next_periodic()
        if periodic is not None and periodic <= now and not self.in_session:
            interval = self.periodic_interval()
            self.periodic_anchor += interval * max(1, math.floor((now - self.periodic_anchor) / interval))
            self.add_event("2 PERIODIC")
            self.want_session(now)
        wanted = self.session_wanted_at
        return self.online and not self.in_session and wanted is not None and wanted <= now

    def _fire(self, timer: Timer, now: float) -> None:
        if timer.kind == "boot":
            self._boot(now)
        elif timer.kind == "crash":
            self.reboot(now)
        elif timer.kind == "scheduled_inform":
            self.add_event("3 SCHEDULED")
            self.add_event("M ScheduleInform", timer.arg)
            self.want_session(now)
        elif timer.kind == "diagnostics":
            complete_diagnostics(self, timer.arg, now)
            self.add_event("8 DIAGNOSTICS COMPLETE")
            self.want_session(now)
        elif timer.kind == "transfer":
            for transfer in self.queued:
                if str(transfer.seq) == timer.arg and transfer.state == 1:
                    transfer.state, transfer.started_at = 2, now
                    break

    def connection_request(self, now: float) -> bool:
        """A valid connection request arrived; False when the device cannot answer (offline)."""
        if not self.online:
            return False
        if not self.in_session:  # TR-069 3.2.2: ignored while a session is in progress
            self.add_event("6 CONNECTION REQUEST")
            self.want_session(now)
        return True

    # -- transfers -----------------------------------------------------------------------------

    def transfers_in_progress(self) -> list[Transfer]:
        """Transfers whose file the fleet must now fetch or send (then call transfer_finished)."""
        return [t for t in self.queued if t.state == 2]

    def transfer_finished(self, transfer: Transfer, fault_code: int, now: float, fault_string: str = "") -> None:
        self.queued.remove(transfer)
        started = datetime.fromtimestamp(transfer.started_at or now, UTC)
        self.transfers_done.append(
            TransferComplete(
                command_key=transfer.command_key,
                fault=FaultStruct(fault_code=fault_code, fault_string=fault_string),
                start_time=started,
                complete_time=datetime.fromtimestamp(now, UTC),
            )
        )
        method = "M Download" if transfer.is_download else "M Upload"
        done = (
            EventStruct(event_code=method, command_key=transfer.command_key),
            EventStruct(event_code="7 TRANSFER COMPLETE"),
        )
        if fault_code == 0 and transfer.is_download and transfer.file_type.startswith(("1 ", "3 ")):
            if transfer.file_type.startswith("1 "):
                self.software_version = self.firmware_version_of(transfer)
                if values.unit(self.seed, self.serial, "brick") < self.settings.brick_share:
                    self.power_off()  # bricked by the image: it never boots, nor sends TransferComplete
                    return
            self.reboot(now, *done)  # a new image or config takes effect after a reboot
            return
        for event in done:
            self.add_event(event.event_code, event.command_key)
        self.want_session(now)

    def firmware_version_of(self, transfer: Transfer) -> str:
        versions = self.profile.identity.software_versions
        named = [v for v in versions if v in transfer.url or v in transfer.target_file_name]
        if named:
            return max(named, key=len)
        current = versions.index(self.software_version) if self.software_version in versions else -1
        return versions[(current + 1) % len(versions)]

    # -- session -------------------------------------------------------------------------------

    def start_session(self, now: float) -> Inform:
        self.in_session = True
        self.session_wanted_at = None
        parameters = [self._inform_value(name, now) for name in self.profile.inform_parameters]
        listed = set(self.profile.inform_parameters)
        changes = self.value_changes(now)
        if changes:
            self.add_event("4 VALUE CHANGE")
        changed = [p for p in changes if p.name not in listed]
        return Inform(
            device_id=self.device_id,
            events=tuple(self.events),
            max_envelopes=1,
            current_time=datetime.fromtimestamp(now, UTC),
            retry_count=self.retry_count,
            parameters=(*parameters, *changed),
        )

    def _inform_value(self, name: str, now: float) -> ParameterValue:
        spec = self.profile.spec(name)
        return ParameterValue(name=name, value=self.wire_value(name, now), type=spec.xsd_type if spec else "xsd:string")

    def value_changes(self, now: float, active_only: bool = False) -> list[ParameterValue]:
        """Notified parameters whose value differs from what the ACS last saw (TR-069 3.2.1)."""
        if not self.attributes:
            return []
        reported = self._reported or {}
        changes = []
        for name, notification in self.attributes.items():
            if notification == 0 or (active_only and notification != 2):
                continue
            current = self.wire_value(name, now)
            if reported.get(name) != current:
                changes.append(self._inform_value(name, now))
        return changes

    def note_reported(self, name: str, now: float) -> None:
        if self._reported is None:
            self._reported = {}
        self._reported[name] = self.wire_value(name, now)

    def inform_accepted(self, now: float) -> None:
        for name in list(self.attributes or ()):
            self.note_reported(name, now)
        self.events = []
        self.retry_count = 0
        self.bootstrapped = True
        self.last_inform_at = now

    def next_request(self) -> TransferComplete | None:
        return self.transfers_done[0] if self.transfers_done else None

    def request_accepted(self) -> None:
        self.transfers_done.pop(0)

    def end_session(self, now: float, ok: bool, retry_after: float | None = None) -> None:
        """The session is over; ``retry_after``: seconds an ACS's 503 asked the CPE to wait."""
        self.in_session = False
        if self.events:  # the Inform never got through: retry with back-off (TR-069 3.2.1.1)
            self.retry_count += 1
            wait = RETRY_MINIMUM_WAIT * RETRY_MULTIPLIER ** min(self.retry_count - 1, 10)
            jitter = values.unit(self.seed, self.serial, "retry", self.retry_count)
            # The back-off is a lower bound on how soon to retry; an overloaded ACS's Retry-After
            # (RFC 9110 10.2.3) can only push the retry later, never sooner.
            self.session_wanted_at = now + max(wait * (1.0 + jitter), retry_after or 0.0)
        elif not ok and self.transfers_done:
            self.want_session(now + RETRY_MINIMUM_WAIT)
        actions, self.pending_actions = self.pending_actions, []
        for action, arg in actions:
            self._apply(action, arg, now)

    def _apply(self, action: str, arg: str, now: float) -> None:
        if action == "reboot":
            self.reboot(now, EventStruct(event_code="M Reboot", command_key=arg))
        elif action == "factory_reset":
            self.tree.reset()
            self.attributes = self._reported = None
            self.bootstrapped = False
            self.reboot(now)
        elif action == "diagnostics":
            self.timers.append(Timer(now + self.settings.diagnostics_seconds, "diagnostics", arg))
        elif action == "transfer":
            for transfer in self.queued:
                if str(transfer.seq) == arg:
                    self.timers.append(Timer(max(now, transfer.due), "transfer", arg))
