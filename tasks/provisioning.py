"""What the ACS sets on a device by itself: periodic inform and connection-request credentials.

At BOOTSTRAP (or the first contact with a device another ACS managed) a system task sets
``ManagementServer.PeriodicInformEnable/Interval`` and, unless disabled, random per-device
``ConnectionRequestUsername/Password`` (TR-069 3.2.2: the ACS authenticates itself to the CPE
with these). The credentials are kept encrypted.

When they become the device's (with ``provisioned_at`` and the interval, ``ADOPTED``):
- an authenticated BOOTSTRAP (the usual one) stores them in the Inform's own device write, as
  sent, and the task keeps the device's fields as they were (``replaced_device_fields``); a task
  that ends otherwise than done in a session (a fault, a broken session after the send) puts those
  back. An accepted provisioning so costs no device write of its own (on FerretDB 1.24 an update is
  two PostgreSQL transactions: docs/performance.md). What it sets is cached the same way, in the
  Inform's tree write (``cached``; the task keeps ``replaced_values``), so its answer writes no cache.
  Between the Inform and the answer, and while a
  task whose session broke before sending it waits for the device's next session, the device's
  stored credentials are ones it does not have yet: a connection request then fails as for a
  device with none (a new device has none before either); a task cancelled or expired while
  waiting leaves them so until the next BOOTSTRAP;
- an unauthenticated BOOTSTRAP, or a device first met without one (``on_inform``), keeps them
  pending (``pending_connection_request``), adopted by one conditional device write only once the
  device accepted them (issue 11: such an Inform must not replace credentials the device has).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from cwmp import Inform
from schemas.tasks import ParameterSetting, SetParameterValuesTask, TaskStatus
from tasks.kinds.outcome import wire_value
from tasks.params import SEALED
from tasks.queue import TaskError, TaskQueue
from tasks.records import Document, TaskRecord
from tasks.registry import PROVISIONING_USER, data_model_root
from tasks.secret_values import is_secret
from tasks.secretbox import SecretBox
from tasks.store.devices import DeviceRepository
from tasks.store.parameters import ParameterRepository

log = logging.getLogger("acs.provisioning")
SYSTEM_USER = PROVISIONING_USER
RECENT_TASKS = 3  # a factory_reset proven by this BOOTSTRAP is among the device's last few done tasks
# The device fields an accepted provisioning sets (the credentials only when it sets them).
ADOPTED = ("connection_request_username", "connection_request_password", "provisioned_at", "periodic_inform_interval")


@dataclass(frozen=True)
class SessionClaim:
    """The session that creates a task and sends it itself (the task stored already claimed)."""

    session_id: str
    lease_until: datetime
    now: datetime


@dataclass(frozen=True)
class ProvisioningPlan:
    task: TaskRecord  # the SetParameterValues task, not stored yet
    fields: Document  # the device's fields written with the Inform (provisioning_task, ...)
    at_once: bool = False  # ``fields`` carry what the task sets (``ADOPTED``), put back if it fails
    # An unauthenticated Inform: ``fields`` only for a device without connection-request credentials
    # (issue 11); else ``pending``, the credentials kept pending until the device accepts them.
    pending: ProvisioningPlan | None = None
    # (name, value, xsi type) the task sets, as its answer would cache them: an ``at_once`` plan's
    # go into the Inform's own tree write (the cache), put back if the device does not accept them.
    cached: tuple[tuple[str, str, str], ...] = ()


class Provisioner:
    def __init__(
        self,
        queue: TaskQueue,
        devices: DeviceRepository,
        box: SecretBox,
        interval: int,
        set_connection_request_credentials: bool,
        parameters: ParameterRepository,
    ) -> None:
        self.queue = queue
        self.devices = devices
        self.box = box
        self.parameters = parameters
        self.interval = interval
        self.set_credentials = set_connection_request_credentials

    def plan(
        self, device_id: str, inform: Inform, bootstrap: bool, now: datetime, authenticated: bool = False
    ) -> ProvisioningPlan | None:
        """The provisioning a BOOTSTRAP gets, decided before the Inform is stored so that the device
        fields go into the Inform's own device write (``fields``): what the task sets, as of ``now``
        (for an unauthenticated Inform, only if the device has no connection-request credentials:
        ``pending`` otherwise). None for any other Inform (``on_inform`` decides those from the
        stored device)."""
        if not bootstrap:
            return None
        plan = self._plan(device_id, inform, with_credentials=self.set_credentials)
        pending = plan.fields["pending_connection_request"]
        fields: Document = {
            "provisioning_task": plan.task["_id"],
            "pending_connection_request": None,
            "provisioned_at": now,
            "periodic_inform_interval": self.interval,
        }
        if pending is not None:
            fields["connection_request_username"] = pending["username"]
            fields["connection_request_password"] = pending["password"]
        return ProvisioningPlan(
            plan.task, fields, at_once=True, pending=None if authenticated else plan, cached=plan.cached
        )

    def _plan(
        self, device_id: str, inform: Inform, with_credentials: bool, task_id: str | None = None
    ) -> ProvisioningPlan:
        root = data_model_root(inform) + "ManagementServer."
        values = [
            ParameterSetting(name=root + "PeriodicInformEnable", value=True, type="xsd:boolean"),
            ParameterSetting(name=root + "PeriodicInformInterval", value=self.interval, type="xsd:unsignedInt"),
        ]
        pending: Document | None = None
        if with_credentials:
            username = f"acs-{secrets.token_hex(6)}"
            password = secrets.token_urlsafe(18)
            values += [
                ParameterSetting(name=root + "ConnectionRequestUsername", value=username, type="xsd:string"),
                ParameterSetting(name=root + "ConnectionRequestPassword", value=password, type="xsd:string"),
            ]
            pending = {"username": username, "password": self.box.encrypt(password)}
        request = SetParameterValuesTask(kind="set_parameter_values", values=values)
        task = self.queue.new_document(device_id, request, SYSTEM_USER, task_id=task_id)
        cached = tuple((value.name, wire_value(value.value), value.type or "xsd:string") for value in values)
        return ProvisioningPlan(
            task, {"provisioning_task": task["_id"], "pending_connection_request": pending}, cached=cached
        )

    async def queue_planned(
        self,
        plan: ProvisioningPlan,
        inform: Inform,
        device: Document,
        before: Document,
        authenticated: bool,
        claim: SessionClaim,
    ) -> TaskRecord:
        """Store the planned task (its device fields were written with the Inform), once the device
        as it was says whether its credentials may be replaced, already claimed by the BOOTSTRAP's
        session, which sends it next (one insert, no claim); cancel the provisioning task it
        replaces. The task as stored."""
        offered = plan.fields["pending_connection_request"] is not None
        if offered and await self._withheld(device, before, authenticated):
            plan = self._plan(device["_id"], inform, with_credentials=False, task_id=plan.task["_id"])
            await self.devices.set_fields(device["_id"], {"pending_connection_request": None})
        task = plan.task
        if plan.at_once:
            # What to put back if the device does not accept the task (absent: removed): the device's
            # fields, and the cache entries the Inform's tree write stored as the task sets them.
            task = {
                **task,
                "replaced_device_fields": {name: before[name] for name in ADOPTED if name in before},
                "replaced_values": _replaced_values(plan, inform, claim.now),
            }
        stored = await self.queue.repository.insert_claimed(task, claim.session_id, claim.lease_until, claim.now)
        replaced = before.get("provisioning_task")
        if replaced != plan.task["_id"]:
            await self._supersede(replaced)
        fields = plan.fields
        self._log(
            device["_id"], "connection_request_username" in fields or fields["pending_connection_request"] is not None
        )
        return stored

    async def on_inform(self, device: Document, inform: Inform, bootstrap: bool, authenticated: bool = True) -> bool:
        """Queue the provisioning task if due (BOOTSTRAP, or a device never provisioned); whether
        one was queued. ``authenticated``: the Inform came with credentials (global or the device's own)."""
        if not bootstrap and device.get("provisioning_task"):
            return False
        await self._supersede(device.get("provisioning_task"))
        with_credentials = self.set_credentials and not await self._withheld(device, device, authenticated)
        plan = self._plan(device["_id"], inform, with_credentials)
        await self.queue.repository.insert(plan.task)
        await self.devices.set_fields(device["_id"], plan.fields)
        self._log(device["_id"], with_credentials)
        return True

    async def _withheld(self, device: Document, before: Document, authenticated: bool) -> bool:
        """Issue 11: an unauthenticated client claiming to be a known device must not obtain fresh
        connection-request credentials by sending BOOTSTRAP; a device with none yet gets them, and
        so does one whose credentials it never accepted (``_unconfirmed``)."""
        withheld = (
            self.set_credentials
            and not authenticated
            and bool(before.get("connection_request_username"))
            and not await self._unconfirmed(before)
            and not await self._reset_by_us(device)
        )
        if withheld:
            log.warning(
                "provisioning %s: no new connection-request credentials for an unauthenticated BOOTSTRAP of a "
                "device that has them (enable CPE authentication so a reset device can prove who it is)",
                device["_id"],
            )
        return withheld

    async def _unconfirmed(self, before: Document) -> bool:
        """Whether the device's credentials are ones a BOOTSTRAP stored at once and the device never
        accepted: those its provisioning task sets while that task is not done, or any when the
        task was never stored (the ACS stopped between the device write and the task's insert).
        They are no secret the device holds, so they may be replaced."""
        task_id = before.get("provisioning_task")
        if not isinstance(task_id, str):
            return False
        task = await self.queue.repository.get(task_id, before.get("_id"))
        if task is None:
            return True
        if "replaced_device_fields" not in task or task["status"] == TaskStatus.DONE.value:
            return False
        return _settings(task).get("ConnectionRequestUsername") == before.get("connection_request_username")

    def _log(self, device_id: str, credentials: bool) -> None:
        log.info(
            "provisioning %s: periodic inform every %d s%s",
            device_id,
            self.interval,
            ", new connection-request credentials" if credentials else "",
        )

    async def _reset_by_us(self, device: Document) -> bool:
        """Whether this BOOTSTRAP proved a factory_reset task of ours (settled by this very Inform,
        so finished no earlier than the Inform was recorded)."""
        recent = await self.queue.repository.for_device(device["_id"], None, RECENT_TASKS, TaskStatus.DONE.value)
        informed = device.get("last_inform")
        if informed is None:
            return False
        return any(
            task["kind"] == "factory_reset" and task.get("finished_at") is not None and task["finished_at"] >= informed
            for task in recent
        )

    async def _supersede(self, task_id: str | None) -> None:
        """A new BOOTSTRAP replaces a provisioning task that never reached the device."""
        if task_id is None:
            return
        with contextlib.suppress(TaskError):
            await self.queue.cancel(task_id, "a newer BOOTSTRAP (superseded)")

    async def on_task_final(self, task: TaskRecord) -> None:
        """Adopt the connection-request credentials once the device accepted them, or put back the
        device's own when a task that stored them at once was not accepted.

        Either is written only while the device still names this task as its provisioning: one
        conditional update. A task that stored them at once and was accepted writes nothing. The
        credentials adopted are taken from the task itself (the password sealed as it was stored).
        """
        if task.get("created_by") != SYSTEM_USER:
            return
        if "replaced_values" in task and task["status"] != TaskStatus.DONE.value:
            replaced = task["replaced_values"]
            await self.parameters.put_back(
                task["device_id"], replaced["stamp"], replaced["at"], replaced["reported"], replaced["names"]
            )
        if "replaced_device_fields" in task:
            if task["status"] != TaskStatus.DONE.value:
                before = task["replaced_device_fields"]
                await self.devices.update_if(
                    task["device_id"],
                    {"provisioning_task": task["_id"]},
                    before,
                    [name for name in ADOPTED if name not in before],
                    wait_only=True,
                )
            return
        if task["status"] != TaskStatus.DONE.value:
            return
        fields: Document = {"provisioned_at": task.get("finished_at"), "periodic_inform_interval": self.interval}
        settings = _settings(task)
        username, sealed = settings.get("ConnectionRequestUsername"), settings.get("ConnectionRequestPassword")
        if isinstance(username, str) and isinstance(sealed, dict) and SEALED in sealed:
            fields["connection_request_username"] = username
            fields["connection_request_password"] = sealed[SEALED]
        await self.devices.update_if(
            task["device_id"],
            {"provisioning_task": task["_id"]},
            fields,
            ["pending_connection_request"],
            wait_only=True,
        )


def _replaced_values(plan: ProvisioningPlan, inform: Inform, at: datetime) -> Document:
    """What the cache held for the provisioning's parameters before the Inform's tree write stored
    them as the task sets them: the Inform's own values of those names (a secret one is not kept
    here: put back, it is dropped), and the write's stamp (the interval's ``updated`` time), so that
    a later tree (a new BOOTSTRAP's, a read's) is never overwritten by the put-back."""
    names = [name for name, _, _ in plan.cached]
    reported = [
        [parameter.name, parameter.value, parameter.type]
        for parameter in inform.parameters
        if parameter.name in names and not is_secret(parameter.name, parameter.value)
    ]
    stamp = next(name for name in names if name.endswith(".PeriodicInformInterval"))
    return {"names": names, "reported": reported, "stamp": stamp, "at": at}


def _settings(task: TaskRecord) -> Document:
    """A provisioning task's values by the last segment of their names (sealed as stored)."""
    return {
        str(value.get("name", "")).rpartition(".")[2]: value.get("value")
        for value in (task.get("params") or {}).get("values") or []
    }
