"""Creating campaigns and the operator's actions on them; shared by the API and the console.

Creation checks the images against the models the target really selects (an image that does not
fit a targeted model is refused, nothing stored), reads the target once (devices already on their
model's new version are left out) and stores every device as a member with its wave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from schemas.campaigns import UPGRADED_STATES, CampaignAction, CampaignStatus, MemberState
from tasks.campaigns import plan
from tasks.store.campaigns import CampaignRepository, member_id
from tasks.store.db import Document
from tasks.store.devices import DeviceRepository
from tasks.store.firmware import FirmwareRepository, fits

MAX_TARGET = 500_000
TARGET_PROJECTION = {"_id": 1, "oui": 1, "product_class": 1, "software_version": 1, "tags": 1, "olt_id": 1}


class CampaignError(Exception):
    """A request about campaigns that cannot be done, and why (``status``: the HTTP status it stands for)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Selector:
    product_classes: list[str] | None = None
    software_versions: list[str] | None = None
    tags: list[str] | None = None
    olt_ids: list[str] | None = None
    device_ids: list[str] | None = None

    @classmethod
    def of(cls, target: Mapping[str, Any]) -> Selector:
        return cls(**{name: target.get(name) for name in cls.__dataclass_fields__})

    def queries(self) -> list[Document]:
        """One top-level equality per value of the most telling field (FerretDB pushes those down)."""
        for field, values in (("product_class", self.product_classes), ("olt_id", self.olt_ids),
                              ("software_version", self.software_versions), ("tags", self.tags)):
            if values:
                return [{field: value} for value in values]
        return []

    def matches(self, device: Mapping[str, Any]) -> bool:
        if self.device_ids and device["_id"] not in self.device_ids:
            return False
        checks = ((self.product_classes, device.get("product_class")), (self.olt_ids, device.get("olt_id")),
                  (self.software_versions, device.get("software_version")))
        if any(wanted and value not in wanted for wanted, value in checks):
            return False
        return not self.tags or bool(set(self.tags) & set(device.get("tags") or []))


class CampaignService:
    def __init__(self, campaigns: CampaignRepository, firmware: FirmwareRepository, devices: DeviceRepository,
                 clock: Callable[[], datetime]) -> None:
        self.campaigns = campaigns
        self.firmware = firmware
        self.devices = devices
        self.clock = clock

    async def targets(self, selector: Selector) -> list[Document]:
        found: dict[str, Document] = {}
        if selector.device_ids:
            for device_id in selector.device_ids:
                device = await self.devices.get(device_id, TARGET_PROJECTION)
                if device is not None and selector.matches(device):
                    found[device_id] = device
            return list(found.values())
        for query in selector.queries():
            for device in await self.devices.find(query, TARGET_PROJECTION, MAX_TARGET):
                if selector.matches(device):
                    found[device["_id"]] = device
        return list(found.values())

    async def _images(self, images: Mapping[str, str]) -> dict[str, Document]:
        loaded: dict[str, Document] = {}
        for product_class, image_id in images.items():
            image = await self.firmware.get(image_id)
            if image is None:
                raise CampaignError(422, "validation_error", f"images.{product_class}: no firmware image {image_id}")
            if not fits(image, product_class):
                raise CampaignError(422, "image_does_not_fit",
                                    f"firmware image {image_id} ({image['version']}) fits "
                                    f"{', '.join(image['product_classes'])}, not {product_class}")
            loaded[product_class] = image
        return loaded

    async def create(self, body: Mapping[str, Any], by: str) -> Document:
        """Store a running campaign and its members; raises :class:`CampaignError` for what cannot be."""
        images = await self._images(body["images"])
        selector = Selector.of(body["target"])
        models = set(selector.product_classes or [])
        devices = await self.targets(selector)
        models |= {str(device.get("product_class")) for device in devices}
        missing = sorted(models - set(images))
        if missing:
            raise CampaignError(422, "image_does_not_fit",
                                f"the target selects devices of {', '.join(missing)}, and images names no "
                                "firmware for them")
        for device in devices:
            image = images[device["product_class"]]
            if not fits(image, device["product_class"], device.get("oui")):
                raise CampaignError(422, "image_does_not_fit",
                                    f"firmware image {image['_id']} is for vendor {image['vendor']}, device "
                                    f"{device['_id']} has OUI {device.get('oui')}")
        todo = [d for d in devices if d.get("software_version") != images[d["product_class"]]["version"]]
        if not todo:
            raise CampaignError(422, "empty_target", "the target selects no device that needs the upgrade")
        now = self.clock()
        campaign_id = str(ObjectId())
        sizes = plan.wave_sizes(body["waves"], len(todo))
        waves = plan.assign_waves(campaign_id, (d["_id"] for d in todo), sizes)
        versions = {model: image["version"] for model, image in images.items()}
        campaign: Document = {
            "_id": campaign_id, "name": body["name"], "status": CampaignStatus.RUNNING.value,
            "target": dict(body["target"]), "images": dict(body["images"]), "versions": versions,
            "target_versions": sorted(set(versions.values())),
            "waves": [{**dict(wave), "size": size} for wave, size in zip(body["waves"], sizes, strict=False)],
            "wave_sizes": sizes, "concurrency": body["concurrency"], "rate": body["rate"],
            "windows": [dict(window) for window in body["windows"]], "time_zone": body["time_zone"],
            "stop_rules": dict(body["stop_rules"]), "created_at": now, "created_by": by, "updated_at": now,
            "devices": len(todo), "current_wave": 0, "stopped_by": None, "incident_id": None,
            "timeline": [{"at": now, "event": "created", "by": by, "detail": f"{len(todo)} devices in "
                                                                             f"{len(sizes)} waves"}],
        }
        await self.campaigns.insert(campaign)
        members = [_member(campaign_id, device, waves[device["_id"]], images[device["product_class"]], now)
                   for device in todo]
        await self.campaigns.add_members(members)
        return campaign

    async def act(self, campaign_id: str, action: CampaignAction, by: str, reason: str | None) -> Document:
        campaign = await self.campaigns.get(campaign_id)
        if campaign is None:
            raise CampaignError(404, "not_found", f"no campaign {campaign_id}")
        now = self.clock()
        entry = {"at": now, "event": action.value, "by": by, "detail": reason or ""}
        timeline = [*campaign.get("timeline", [])[-49:], entry]
        match action:
            case CampaignAction.PAUSE:
                moved = await self.campaigns.move(campaign_id, [CampaignStatus.RUNNING], CampaignStatus.PAUSED, {
                    "stopped_by": {"rule": "operator", "by": by, "reason": reason or "paused by the operator"},
                    "updated_at": now, "timeline": timeline})
            case CampaignAction.RESUME:
                moved = await self.campaigns.move(campaign_id, [CampaignStatus.PAUSED], CampaignStatus.RUNNING, {
                    "stopped_by": None, "updated_at": now, "timeline": timeline, "resumed_at": now})
            case CampaignAction.ABORT:
                moved = await self.campaigns.move(
                    campaign_id, [CampaignStatus.RUNNING, CampaignStatus.PAUSED], CampaignStatus.ABORTED,
                    {"updated_at": now, "timeline": timeline})
            case CampaignAction.ROLLBACK:
                fields = {"rollback_images": await self._rollback_images(campaign_id), "updated_at": now,
                          "timeline": timeline}
                moved = await self.campaigns.move(
                    campaign_id, [CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.ABORTED,
                                  CampaignStatus.COMPLETED], CampaignStatus.ROLLING_BACK, fields)
        if moved is None:
            raise CampaignError(409, "conflict", f"campaign {campaign_id} is {campaign['status']}: it cannot "
                                                 f"{action.value}")
        return moved

    async def _rollback_images(self, campaign_id: str) -> dict[str, str]:
        """``<product class>|<previous version>`` -> image, for every upgraded model and version."""
        wanted: set[tuple[str, str]] = set()
        for state in (*UPGRADED_STATES, MemberState.DOWNLOADING, MemberState.REBOOTING, MemberState.FAILED):
            async for member in self.campaigns.each_member(campaign_id, state.value):
                if member.get("from_version"):
                    wanted.add((member["product_class"], member["from_version"]))
        found: dict[str, str] = {}
        missing = []
        for product_class, version in sorted(wanted):
            image = await self.firmware.for_version(product_class, version)
            if image is None:
                missing.append(f"{product_class} {version}")
            else:
                found[f"{product_class}|{version}"] = image["_id"]
        if missing:
            raise CampaignError(409, "no_previous_image",
                                f"no firmware image of the previous version for {', '.join(missing)}: add it "
                                "(acs firmware add) before rolling back")
        return found

    async def installing(self, product_class: str, version: str) -> list[Document]:
        """Campaigns that install ``version`` on ``product_class`` (an incident by software version)."""
        return [c for c in await self.campaigns.installing(version) if c["versions"].get(product_class) == version]


def _member(campaign_id: str, device: Mapping[str, Any], wave: int, image: Mapping[str, Any],
            now: datetime) -> Document:
    return {"_id": member_id(campaign_id, device["_id"]), "campaign_id": campaign_id, "device_id": device["_id"],
            "product_class": device["product_class"], "oui": device.get("oui"), "wave": wave,
            "state": MemberState.PENDING.value, "from_version": device.get("software_version"),
            "to_version": image["version"], "image_id": image["_id"], "task_id": None, "reason": None,
            "created_at": now, "updated_at": now, "steps": []}


def state_groups(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The operator's five counts (pending, in progress, upgraded and healthy, failed, rolled back) plus each state."""
    by_state: dict[str, int] = {}
    for state, number in counts:
        by_state[state] = by_state.get(state, 0) + number
    groups = {
        "pending": by_state.get(MemberState.PENDING, 0),
        "in_progress": sum(by_state.get(s, 0) for s in (MemberState.DOWNLOADING, MemberState.REBOOTING,
                                                          MemberState.UPGRADED, MemberState.ROLLING_BACK)),
        "upgraded_healthy": by_state.get(MemberState.HEALTHY, 0),
        "failed": by_state.get(MemberState.FAILED, 0) + by_state.get(MemberState.DEGRADED, 0)
        + by_state.get(MemberState.ROLLBACK_FAILED, 0),
        "rolled_back": by_state.get(MemberState.ROLLED_BACK, 0),
    }
    return {**groups, **{f"state_{state}": number for state, number in sorted(by_state.items())}}


async def progress(campaigns: CampaignRepository, campaign: Mapping[str, Any], now: datetime) -> Document:
    """Counts by state (overall and per wave), the rate of the last hour and the estimated end."""
    counts = await campaigns.counts(campaign["_id"])
    overall = state_groups((state, number) for (_wave, state), number in counts.items())
    waves = []
    for number, size in enumerate(campaign.get("wave_sizes") or []):
        in_wave = state_groups((state, n) for (wave, state), n in counts.items() if wave == number)
        waves.append({"number": number, "size": size, "counts": in_wave})
    finished = await campaigns.finished_since(campaign["_id"], now - timedelta(hours=1))
    remaining = overall["pending"] + overall["in_progress"]
    active = campaign["status"] in (CampaignStatus.RUNNING, CampaignStatus.ROLLING_BACK)
    return {
        "id": campaign["_id"], "status": campaign["status"], "counts": overall, "waves": waves,
        "rate_per_hour": float(finished),
        "estimated_end": plan.estimate_end(remaining, finished, now) if active else None,
        "in_window": plan.in_window(campaign.get("windows") or [], campaign.get("time_zone") or "UTC", now),
    }
