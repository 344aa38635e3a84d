"""Profiles in the CWMP session: the seam between the pure engine and the session path.

At Inform (``on_inform``), for a device that some triggered profile selects: one round trip
reads the cached values the configuration names and the subscriber record (in parallel), the
pure engine computes the differences, and only when there are some the tasks that fix them are
queued (created by ``profiles``, ParameterKey = the configuration's key): the session's
dispatcher sends them right after, like the provisioning task. A device already in sync costs
that one read and no write (its state is written only when it changes).

When those tasks end (``on_task_final``) the outcome is kept on the device (``configuration``):
in sync, applied, or failed with the fault. A value the device refused (a per-parameter fault of
SetParameterValues, TR-069 A.5) is remembered and left out of later plans until the desired
value changes, so a device never loops on it; after ``max_failures`` failed applications in a
row the device is blocked (shown in the API and the console) until an operator re-provisions it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cwmp import Inform
from cwmp.logtext import loggable
from schemas.profiles import EVENT_CODES, ApplyEvent, Value
from schemas.tasks import AddObjectTask, ReprovisionTask, SetParameterValuesTask
from tasks import params as task_params
from tasks.dispatch import InAcsRefused
from tasks.profiles.aliases import AliasTable, NotMapped
from tasks.profiles.catalog import ProfileCatalog
from tasks.profiles.diff import Drift, Memory, drift, table_digest
from tasks.profiles.layering import Configuration, StoredProfile, effective, ordered, triggered, wanted_prefixes
from tasks.profiles.plan import plan
from tasks.profiles.selector import DeviceFacts, matches_device, matches_subscriber
from tasks.queue import TaskError, TaskQueue
from tasks.records import Document, TaskRecord
from tasks.secretbox import SecretBox
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import HAS_OVERRIDES, OVERRIDES, DeviceRepository
from tasks.store.parameters import CachedParameter, ParameterRepository
from tasks.store.subscribers import SubscriberRepository

log = logging.getLogger("acs.profiles")
PROFILES_USER = "profiles"
STATE = "configuration"
REPROVISION = "reprovision_requested"
CONFIGURATION_EVENT = "configuration"
MAX_REFUSED = 50
INVALID_NAME = 9005  # TR-069 A.5.1 fault: Invalid parameter name
# Kinds whose success teaches the state nothing but the secrets planned with them.
UNREAD_KINDS = frozenset({"set_parameter_values", "add_object", "delete_object"})


class _Untriggered(enum.Enum):
    """``_on_events``: no profile of the device applies on these events, and no override does."""

    UNTRIGGERED = "untriggered"


_NOT_TRIGGERED = _Untriggered.UNTRIGGERED


class Status:
    IN_SYNC = "in_sync"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    BLOCKED = "blocked"
    PARTIAL = "partial"  # everything applied but values the device refused (reported, not retried)


@dataclass(frozen=True)
class Evaluation:
    """A device's configuration and how it compares with the cache (API, preview, drift)."""

    device: DeviceFacts
    profiles: list[StoredProfile]
    subscriber: Document | None
    configuration: Configuration
    drift: Drift
    cache: dict[str, CachedParameter]


def overrides_of(device: Mapping[str, Any]) -> list[tuple[str, Value]]:
    return [(str(o["name"]), o["value"]) for o in device.get(OVERRIDES) or [] if isinstance(o, dict)]


def memory_of(state: Mapping[str, Any]) -> Memory:
    return Memory(
        refused=frozenset(str(r.get("digest")) for r in state.get("refused") or []),
        secrets=frozenset(state.get("secrets") or []),
        watch_key=state.get("watch_key"),
    )


def inform_events(inform: Inform) -> set[ApplyEvent]:
    return {EVENT_CODES[event.event_code] for event in inform.events if event.event_code in EVENT_CODES}


class ProfileEngine:
    def __init__(
        self,
        catalog: ProfileCatalog,
        aliases: AliasTable,
        devices: DeviceRepository,
        parameters: ParameterRepository,
        subscribers: SubscriberRepository,
        events: DeviceEventRepository,
        queue: TaskQueue,
        box: SecretBox,
        clock: Callable[[], datetime],
        max_failures: int = 3,
    ) -> None:
        self.catalog = catalog
        self.aliases = aliases
        self.devices = devices
        self.parameters = parameters
        self.subscribers = subscribers
        self.events = events
        self.queue = queue
        self.box = box
        self.clock = clock
        self.max_failures = max_failures
        self._digest_key = box.derive_key(b"profile-values")

    def digest(self, name: str, value: Value) -> str:
        """HMAC of one (name, value): remembers a refused or an accepted secret value without it."""
        wire = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return hmac.new(self._digest_key, f"{name}\0{wire}".encode(), hashlib.sha256).hexdigest()[:32]

    # -- evaluation (no writes) ----------------------------------------------------------------

    async def evaluate(
        self,
        device: Mapping[str, Any],
        profiles: list[StoredProfile] | None = None,
        bootstrap: bool = False,
        read_tables: frozenset[str] = frozenset(),
    ) -> Evaluation:
        facts = DeviceFacts.of(device)
        pool = await self.catalog.current() if profiles is None else profiles
        candidates = [p for p in pool if p.spec.enabled and matches_device(p.spec.selector, facts)]
        overrides = overrides_of(device)
        prefixes = wanted_prefixes(candidates, overrides, facts, self.aliases)
        login_path = self._login_path(facts)
        if login_path:
            prefixes.append(login_path)
        need_subscriber = any(self._needs_subscriber(p) for p in candidates)
        cache, subscriber = await asyncio.gather(
            self.parameters.get_many(facts.device_id, sorted(set(prefixes))) if prefixes else _nothing(),
            self._subscriber(facts) if need_subscriber else _none(),
        )
        if subscriber is None and need_subscriber and login_path and cache.get(login_path):
            subscriber = await self._subscriber_by_login(str(cache[login_path].value), facts)
        matching = ordered(p for p in candidates if matches_subscriber(p.spec.selector, subscriber))
        values = {name: p.value for name, p in cache.items() if p.value is not None}
        config = effective(matching, overrides, facts, subscriber, values, self.aliases)
        state = device.get(STATE) or {}
        memory = Memory() if bootstrap else memory_of(state)
        result = drift(config, cache, memory, self.digest, read_tables)
        return Evaluation(facts, matching, subscriber, config, result, cache)

    @staticmethod
    def _needs_subscriber(profile: StoredProfile) -> bool:
        from tasks.profiles.templates import needs_subscriber

        spec = profile.spec
        values = [*spec.parameters.values(), *(v for o in spec.objects for v in o.values.values())]
        return spec.selector.needs_subscriber or any(needs_subscriber(v) for v in values)

    def _login_path(self, facts: DeviceFacts) -> str | None:
        try:
            return self.aliases.resolve("wan.pppoe.username", facts.root, facts.oui).path
        except NotMapped:
            return None

    async def _subscriber(self, facts: DeviceFacts) -> Document | None:
        stored = await self.subscribers.by_serial(facts.serial_number)
        if stored is None or stored.get("bind_by", "serial") != "serial":
            return None
        if stored.get("device_id") != facts.device_id:
            await self.subscribers.bind(stored["_id"], facts.device_id)
        return self.subscribers.opened(stored)

    async def _subscriber_by_login(self, login: str, facts: DeviceFacts) -> Document | None:
        stored = await self.subscribers.by_pppoe_login(login)
        if stored is None or stored.get("bind_by") != "pppoe_login":
            return None
        if stored.get("device_id") != facts.device_id:
            await self.subscribers.bind(stored["_id"], facts.device_id)
        return self.subscribers.opened(stored)

    # -- the session hook ------------------------------------------------------------------------

    async def on_inform(self, device: Document, inform: Inform, bootstrap: bool) -> int | None:
        """Queue what brings the device to its configuration, when an event of its profiles fired;
        how many tasks the session may claim for it (None: a read's re-plan will queue more in this
        session, their number unknown yet)."""
        events = inform_events(inform)
        # A re-provision is a ``reprovision`` task (``reprovision`` below); this flag on the device
        # document is a request stored by an older version, still honoured.
        on_demand = bool(device.get(REPROVISION))
        if on_demand:
            events.add(ApplyEvent.ON_DEMAND)
        queued = await self._on_events(device, events, bootstrap, on_demand)
        return 0 if queued is _NOT_TRIGGERED else queued

    async def reprovision(self, task: TaskRecord) -> Document:
        """A ``reprovision`` task, claimed by the device's session (under its lease): the
        configuration applied again as ON DEMAND (refusals forgotten, a block lifted); its tasks go
        out in this session. The task's result: how many tasks were queued (None: a read of the
        device's tables first, the rest planned from its answer)."""
        device_id = str(task["device_id"])
        device = await self.devices.get(device_id)
        if device is None:
            raise InAcsRefused("the device is no longer stored")
        queued = await self._on_events(device, {ApplyEvent.ON_DEMAND}, bootstrap=False, on_demand=True)
        if queued is _NOT_TRIGGERED:
            raise InAcsRefused("no profile that selects this device applies ON DEMAND, and it has no overrides: "
                               "nothing to apply")
        return {"tasks_queued": queued}

    async def _on_events(
        self, device: Document, events: set[ApplyEvent], bootstrap: bool, on_demand: bool
    ) -> int | _Untriggered | None:
        """``on_inform`` for these events: the tasks queued (None: more to come, ``_apply``), or
        ``_NOT_TRIGGERED``."""
        state: Document = dict(device.get(STATE) or {})
        if state.get("pending"):
            # This Inform's proofs (dispatcher.on_inform) may have settled them since ``device`` was read.
            fresh = await self.devices.get(str(device["_id"]), {STATE: 1})
            state = dict((fresh or {}).get(STATE) or {})
            state["pending"] = await self._still_open(state.get("pending") or [])
        profiles = await self.catalog.current()
        facts = DeviceFacts.of(device)
        candidates = [p for p in profiles if p.spec.enabled and matches_device(p.spec.selector, facts)]
        own = bool(device.get(OVERRIDES)) and bool(events & {ApplyEvent.BOOTSTRAP, ApplyEvent.ON_DEMAND})
        if not own and not triggered(candidates, events):
            return _NOT_TRIGGERED
        if state.get("status") == Status.BLOCKED and not on_demand:
            return 0  # an operator must look at it (re-provision unblocks)
        if state.get("pending") and not (bootstrap or on_demand):
            return 0  # the last application's tasks are still queued: they go in this session
        if state.get("pending"):
            await self._cancel(state["pending"], "a newer application (BOOTSTRAP or re-provision) replaced it")
        stored_state = state
        if bootstrap:
            # TR-069 3.7.1.5: BOOTSTRAP means the device lost its configuration (a factory reset):
            # nothing it accepted before can be assumed now, and what it refused may be accepted.
            state = {key: value for key, value in state.items() if key in ("failures",)}
        if on_demand:
            state["failures"], state["refused"] = 0, []
        return await self._apply(device, state, bootstrap, on_demand, stored_state)

    async def _apply(
        self,
        device: Mapping[str, Any],
        state: Document,
        bootstrap: bool,
        on_demand: bool,
        stored_state: Mapping[str, Any] | None = None,
        failed_before: bool = False,
    ) -> int | None:
        """Evaluate, and queue the plan's tasks (one insert), then the state that names them (one
        device write); a device in sync whose stored state already says so costs no write; how many
        tasks were queued (None: a read's re-plan queues more). ``stored_state``: the state as stored
        (``state`` without what a BOOTSTRAP forgets); ``failed_before``: a re-plan after a read of
        this application failed."""
        device_id = str(device["_id"])
        read_tables = frozenset(state.pop("read_tables", None) or [])
        evaluation = await self.evaluate({**device, STATE: state}, bootstrap=bootstrap, read_tables=read_tables)
        config, result = evaluation.configuration, evaluation.drift
        now = self.clock()
        base = {
            **state,
            "key": config.key,
            "profiles": list(config.profiles),
            "checked_at": now,
            "subscriber": None if evaluation.subscriber is None else evaluation.subscriber["account"],
            "refused": self._still_refused(state, result),
            "problems": [{"name": p.name, "source": p.source.label, "reason": p.reason} for p in config.problems],
        }
        if result.in_sync:
            status = Status.PARTIAL if result.refused else Status.IN_SYNC
            # "applied" with this key already says the device holds this configuration: no write.
            same = (status,) if result.refused else (Status.IN_SYNC, Status.APPLIED)
            unchanged = state.get("status") in same and state.get("key") == config.key
            if bootstrap and stored_state is not None and not stored_state.get("refused"):
                # A BOOTSTRAP forgets refusals and accepted secrets; a state that holds none and
                # already says this key is in place stays true (no write: issue 14's one read).
                unchanged = stored_state.get("status") in same and stored_state.get("key") == config.key
            if not unchanged or on_demand:
                await self._save(device_id, {**base, "status": status, "pending": []}, clear_request=True)
            return 0
        steps = plan(result)
        tasks = [self._task(device_id, request, config.key) for request in steps.requests]
        secrets = self._secrets_if_applied(base.get("secrets") or [], steps.requests)
        if tasks and not steps.replan and secrets is not None:
            # What the outcome needs when every task succeeds, kept on the last one: then it is
            # recorded with no read of the device (``_concluded_unread``; ``TaskRecord``).
            tasks[-1]["configuration_outcome"] = {"profiles": list(config.profiles), "secrets": secrets}
        # One insert for the plan (its tasks are stored before the state that names them).
        await self.queue.repository.insert_all(tasks)
        invalid = [{"name": n, "reason": why} for n, why in steps.invalid]
        fields = {
            **base,
            "status": Status.APPLYING if tasks else Status.FAILED,
            "pending": [str(task["_id"]) for task in tasks],
            "run_failed": bool(invalid) or failed_before,
            "planned_watch_key": result.watch_key,
            "replan": steps.replan,
            "invalid": invalid,
            "started_at": now,
        }
        await self._save(device_id, fields, clear_request=True)
        log.info(
            "profiles %s: %d change(s), %d object(s) to add, %d to delete -> %d task(s) [%s]",
            device_id,
            len(result.changes),
            len(result.adds),
            len(result.deletes),
            len(tasks),
            config.key,
        )
        # A read's re-plan queues its tasks in this session (one SetParameterValues, AddObject and
        # DeleteObject for the rest): the session claims until the queue is empty.
        return None if steps.replan else len(tasks)

    def _still_refused(self, state: Mapping[str, Any], result: Drift) -> list[Document]:
        """Refusals still relevant: those whose desired value is unchanged."""
        kept = {self.digest(c.name, c.desired.value) for c in result.refused}
        kept |= {table_digest(table, self.digest) for table in result.missing}
        return [r for r in state.get("refused") or [] if r.get("digest") in kept]

    async def _still_open(self, task_ids: list[str]) -> list[str]:
        """Pending tasks that can still run. One expired by the scheduled job or cancelled by an
        operator ends without the dispatcher's final hooks: it must not hold the device's
        configuration back for ever (rare: normally the tasks end in the session that queued them)."""
        still = []
        for task_id in task_ids:
            task = await self.queue.repository.get(task_id)
            if task is not None and task["status"] in ("queued", "dispatched"):
                still.append(task_id)
        return still

    def _secrets_if_applied(self, known: list[str], requests: list[Any]) -> list[str] | None:
        """The accepted secrets' digests once these requests succeed; None when an added instance
        carries one (its name is known only from the AddObject answer: ``_learn_success``)."""
        from tasks.secret_values import is_secret

        secrets = set(known)
        for request in requests:
            if isinstance(request, SetParameterValuesTask):
                for setting in request.values:
                    if is_secret(setting.name, setting.value):
                        secrets.add(self.digest(setting.name, setting.value))
            elif isinstance(request, AddObjectTask):
                if any(is_secret(request.object + s.name, s.value) for s in request.values or []):
                    return None
                secrets |= {
                    self.digest(s.name, s.value) for s in request.other_values or [] if is_secret(s.name, s.value)
                }
        return sorted(secrets)

    def _task(self, device_id: str, request: Any, key: str) -> TaskRecord:
        task = self.queue.new_document(device_id, request, PROFILES_USER)
        # TR-069 A.3.2.1: the ParameterKey the device reports once it applied the change names the
        # configuration (profile versions + values), so an Inform shows which one it runs.
        task["command_key"] = key
        return task

    async def _cancel(self, task_ids: list[str], why: str) -> None:
        for task_id in task_ids:
            with contextlib.suppress(TaskError):  # already dispatched or final: its outcome arrives by itself
                await self.queue.cancel(task_id, why)

    async def _save(self, device_id: str, state: Document, clear_request: bool = False) -> None:
        """The device's configuration state (group-committed with other sessions' device writes)."""
        unset = [REPROVISION] if clear_request else []
        await self.devices.update_if(device_id, {}, {STATE: state}, unset, wait_only=True)

    # -- outcomes ------------------------------------------------------------------------------

    async def on_task_final(self, task: TaskRecord) -> None:
        if task.get("created_by") != PROFILES_USER:
            return
        if await self._concluded_unread(task):
            return
        device_id = str(task["device_id"])
        device = await self.devices.get(device_id)
        if device is None:
            return
        state: Document = dict(device.get(STATE) or {})
        pending = [t for t in state.get("pending") or [] if t != task["_id"]]
        if len(pending) == len(state.get("pending") or []):
            return  # a task of an application that was replaced since
        state["pending"] = pending
        if task["status"] == "done":
            self._learn_success(state, task)
        else:
            self._learn_failure(state, task)
        if task["kind"] == "get_parameter_names" and task["status"] == "done":
            state["read_tables"] = [*(state.get("read_tables") or []), task["params"]["path"]]
        if not pending and state.pop("replan", False):
            # The tables are known now (or known to be missing: 9005): everything else in one plan.
            failed = bool(state.pop("run_failed", False))
            await self._apply(device, state, bootstrap=False, on_demand=False, failed_before=failed)
            return
        if not pending:
            await self._conclude(device_id, state)
            return
        await self._save(device_id, state)

    def _learn_success(self, state: Document, task: TaskRecord) -> None:
        if task["kind"] == "set_parameter_attributes":
            state["watch_key"] = state.get("planned_watch_key")
            return
        params = task_params.unseal(task.get("params") or {}, self.box)
        base = ""
        if task["kind"] == "add_object":
            base = str((task.get("result") or {}).get("object") or "")
        secrets = set(state.get("secrets") or [])
        from tasks.secret_values import is_secret

        named = [(base + str(s.get("name")), s.get("value")) for s in params.get("values") or []]
        named += [(str(s.get("name")), s.get("value")) for s in params.get("other_values") or []]  # full names
        for name, value in named:
            if is_secret(name, value):
                secrets.add(self.digest(name, value))
        state["secrets"] = sorted(secrets)

    def _learn_failure(self, state: Document, task: TaskRecord) -> None:
        state["run_failed"] = True
        fault = task.get("fault") or {}
        if not (task["kind"] == "get_parameter_names" and fault.get("code") == INVALID_NAME):
            state["replan"] = False  # a read that failed otherwise would be asked again: no re-plan
        state["last_fault"] = {
            "task_id": task["_id"],
            "kind": task["kind"],
            "code": fault.get("code"),
            "string": fault.get("string"),
            "reason": task.get("reason"),
        }
        params = task_params.unseal(task.get("params") or {}, self.box)
        values = {str(s.get("name")): s.get("value") for s in params.get("values") or []}
        values |= {str(s.get("name")): s.get("value") for s in params.get("other_values") or []}  # add_object's
        refused = list(state.get("refused") or [])
        if task["kind"] == "get_parameter_names" and fault.get("code") == INVALID_NAME:
            # The device has no such table (a VoIP profile on an ONT without voice): remembered,
            # and not asked again every session.
            table = str(params.get("path"))
            refused.append(  # left out of the re-plan, which still applies the rest
                {
                    "name": table,
                    "digest": table_digest(table, self.digest),
                    "code": fault.get("code"),
                    "string": fault.get("string"),
                }
            )
        for item in fault.get("detail") or []:
            name = str(item.get("parameter"))
            if name in values:
                # TR-069 A.5: the per-parameter fault says which value the device would not take.
                refused.append(
                    {
                        "name": name,
                        "digest": self.digest(name, values[name]),
                        "code": item.get("code"),
                        "string": item.get("string"),
                    }
                )
        state["refused"] = refused[-MAX_REFUSED:]

    async def _concluded_unread(self, task: TaskRecord) -> bool:
        """The common outcome in one conditional write and no read of the device: the last task of
        an application succeeded, it was the only one still pending, nothing of it failed and no
        value is refused. Anything else (False) takes the path that reads the device's state."""
        closing = task.get("configuration_outcome") or {}
        if not closing or task["status"] != "done" or task["kind"] not in UNREAD_KINDS:
            return False
        device_id, now = str(task["device_id"]), self.clock()
        condition = {
            f"{STATE}.pending": [task["_id"]],
            f"{STATE}.run_failed": False,
            f"{STATE}.replan": False,
            f"{STATE}.refused": [],
        }
        fields = {
            f"{STATE}.status": Status.APPLIED,
            f"{STATE}.pending": [],
            f"{STATE}.failures": 0,
            f"{STATE}.last_fault": None,
            f"{STATE}.finished_at": now,
            f"{STATE}.secrets": list(closing.get("secrets") or []),
        }
        if not await self.devices.update_if(device_id, condition, fields, [f"{STATE}.run_failed"]):
            return False
        detail = {
            "status": Status.APPLIED,
            "key": task.get("command_key"),
            "profiles": list(closing.get("profiles") or []),
            "failures": 0,
            "refused": [],
            "fault": None,
        }
        await self.events.record(device_id, CONFIGURATION_EVENT, now, detail)
        log.info("profiles %s: %s (%s)", device_id, Status.APPLIED, loggable(str(task.get("command_key"))))
        return True

    async def _conclude(self, device_id: str, state: Document) -> None:
        now = self.clock()
        failed = bool(state.pop("run_failed", False))
        if failed:
            state["failures"] = int(state.get("failures") or 0) + 1
            blocked = state["failures"] >= self.max_failures
            state["status"] = Status.BLOCKED if blocked else Status.FAILED
        else:
            state["failures"], state["last_fault"] = 0, None
            state["status"] = Status.PARTIAL if state.get("refused") else Status.APPLIED
        state["finished_at"] = now
        await self._save(device_id, state)
        detail = {
            "status": state["status"],
            "key": state.get("key"),
            "profiles": state.get("profiles") or [],
            "failures": state.get("failures", 0),
            "refused": [r["name"] for r in state.get("refused") or []],
            "fault": state.get("last_fault"),
        }
        await self.events.record(device_id, CONFIGURATION_EVENT, now, detail)
        log.info("profiles %s: %s (%s)", device_id, state["status"], loggable(str(state.get("key"))))

    # -- operator actions ------------------------------------------------------------------------

    async def request_reprovision(self, device_id: str, by: str) -> TaskRecord | None:
        """Re-apply the device's configuration in its next session (ON DEMAND; unblocks it): a
        ``reprovision`` task, in the device's task history like any request; None when no such
        device is stored.

        A task, not a flag on the device document: FerretDB 1.24 writes every device update as
        "read it, write it whole", so a session's concurrent device write could drop the flag (the
        likely end of a Re-provision pressed during a health session, in a CI run, that was never
        applied). A task is an insert, and the session reads its device's open tasks anyway.
        """
        if await self.devices.get(device_id, {"_id": 1}) is None:
            return None
        task, _created = await self.queue.create(device_id, ReprovisionTask(kind="reprovision"), by)
        return task

    async def reprovision_requested(self, device: Mapping[str, Any]) -> bool:
        """Whether a re-provision waits for the device's next session (an open ``reprovision``
        task, or the flag an older version stored)."""
        if device.get(REPROVISION):
            return True
        return await self.queue.repository.open_of_kind(str(device["_id"]), "reprovision") is not None

    async def set_overrides(self, device_id: str, overrides: list[tuple[str, Value]]) -> bool:
        # ``HAS_OVERRIDES`` beside them: the drift report finds the devices with overrides by it.
        return await self.devices.set_fields(
            device_id, {OVERRIDES: [{"name": name, "value": value} for name, value in overrides],
                        HAS_OVERRIDES: bool(overrides)}
        )


async def _nothing() -> dict[str, CachedParameter]:
    return {}


async def _none() -> Document | None:
    return None
