"""Everything one ACS process shares between its listeners and its scheduler, built once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from acs.config import Settings
from acs.cwmp_server.metrics import CwmpMetrics
from acs.cwmp_server.service import CwmpService, SessionTimeouts
from acs.metrics import Metrics
from cwmp.codec import ParserLimits
from tasks.dispatch import Dispatcher
from tasks.health.catalog import default_catalog
from tasks.health.evaluate import Thresholds
from tasks.health.policies import Policy, default_policies, load_policies
from tasks.health.poll import HealthPoller, PollLimits
from tasks.notify import TaskNotifier
from tasks.profiles.aliases import AliasTable
from tasks.profiles.catalog import ProfileCatalog
from tasks.profiles.engine import ProfileEngine
from tasks.provisioning import Provisioner
from tasks.queue import TaskQueue
from tasks.registry import DeviceRegistry, OfflineMargin
from tasks.secretbox import SecretBox, load_or_create_key
from tasks.store.audit import AuditRepository
from tasks.store.batches import BatchRepository
from tasks.store.campaigns import CampaignRepository
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.digest_nonces import DigestNonceRepository
from tasks.store.drift import DriftRepository
from tasks.store.files import FileStore
from tasks.store.firmware import FirmwareRepository
from tasks.store.health import HealthRepository
from tasks.store.health_reads import HealthReadRepository
from tasks.store.incidents import IncidentRepository
from tasks.store.jobs import JobRepository
from tasks.store.locks import SessionLockRepository
from tasks.store.notes import NoteRepository
from tasks.store.parameters import ParameterRepository
from tasks.store.profiles import ProfileRepository
from tasks.store.sessions import SessionRepository
from tasks.store.soap_captures import SoapCaptureRepository
from tasks.store.subscribers import SubscriberRepository
from tasks.store.tasks import EXPIRY_DUE_BACKFILL, OPEN_ON_BACKFILL, TaskRepository
from tasks.store.tokens import TokenRepository
from tasks.store.trends import TrendRepository
from tasks.store.webhooks import WebhookDeliveryRepository
from tasks.trends import TrendRecorder


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Repositories:
    devices: DeviceRepository
    parameters: ParameterRepository
    sessions: SessionRepository
    locks: SessionLockRepository
    tasks: TaskRepository
    jobs: JobRepository
    tokens: TokenRepository
    audit: AuditRepository
    files: FileStore
    batches: BatchRepository
    events: DeviceEventRepository
    health: HealthRepository
    health_reads: HealthReadRepository
    incidents: IncidentRepository
    digest_nonces: DigestNonceRepository
    profiles: ProfileRepository
    subscribers: SubscriberRepository
    drift: DriftRepository
    firmware: FirmwareRepository
    campaigns: CampaignRepository
    trends: TrendRepository
    webhooks: WebhookDeliveryRepository
    notes: NoteRepository
    soap_captures: SoapCaptureRepository

    @classmethod
    def open(cls, database: Database, box: SecretBox) -> Repositories:
        return cls(
            devices=DeviceRepository(database),
            parameters=ParameterRepository(database, box),
            sessions=SessionRepository(database),
            locks=SessionLockRepository(database),
            tasks=TaskRepository(database),
            jobs=JobRepository(database),
            tokens=TokenRepository(database),
            audit=AuditRepository(database),
            files=FileStore(database),
            batches=BatchRepository(database),
            events=DeviceEventRepository(database),
            health=HealthRepository(database),
            health_reads=HealthReadRepository(database),
            incidents=IncidentRepository(database),
            digest_nonces=DigestNonceRepository(database),
            profiles=ProfileRepository(database),
            subscribers=SubscriberRepository(database, box),
            drift=DriftRepository(database),
            firmware=FirmwareRepository(database),
            campaigns=CampaignRepository(database),
            trends=TrendRepository(database),
            webhooks=WebhookDeliveryRepository(database),
            notes=NoteRepository(database),
            soap_captures=SoapCaptureRepository(database),
        )

    async def ensure_indexes(self) -> None:
        for repository in (
            self.devices,
            self.parameters,
            self.sessions,
            self.locks,
            self.tasks,
            self.jobs,
            self.tokens,
            self.audit,
            self.files,
            self.batches,
            self.events,
            self.health,
            self.health_reads,
            self.incidents,
            self.digest_nonces,
            self.profiles,
            self.subscribers,
            self.drift,
            self.firmware,
            self.campaigns,
            self.trends,
            self.webhooks,
            self.notes,
            self.soap_captures,
        ):
            await repository.ensure_indexes()
        # Tasks stored before ``open_on`` get it once, before any session reads its device's open
        # tasks by it (tasks/store/tasks.py): an open task without it would never be claimed.
        if await self.jobs.state(OPEN_ON_BACKFILL) is None:
            written = await self.tasks.backfill_open_on()
            await self.jobs.save_state(OPEN_ON_BACKFILL, {"tasks_written": written})
        # The same for ``expiry_due``, which the expiry job reads them by.
        if await self.jobs.state(EXPIRY_DUE_BACKFILL) is None:
            written = await self.tasks.backfill_expiry_due()
            await self.jobs.save_state(EXPIRY_DUE_BACKFILL, {"tasks_written": written})


@dataclass
class Services:
    settings: Settings
    database: Database
    repositories: Repositories
    box: SecretBox
    notifier: TaskNotifier
    queue: TaskQueue
    dispatcher: Dispatcher
    provisioner: Provisioner
    registry: DeviceRegistry
    cwmp: CwmpService
    health: HealthPoller
    clock: Callable[[], datetime]
    profiles: ProfileEngine
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def jobs(self) -> JobRepository:
        return self.repositories.jobs


def build_services(settings: Settings, database: Database, clock: Callable[[], datetime] = utc_now) -> Services:
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    box = SecretBox(load_or_create_key(secret, settings.data_dir))
    repositories = Repositories.open(database, box)
    metrics = Metrics()
    notifier = TaskNotifier()
    queue = TaskQueue(repositories.tasks, box, notifier, clock, settings.task_default_expiry)
    dispatcher = Dispatcher(repositories.tasks, repositories.parameters, box, notifier, clock)
    queue.final_hooks = dispatcher.final_hooks  # one list: an end by cancel or expiry runs them too
    provisioner = Provisioner(
        queue,
        repositories.devices,
        box,
        settings.periodic_inform_interval,
        settings.provision_connection_request_credentials,
        repositories.parameters,
    )
    dispatcher.final_hooks.append(provisioner.on_task_final)
    margin = OfflineMargin(settings.periodic_inform_interval, settings.offline_interval_factor, settings.offline_grace)
    registry = DeviceRegistry(repositories.devices, repositories.parameters, repositories.events, margin)
    transitions = metrics.counter("acs_device_transitions_total", "Devices going online or offline", ("to",))
    registry.transition_hooks.append(lambda _device_id, to: transitions.inc(to=to))
    dispatcher.final_hooks.append(registry.on_task_final)
    profiles = ProfileEngine(
        ProfileCatalog(repositories.profiles, box, settings.profile_cache_seconds),
        AliasTable.default(),
        repositories.devices,
        repositories.parameters,
        repositories.subscribers,
        repositories.events,
        queue,
        box,
        clock,
        settings.profile_max_failures,
    )
    dispatcher.final_hooks.append(profiles.on_task_final)
    dispatcher.in_acs["reprovision"] = profiles.reprovision
    cwmp = CwmpService(
        registry,
        repositories.sessions,
        repositories.locks,
        dispatcher,
        provisioner,
        clock,
        SessionTimeouts(idle=timedelta(seconds=settings.session_timeout)),
        ParserLimits(max_bytes=settings.max_body_bytes),
        settings.periodic_inform_interval,
        CwmpMetrics.register(metrics),
        settings.cpe_username_rule,
        box,
        profiles=profiles,
    )
    health = build_health_poller(settings, repositories, queue, clock)
    dispatcher.final_hooks.append(health.on_task_final)
    health.stored_hooks.append(TrendRecorder(repositories.trends).on_health_many)
    queue.final_hooks_many[health.on_task_final] = health.on_tasks_final  # the expiry job's ends, batched
    return Services(
        settings, database, repositories, box, notifier, queue, dispatcher, provisioner, registry, cwmp, health, clock,
        profiles, metrics,
    )


def health_policies(settings: Settings) -> list[Policy]:
    if settings.health_policies_file is not None:
        return load_policies(settings.health_policies_file)
    return default_policies(settings.health_interval, settings.health_watch_tag, settings.health_watch_interval)


def build_health_poller(
    settings: Settings, repositories: Repositories, queue: TaskQueue, clock: Callable[[], datetime]
) -> HealthPoller:
    thresholds = Thresholds(
        settings.health_rx_warn_dbm, settings.health_rx_critical_dbm, settings.health_tx_low_dbm,
        settings.health_temperature_warn_c, settings.health_temperature_critical_c,
        settings.health_reboots_warn, settings.health_reboots_critical,
    )
    limits = PollLimits(settings.health_concurrency, settings.health_max_in_flight, settings.health_ride_window,
                        settings.health_results_kept, settings.periodic_inform_interval)
    return HealthPoller(queue, repositories.devices, repositories.events, repositories.health,
                        health_policies(settings), default_catalog(), thresholds, limits, clock,
                        repositories.health_reads)
