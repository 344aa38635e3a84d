"""Job ``run_campaigns``: moves every campaign on, once per interval across all ACS processes (its
lease, ``tasks/scheduler.py``).

Each run, per campaign: follow the devices in flight (the Download task's outcome, the device back
on the new version, or not within ``return_timeout``), judge the health of the upgraded ones once
``health_settle`` has passed, check the stop rules on the whole campaign so far (a trip pauses it
and opens or joins the incident of the version), then start devices of the current wave within the
window, the concurrency and the rate, and close the wave when it is done. A rolling-back campaign
sends each upgraded device the image of its previous version instead.

Exactly once per device and campaign: a start first inserts the claim
``<campaign>#<device>#upgrade`` (``tasks/store/campaigns.py``) naming the task id it will use, so
two runs (two processes around a lease takeover) cannot both start it; a run that died between
the claim and the task is finished by the next one with the same task id (the task's unique ``_id``
makes that insert happen once too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from schemas.campaigns import IN_FLIGHT, UPGRADED_STATES, CampaignStatus, MemberState
from schemas.tasks import DownloadTask, TaskStatus
from tasks.campaigns import plan
from tasks.health.evaluate import definite_of
from tasks.incidents import grouping
from tasks.queue import TaskQueue, new_task_id
from tasks.records import TaskRecord
from tasks.store.campaigns import CampaignRepository
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.firmware import FirmwareRepository
from tasks.store.incidents import IncidentRepository
from tasks.store.tasks import TaskRepository

log = logging.getLogger("acs.campaigns")
CAMPAIGN_EVENT = "campaign"  # device_events type of a campaign step (the device's history)
FIRMWARE_TYPE = "1 Firmware Upgrade Image"  # TR-069 A.3.2.8
OPEN_TASK = (TaskStatus.QUEUED.value, TaskStatus.DISPATCHED.value)
FAILED_TASK = (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value, TaskStatus.EXPIRED.value)
DEVICE_FIELDS = {"software_version": 1, "presence": 1, "last_boot": 1, "last_events": 1, "health": 1,
                 "health_definite": 1, "product_class": 1}
ORPHANED_AFTER = timedelta(minutes=1)  # a claim whose member is still pending this long after: its run died
READS_AT_ONCE = 4  # database work in flight: under half the pool (10); the CWMP sessions need the rest
WAKES_AT_ONCE = 16  # connection requests in flight
HEALTH_STATES = ("ok", "warn", "critical")
MAX_INCIDENT_MEMBERS = 20_000
ACTIVE = (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.ROLLING_BACK, CampaignStatus.ABORTED)
Wake = Callable[[Document], Awaitable[bool]]


@dataclass
class CampaignJob:
    campaigns: CampaignRepository
    firmware: FirmwareRepository
    devices: DeviceRepository
    tasks: TaskRepository
    queue: TaskQueue
    events: DeviceEventRepository
    incidents: IncidentRepository
    clock: Callable[[], datetime]
    url_for: Callable[[str], str]  # a stored file's URL on the CWMP listener
    wake: Wake | None = None  # connection request, so a device need not wait for its periodic inform

    def __post_init__(self) -> None:
        self._to_wake: list[Document] = []
        self._waking: set[asyncio.Task[Any]] = set()  # connection requests still going out

    async def run(self) -> dict[str, Any]:
        counts: Counter[str] = Counter()
        for status in ACTIVE:
            for campaign in await self.campaigns.with_status(status):
                counts["campaigns"] += 1
                await self._one(campaign, counts)
        await self._wake_started(counts)
        return dict(counts)

    async def _wake_started(self, counts: Counter[str]) -> None:
        """Connection requests to the devices started in this run, a few at a time, in the background (a
        device that does not answer costs its own timeout, not the next run's start); one not reached
        takes its task at its next periodic inform."""
        devices, self._to_wake = self._to_wake, []
        if self.wake is None or not devices:
            return
        wake = self.wake
        gate = asyncio.Semaphore(WAKES_AT_ONCE)

        async def one(device: Document) -> None:
            async with gate:
                with contextlib.suppress(Exception):  # a wake is a courtesy: the task waits for the inform
                    await wake(device)

        counts["woken"] += len(devices)
        waking = asyncio.create_task(asyncio.wait([asyncio.create_task(one(d)) for d in devices]))
        self._waking.add(waking)
        waking.add_done_callback(self._waking.discard)

    async def _one(self, campaign: Document, counts: Counter[str]) -> None:
        now = self.clock()
        await self._follow(campaign, now, counts)
        if campaign["status"] == CampaignStatus.ABORTED:
            return  # its devices in flight finish (or fail); nothing more is judged or started
        await self._judge(campaign, now, counts)
        current = await self.campaigns.get(campaign["_id"])  # the operator may have acted meanwhile
        if current is None:
            return
        if current["status"] == CampaignStatus.RUNNING:
            trip = plan.check_stop_rules(await self._tally(current), current["stop_rules"])
            if trip is not None:
                await self._stop(current, trip, now)
                counts["stopped"] += 1
                return
            if plan.in_window(current.get("windows") or [], current["time_zone"], now):
                exhausted = await self._start(current, now, counts)
                await self._close_wave(current, exhausted, now)
        elif current["status"] == CampaignStatus.ROLLING_BACK:
            late = await self._back_late(current)
            await self._start_rollbacks(current, late, now, counts)
            await self._finish_rollback(current, bool(late), now)

    # -- devices in flight -------------------------------------------------------------------

    async def _follow(self, campaign: Document, now: datetime, counts: Counter[str]) -> None:
        timeout = timedelta(seconds=int(campaign["stop_rules"]["return_timeout"]))
        for state in (MemberState.DOWNLOADING, MemberState.REBOOTING, MemberState.ROLLING_BACK):
            members = [m async for m in self.campaigns.each_member(campaign["_id"], state.value)]
            await _bounded(members, lambda member: self._follow_one(campaign, member, now, timeout, counts))

    async def _follow_one(self, campaign: Document, member: Document, now: datetime, timeout: timedelta,
                          counts: Counter[str]) -> None:
        rollback = member["state"] == MemberState.ROLLING_BACK
        task_id = member.get("rollback_task_id" if rollback else "task_id")
        started = member.get("rollback_started_at" if rollback else "started_at") or now
        wanted = member["from_version"] if rollback else member["to_version"]
        task = await self.tasks.get(str(task_id), member["device_id"]) if task_id else None
        device = await self.devices.get(member["device_id"], DEVICE_FIELDS) or {}
        failed_state = MemberState.ROLLBACK_FAILED if rollback else MemberState.FAILED
        done_state = MemberState.ROLLED_BACK if rollback else MemberState.UPGRADED
        if device.get("software_version") == wanted and (task is None or task["status"] not in FAILED_TASK):
            step = "rolled back" if rollback else "back on the new version"
            await self._move(campaign, member, done_state, now, f"{step} {wanted}",
                             {"upgraded_at": now} if not rollback else {})
            counts["rolled_back" if rollback else "upgraded"] += 1
            return
        reason = None
        if task is not None and task["status"] in FAILED_TASK:
            reason = _task_failure(task)
        elif task is not None and task["status"] == TaskStatus.DONE.value and _rebooted_for(device, task, started):
            reason = f"SoftwareVersion still {device.get('software_version')} after the BOOT (expected {wanted})"
        elif now - started > timeout:
            reason = f"not back on {wanted} within {int(timeout.total_seconds())} s of the Download"
            if task is not None and task["status"] == TaskStatus.QUEUED.value:
                await self.tasks.finish(task["_id"], [TaskStatus.QUEUED.value], TaskStatus.CANCELLED,
                                        {"finished_at": now, "reason": "campaign: device did not take it in time"},
                                        member["device_id"])
        if reason is not None:
            await self._move(campaign, member, failed_state, now, reason, {"reason": reason})
            counts["failed"] += 1
            return
        if not rollback and member["state"] == MemberState.DOWNLOADING and task is not None \
                and task["status"] == TaskStatus.DONE.value:
            await self._move(campaign, member, MemberState.REBOOTING, now, "transfer complete, rebooting", {})

    async def _move(self, campaign: Document, member: Document, state: MemberState, now: datetime, step: str,
                    fields: Mapping[str, Any]) -> bool:
        finished = state in (MemberState.UPGRADED, MemberState.FAILED, MemberState.ROLLED_BACK,
                             MemberState.ROLLBACK_FAILED)
        update = {**fields, "state": state.value, "updated_at": now, **({"finished_at": now} if finished else {})}
        moved = await self.campaigns.set_member(member, update, {"at": now, "state": state.value, "step": step})
        if moved:
            await self.events.record(member["device_id"], CAMPAIGN_EVENT, now, {
                "campaign_id": campaign["_id"], "campaign": campaign["name"], "state": state.value, "step": step,
                "from_version": member.get("from_version"), "to_version": member.get("to_version")})
        return moved

    # -- health after the upgrade -------------------------------------------------------------

    async def _judge(self, campaign: Document, now: datetime, counts: Counter[str]) -> None:
        """Each upgraded device is judged once, on its first health read at least ``health_settle`` after
        the upgrade (crash loops and falling optical levels need that long to show); a device with no
        read ``health_timeout`` later is taken as healthy. Its later reads are the incident job's."""
        rules = campaign["stop_rules"]
        settle = timedelta(seconds=int(rules["health_settle"]))
        horizon = settle + timedelta(seconds=int(rules["health_timeout"]))
        waiting = [m async for m in self.campaigns.each_member(campaign["_id"], MemberState.UPGRADED.value)]
        await _bounded(waiting, lambda member: self._judge_one(campaign, member, now, settle, horizon, counts))

    async def _judge_one(self, campaign: Document, member: Document, now: datetime, settle: timedelta,
                         horizon: timedelta, counts: Counter[str]) -> None:
        upgraded_at = member.get("upgraded_at") or now
        if now - upgraded_at < settle:
            return
        device = await self.devices.get(member["device_id"], DEVICE_FIELDS) or {}
        # The last *definite* read and its own time: a failed read (a crash-looping or unreachable device
        # reads ``unknown``) moves ``health.at`` but keeps the definite read from before, which may be
        # from before the upgrade (an old "ok" would pass a bricked canary).
        definite = definite_of(device.get("health") or {}) or {}
        read_at = definite.get("at")
        after = definite.get("status") if read_at is not None and read_at >= upgraded_at + settle else None
        if after is None:
            if now - upgraded_at > horizon:
                await self._move(campaign, member, MemberState.HEALTHY, now, "no health read after the upgrade",
                                 {"health_after": None})
            return
        degraded = after == "critical" and member.get("health_before") != "critical"
        state = MemberState.DEGRADED if degraded else MemberState.HEALTHY
        await self._move(campaign, member, state, now, f"health after the upgrade: {after}",
                         {"health_after": after, "judged_at": now})
        counts["judged"] += 1

    async def _tally(self, campaign: Document) -> plan.Tally:
        rows = await self.campaigns.tally_rows(campaign["_id"])
        upgraded = sum(r["n"] for r in rows if r["state"] in UPGRADED_STATES)
        judged = [r for r in rows if r["state"] in (MemberState.HEALTHY, MemberState.DEGRADED) and r.get("after")]
        pending = {(r["product_class"], r["from_version"]) for r in rows if r["state"] == MemberState.PENDING}
        critical_after = sum(r["n"] for r in judged if r["after"] == "critical")
        if critical_after < int(campaign["stop_rules"]["min_devices"]):
            pending = set()  # the health rule cannot trip yet: spare the counts
        control, control_critical = 0, 0
        for product_class, version in sorted(pending, key=str):
            for status in HEALTH_STATES:
                found = await self.devices.count_query({"product_class": product_class, "software_version": version,
                                                        "health_definite": status})
                control += found
                control_critical += found if status == "critical" else 0
        return plan.Tally(
            upgraded=upgraded, failed=sum(r["n"] for r in rows if r["state"] == MemberState.FAILED),
            judged=sum(r["n"] for r in judged),
            critical_after=critical_after,
            critical_before=sum(r["n"] for r in judged if r.get("before") == "critical"),
            control=control, control_critical=control_critical)

    # -- a stop rule trips --------------------------------------------------------------------

    async def _stop(self, campaign: Document, trip: plan.Trip, now: datetime) -> None:
        stopped_by = {**trip.as_document(), "at": now}
        timeline = [*campaign.get("timeline", [])[-49:],
                    {"at": now, "event": "stopped", "by": "stop rule", "detail": trip.reason}]
        moved = await self.campaigns.move(campaign["_id"], [CampaignStatus.RUNNING], CampaignStatus.PAUSED,
                                          {"stopped_by": stopped_by, "updated_at": now, "timeline": timeline})
        if moved is None:
            return
        incident_id = await self._incident(campaign, trip, now)
        await self.campaigns.update(campaign["_id"], {"incident_id": incident_id})
        log.warning("campaign %s (%s) paused by its %s rule: %s; incident %s", campaign["_id"], campaign["name"],
                    trip.rule, trip.reason, incident_id)

    async def _incident(self, campaign: Document, trip: plan.Trip, now: datetime) -> int | None:
        """Open the incident of the version the campaign installs, or join the one already open for it."""
        culprit = MemberState.DEGRADED if trip.rule == plan.HEALTH_REGRESSION else MemberState.FAILED
        members = [m async for m in self.campaigns.each_member(campaign["_id"], culprit.value)]
        by_model = Counter(m["product_class"] for m in members)
        product_class = by_model.most_common(1)[0][0] if by_model else next(iter(campaign["versions"]))
        version = campaign["versions"][product_class]
        value = f"{product_class} {version}"
        key = f"software_version:{value}"
        devices = sorted(m["device_id"] for m in members if m["product_class"] == product_class)
        named = {"id": campaign["_id"], "name": campaign["name"], "rule": trip.rule, "reason": trip.reason,
                 "numbers": trip.numbers, "at": now}
        detail = f"campaign {campaign['name']} paused: {trip.reason}"
        for already in await self.incidents.open_incidents():
            if already.get("key") == key:
                timeline = [*already.get("timeline", []), {"at": now, "event": "campaign", "affected":
                                                           already.get("affected_now"), "detail": detail}]
                await self.incidents.update(already["_id"], {"campaign": named, "timeline": timeline[-200:]})
                return int(already["_id"])
        signal = grouping.CRITICAL if trip.rule == plan.HEALTH_REGRESSION else grouping.FAILING
        title, cause = grouping.describe_group("software_version", value, signal, len(devices),
                                               int(trip.numbers.get("judged") or trip.numbers.get("finished") or 0))
        incident: Document = {
            "key": key, "dimension": "software_version", "value": value, "title": title,
            "cause": f"{cause}; installed by campaign {campaign['name']}", "selector": [key], "opened_at": now,
            "updated_at": now, "members": devices[:MAX_INCIDENT_MEMBERS], "member_count": len(devices),
            "affected_now": len(devices), "peak": len(devices), "group_size": len(devices), "baseline": 0.0,
            "signals": {signal: len(devices)}, "acknowledged": None, "comments": [], "campaign": named,
            "timeline": [{"at": now, "event": "opened", "affected": len(devices), "detail": detail}],
        }
        return await self.incidents.open(incident, now)

    # -- starting devices ---------------------------------------------------------------------

    async def _start(self, campaign: Document, now: datetime, counts: Counter[str]) -> bool:
        """Start devices of the waves up to the current one; True when none of them is left to start now."""
        in_flight = 0
        for state in IN_FLIGHT:
            in_flight += len(await self.campaigns.members(campaign["_id"], state.value, limit=100_000))
        started_last_minute = await self.campaigns.claimed_since(campaign["_id"], "upgrade", now - timedelta(minutes=1))
        budget = min(int(campaign["concurrency"]) - in_flight, int(campaign["rate"]) - started_last_minute)
        for wave in range(int(campaign["current_wave"]) + 1):
            pending = [m async for m in self.campaigns.each_member_of_wave(campaign["_id"], MemberState.PENDING.value,
                                                                            wave)]
            while pending:
                if budget <= 0:
                    return False
                batch, pending = pending[:min(budget, READS_AT_ONCE)], pending[min(budget, READS_AT_ONCE):]
                started = await asyncio.gather(*(self._start_one(campaign, m, now, counts) for m in batch))
                budget -= sum(started)
        return True

    async def _start_one(self, campaign: Document, member: Document, now: datetime, counts: Counter[str]) -> int:
        device = await self.devices.get(member["device_id"])
        if device is None:
            await self._move(campaign, member, MemberState.FAILED, now, "the device was deleted",
                             {"reason": "the device was deleted"})
            return 0
        if device.get("presence") != "online" or await self._operator_busy(member["device_id"]):
            counts["waiting"] += 1
            return 0
        task_id = new_task_id()
        if not await self.campaigns.claim(campaign["_id"], member["device_id"], "upgrade", task_id, now):
            claim = await self._orphaned_claim(campaign, member, "upgrade", now)
            if claim is None:
                return 0
            task_id = str(claim["task_id"])  # a run that died after its claim: finish its start
        image = await self.firmware.get(member["image_id"])
        if image is None:
            await self._move(campaign, member, MemberState.FAILED, now, "the firmware image was deleted",
                             {"reason": "the firmware image was deleted"})
            return 0
        await self._queue_download(campaign, member, image, task_id, "upgrade")
        moved = await self._move(campaign, member, MemberState.DOWNLOADING, now,
                                 f"Download of {image['version']} ({image['name']}) queued, task {task_id}",
                                 {"task_id": task_id, "started_at": now,
                                  "health_before": device.get("health_definite")})
        if moved:
            self._to_wake.append(device)
        counts["started"] += int(moved)
        return 1

    async def _orphaned_claim(self, campaign: Document, member: Document, purpose: str,
                              now: datetime) -> Document | None:
        """The claim of a run that died before it moved the member on (older than ``ORPHANED_AFTER``);
        None while the claim is young: its run is (or may be) still at work, in another process."""
        claim = await self.campaigns.claims(campaign["_id"], member["device_id"], purpose)
        if claim is None or now - claim["at"] < ORPHANED_AFTER:
            return None
        if not await self.campaigns.take_over(claim, now, ORPHANED_AFTER):
            return None  # another run finishes it
        return claim

    async def _operator_busy(self, device_id: str) -> bool:
        """A task an operator (not a campaign or the ACS itself) has open on the device: their session."""
        for status in OPEN_TASK:
            for task in await self.tasks.for_device(device_id, None, 20, status):
                if not str(task.get("created_by") or "").startswith(("campaign:", "system:")):
                    return True
        return False

    async def _queue_download(self, campaign: Document, member: Document, image: Document, task_id: str,
                              purpose: str) -> None:
        timeout = int(campaign["stop_rules"]["return_timeout"])
        request = DownloadTask(kind="download", file_type=FIRMWARE_TYPE, file_id=image["file_id"],
                               expires_in=timeout).model_copy(update={
                                   "url": self.url_for(image["file_id"]), "file_size": int(image["size"]),
                                   "target_file_name": image["name"]})
        with contextlib.suppress(DuplicateKeyError):  # queued already by the run that took the claim
            await self.queue.create(member["device_id"], request, f"campaign:{campaign['_id']}:{purpose}",
                                    task_id=task_id)

    async def _close_wave(self, campaign: Document, exhausted: bool, now: datetime) -> None:
        if not exhausted:
            return
        wave = int(campaign["current_wave"])
        rows = await self.campaigns.tally_rows(campaign["_id"])
        busy = (*IN_FLIGHT, MemberState.UPGRADED)
        if any(r["state"] in busy and r["wave"] <= wave for r in rows):
            return
        last = len(campaign.get("wave_sizes") or []) - 1
        if wave < last:
            done = Counter(r["state"] for r in rows if r["wave"] == wave for _ in range(r["n"]))
            detail = f"wave {wave + 1} done: " + ", ".join(f"{n} {state}" for state, n in sorted(done.items()))
            timeline = [*campaign.get("timeline", [])[-49:], {"at": now, "event": "wave", "detail": detail}]
            await self.campaigns.move(campaign["_id"], [CampaignStatus.RUNNING], CampaignStatus.RUNNING,
                                      {"current_wave": wave + 1, "updated_at": now, "timeline": timeline})
        elif not any(r["state"] == MemberState.PENDING for r in rows):
            timeline = [*campaign.get("timeline", [])[-49:], {"at": now, "event": "completed", "detail": ""}]
            await self.campaigns.move(campaign["_id"], [CampaignStatus.RUNNING], CampaignStatus.COMPLETED,
                                      {"updated_at": now, "completed_at": now, "timeline": timeline})

    # -- rollback -----------------------------------------------------------------------------

    async def _back_late(self, campaign: Document) -> list[Document]:
        """Failed members whose device is on the campaign's version after all (its BOOT came after
        ``return_timeout``): still failed by the rule, but a rollback must take them back too."""
        failed = [m async for m in self.campaigns.each_member(campaign["_id"], MemberState.FAILED.value)]
        late: list[Document] = []

        async def check(member: Document) -> None:
            device = await self.devices.get(member["device_id"], {"software_version": 1}) or {}
            if member.get("to_version") and device.get("software_version") == member["to_version"]:
                late.append(member)

        await _bounded(failed, check)
        return late

    async def _start_rollbacks(self, campaign: Document, late: list[Document], now: datetime,
                               counts: Counter[str]) -> None:
        """Rollbacks ignore the windows (they undo harm) but keep the concurrency and the rate."""
        in_flight = len(await self.campaigns.members(campaign["_id"], MemberState.ROLLING_BACK.value, limit=100_000))
        started = await self.campaigns.claimed_since(campaign["_id"], "rollback", now - timedelta(minutes=1))
        budget = min(int(campaign["concurrency"]) - in_flight, int(campaign["rate"]) - started)
        for state in UPGRADED_STATES:
            async for member in self.campaigns.each_member(campaign["_id"], state.value):
                if budget <= 0:
                    return
                budget -= await self._rollback_one(campaign, member, now, counts)
        for member in late:
            if budget <= 0:
                return
            budget -= await self._rollback_one(campaign, member, now, counts)

    async def _rollback_one(self, campaign: Document, member: Document, now: datetime, counts: Counter[str]) -> int:
        image_id = (campaign.get("rollback_images") or {}).get(f"{member['product_class']}|{member['from_version']}")
        image = await self.firmware.get(image_id) if image_id else None
        if image is None:
            await self._move(campaign, member, MemberState.ROLLBACK_FAILED, now, "no image of the previous version",
                             {"reason": f"no image of {member['from_version']}"})
            return 0
        task_id = new_task_id()
        if not await self.campaigns.claim(campaign["_id"], member["device_id"], "rollback", task_id, now):
            claim = await self._orphaned_claim(campaign, member, "rollback", now)
            if claim is None:
                return 0
            task_id = str(claim["task_id"])
        await self._queue_download(campaign, member, image, task_id, "rollback")
        moved = await self._move(campaign, member, MemberState.ROLLING_BACK, now,
                                 f"rollback: Download of {image['version']} queued, task {task_id}",
                                 {"rollback_task_id": task_id, "rollback_started_at": now})
        device = await self.devices.get(member["device_id"]) if moved else None
        if device is not None:
            self._to_wake.append(device)
        counts["rollbacks_started"] += int(moved)
        return 1

    async def _finish_rollback(self, campaign: Document, late_left: bool, now: datetime) -> None:
        if late_left:
            return  # failed members on the new version were (or still are to be) started this run
        rows = await self.campaigns.tally_rows(campaign["_id"])
        if any(r["state"] in (*UPGRADED_STATES, *IN_FLIGHT, MemberState.ROLLING_BACK) for r in rows):
            return
        timeline = [*campaign.get("timeline", [])[-49:], {"at": now, "event": "rolled_back", "detail": ""}]
        await self.campaigns.move(campaign["_id"], [CampaignStatus.ROLLING_BACK], CampaignStatus.ROLLED_BACK,
                                  {"updated_at": now, "timeline": timeline})


def _task_failure(task: TaskRecord) -> str:
    fault = task.get("fault") or {}
    code = fault.get("code") or fault.get("fault_code")
    text = fault.get("string") or task.get("reason") or task["status"]
    if not code:
        return f"Download task {task['status']}: {text}"
    # A fault in TransferComplete (TR-069 A.3.3.2) comes after the transfer started; one answering
    # the Download itself (A.3.2.8) before.
    which = "TransferComplete" if "complete_time" in (task.get("result") or {}) else "Download"
    return f"{which} fault {code}: {text}"


def _rebooted_for(device: Document, task: TaskRecord, started: datetime) -> bool:
    """Whether the device's last BOOT is the one that applies the transfer (after it, its SoftwareVersion
    says whether the image took): the reboot reporting it (TR-069 A.3.2.8: ``1 BOOT`` with ``M Download``
    in one Inform, TransferComplete in that session), or any BOOT after the TransferComplete. A BOOT
    between the start and the TransferComplete (a power cut mid-transfer) is not, even when the
    TransferComplete comes later with ``M Download`` in a session of its own before the reboot."""
    last_boot = device.get("last_boot")
    if not isinstance(last_boot, datetime) or last_boot <= started:
        return False
    if {"1 BOOT", "M Download"} <= set(device.get("last_events") or []):  # the last Inform was that reboot
        return True
    finished_at = task.get("finished_at")
    return isinstance(finished_at, datetime) and last_boot > finished_at


async def _bounded(members: list[Document], work: Callable[[Document], Awaitable[None]]) -> None:
    for start in range(0, len(members), READS_AT_ONCE):
        await asyncio.gather(*(work(member) for member in members[start:start + READS_AT_ONCE]))
