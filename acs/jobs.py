"""The scheduled jobs of ``acs serve`` and their intervals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from acs.connreq import ConnectionRequester
from acs.connreq_followup import FollowingRequester
from acs.cwmp_server.auth import NONCE_LIFETIME
from acs.services import Services
from acs.transfers import download_url
from acs.webhooks import http_sender
from tasks.campaigns.job import CampaignJob
from tasks.fleet import FleetCensus
from tasks.incidents.grouping import Config as IncidentConfig
from tasks.incidents.job import IncidentDetector
from tasks.offline import OfflineCount, OfflineDetector
from tasks.profiles.drift_report import DriftReporter
from tasks.scheduler import Job, JobRunner
from tasks.search_backfill import SearchBackfill
from tasks.secret_backfill import SecretSealing
from tasks.store.fleet import FleetSummaryRepository
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.login_attempts import LoginAttemptRepository
from tasks.store.users import ConsoleSessionRepository
from tasks.trends import BootFolding, expired_days
from tasks.watch import WatchExpiry
from tasks.webhooks import WebhookConfig, WebhookOutbox

SESSION_REAPER_INTERVAL = 5.0
TASK_EXPIRY_INTERVAL = 15.0
JOB_SHARE = 0.05  # of its interval, what a job's run may take (issue 13): bounded runs stop there
# The time budget of a bounded run, as a part of its share: the work that ends past the budget (a
# partition's read, a device's mark) and the saved position come after it, within the share.
JOB_BUDGET = 0.6 * JOB_SHARE
# Marking devices offline is bounded by a third of its interval, not by JOB_BUDGET: in steady state a
# run marks a few devices in tens of ms, and the budget binds only when many are overdue at once, a mass
# outage among them, which line 2 must see. A mark costs about 10 ms at 200,000 devices under load
# (10,986 in 109 s, docs/performance.md, twelfth step): 3% of 15 s would mark about 3 devices a
# second (10,000 behind one OLT in an hour); a third marks about 33 (5 minutes), and no run holds the
# database for long (one unbounded run took 450 s).
OFFLINE_MARK_BUDGET = 1 / 3
JOB_HISTORY_INTERVAL = 3600.0
JOB_HISTORY_KEPT = timedelta(days=7)
WATCH_EXPIRY_INTERVAL = 60.0
OFFLINE_COUNT_INTERVAL = 60.0  # the acs_devices_offline gauge
DIGEST_NONCE_PRUNE_INTERVAL = 60.0
DIGEST_NONCE_SLACK = timedelta(seconds=60)  # clocks of several hosts may differ a little
SEARCH_BACKFILL_INTERVAL = 600.0  # a run stops after half of it and the next goes on
# The fleet census reads for at most FLEET_CENSUS_BUDGET per run (plus its last partition), so a pass
# is spread over runs (tasks/fleet.py): the overview is as old as one pass, which is the fleet's read
# time divided by this share (a whole pass read 522 s at 200,000 devices on a loaded 2-core box).
# Short runs, often: the same share (1/30) of the time, in bursts of half a second. At 2 s every 60 s
# a run took 1.3-1.4 s of database CPU at 5,000 devices, the database's full attention for 2 s, and
# the sessions queued behind it (docs/performance.md, the steady state's tail).
FLEET_CENSUS_INTERVAL = 15.0
FLEET_CENSUS_BUDGET = 0.5
# A new pass begins 5 minutes after the last one began, at the soonest (as the incident job's census,
# ACS_INCIDENT_CENSUS_INTERVAL): a fleet read in less is not read again at once. Read back to back, a
# pass over 5,000 devices (about 8 runs) read 40 devices a second for good, 580 ms of every 15 s.
FLEET_CENSUS_PERIOD = 300.0
# A detection run reads the devices its window's events name for this share of its interval (1 s of
# the default 30 s; the rest of the 5% goes on the events, the members, the census and the writes).
INCIDENT_READ_SHARE = 1 / 30
# A detection run marks the open incidents' new members on their devices (and removes a resolved one's
# marks) for at most this share of its interval (tasks/incidents/marks.py): 0.5 s of 30 s, about 300
# devices at 1.65 ms a mark at 200,000, so that with its read share a run during an outage stays near
# 5% of its interval; the list looks the members not marked yet up by id meanwhile.
INCIDENT_MARK_SHARE = 1 / 60
# The incident job's group census is read for this share of the detection interval (at least
# INCIDENT_CENSUS_BUDGET_MIN per interval; tasks/incidents/sizes.py), 0.9 s of the default 30 s: a pass
# over 200,000 devices (about 50 s of reading on a quiet 2-core box) takes about an hour, hours on a
# loaded box; groups near a decision are counted exactly every run whatever the census's age. It is
# read by a job of its own, INCIDENT_CENSUS_RUNS runs per detection interval, each with that many
# times less budget: the same reading in smaller bursts. Read in the detection run, the census took
# about 1 s of the database's full attention every 30 s at 5,000 devices (0.85 s of database CPU), and
# the sessions queued behind it (docs/performance.md, the steady state's tail).
INCIDENT_CENSUS_SHARE = 0.03
INCIDENT_CENSUS_BUDGET_MIN = 0.25  # seconds per detection interval: a few partitions even at a short interval
INCIDENT_CENSUS_RUNS = 3
LOGIN_ATTEMPTS_KEPT = timedelta(days=1)  # the lock-out and the throttle look back 15 minutes at most


def register_jobs(runner: JobRunner, services: Services) -> None:
    async def reap_sessions() -> dict[str, Any]:
        return {"sessions_timed_out": await services.cwmp.reap_stale()}

    async def expire_tasks() -> dict[str, Any]:
        return {"tasks_expired": await services.queue.expire_due(TASK_EXPIRY_INTERVAL * JOB_BUDGET)}

    async def prune_job_runs() -> dict[str, Any]:
        now, jobs = services.clock(), services.repositories.jobs
        # the lease claims go after an hour, not with the runs' week (tasks/store/jobs.py)
        return {"runs_pruned": await jobs.prune_runs(now - JOB_HISTORY_KEPT),
                "claims_pruned": await jobs.prune_claims(now)}

    async def backfill_expiry_due() -> dict[str, Any]:
        # A task queued by a process of the version before ``expiry_due`` (a rolling upgrade) has
        # none, and the expiry job's minute scan would never read it: given one, every hour.
        tasks = services.repositories.tasks
        return {"tasks_written": await tasks.backfill_expiry_due(await tasks.expiry_scan())}

    runner.add(Job("reap_sessions", SESSION_REAPER_INTERVAL, reap_sessions))
    runner.add(Job("expire_tasks", TASK_EXPIRY_INTERVAL, expire_tasks))
    runner.add(Job("backfill_expiry_due", JOB_HISTORY_INTERVAL, backfill_expiry_due))
    runner.add(Job("prune_job_runs", JOB_HISTORY_INTERVAL, prune_job_runs))

    async def prune_digest_nonces() -> dict[str, Any]:
        # A nonce older than its lifetime is refused as stale anyway: its counts need not be kept.
        before = services.clock() - timedelta(seconds=NONCE_LIFETIME) - DIGEST_NONCE_SLACK
        return {"nonce_uses_pruned": await services.repositories.digest_nonces.prune(before)}

    runner.add(Job("prune_digest_nonces", DIGEST_NONCE_PRUNE_INTERVAL, prune_digest_nonces))
    login_attempts = LoginAttemptRepository(services.database)
    console_sessions = ConsoleSessionRepository(services.database)

    async def prune_console_logins() -> dict[str, Any]:
        now = services.clock()
        return {"attempts_pruned": await login_attempts.prune(now - LOGIN_ATTEMPTS_KEPT),
                "sessions_pruned": await console_sessions.delete_expired(now)}

    runner.add(Job("prune_console_logins", JOB_HISTORY_INTERVAL, prune_console_logins))
    watches = WatchExpiry(services.repositories.devices, services.settings.health_watch_tag, services.clock)

    async def end_watches() -> dict[str, Any]:
        return {"watches_ended": await watches.run()}

    runner.add(Job("end_watches", WATCH_EXPIRY_INTERVAL, end_watches))
    backfill = SearchBackfill(services.repositories.devices, services.repositories.jobs,
                              SEARCH_BACKFILL_INTERVAL / 2)
    runner.add(Job("backfill_search", SEARCH_BACKFILL_INTERVAL, backfill.run, at_start=True))
    sealing = SecretSealing(services.repositories.parameters, services.repositories.jobs,
                            SEARCH_BACKFILL_INTERVAL / 2)
    runner.add(Job("seal_cached_secrets", SEARCH_BACKFILL_INTERVAL, sealing.run, at_start=True))
    drift = DriftReporter(services.profiles, services.repositories.devices, services.repositories.drift,
                          services.clock, services.settings.drift_max_devices)
    runner.add(Job("configuration_drift", services.settings.drift_interval, drift.run, at_start=True))
    census = FleetCensus(services.repositories.devices, FleetSummaryRepository(services.database), services.clock,
                         FLEET_CENSUS_BUDGET, period_seconds=FLEET_CENSUS_PERIOD)
    runner.add(Job("fleet_census", FLEET_CENSUS_INTERVAL, census.run, at_start=True))
    register_monitoring_jobs(runner, services)


def register_monitoring_jobs(runner: JobRunner, services: Services) -> None:
    """Issue 5: offline detection, health polls, incident detection, and pruning their records."""
    settings, repositories = services.settings, services.repositories
    offline_gauge = services.metrics.gauge("acs_devices_offline", "Devices marked offline (the last complete count)")
    detector = OfflineDetector(repositories.devices, repositories.events, services.clock,
                               services.registry.transition_hooks,
                               settings.offline_check_interval * OFFLINE_MARK_BUDGET)

    async def detect_offline() -> dict[str, Any]:
        return {"went_offline": await detector.run()}

    counter = OfflineCount(repositories.devices, repositories.jobs, OFFLINE_COUNT_INTERVAL * JOB_BUDGET)

    async def count_offline() -> dict[str, Any]:
        # Its own job, less often than the detection: on FerretDB 1.24 a count reads every document
        # it counts (0.8 s for the 2,000 offline of 200,000 devices), more than the detection's scan;
        # so it counts group by group, over runs when many are offline (tasks/offline.py).
        counts = await counter.run()
        offline = await counter.last()
        if offline is not None:
            offline_gauge.set(offline)
        return counts

    requester = ConnectionRequester(services.box, settings.connection_request_timeout,
                                    settings.connection_request_attempts)
    # A campaign's device woken while in a session may answer and forget the request (TR-069 3.2.2
    # lets it open the session after; much firmware does not): followed up as the API's are
    # (acs/connreq_followup.py), so its Download does not wait for the next periodic inform while the
    # campaign's window runs. The health poll's requests are not: its read goes out at the next
    # periodic inform all the same, and following up each of its wakes would add two device reads.
    following = FollowingRequester(services.box, settings.connection_request_timeout,
                                   settings.connection_request_attempts, repositories.devices, services.clock)
    runner.on_stop += [requester.close, following.close]

    async def wake(device: dict[str, Any]) -> bool:
        return (await requester.wake(device)).answered is True

    services.health.wake = wake

    async def wake_for_campaign(device: dict[str, Any]) -> bool:
        return (await following.wake(device)).answered is True

    async def poll_health() -> dict[str, Any]:
        return await services.health.run()

    config = IncidentConfig(timedelta(seconds=settings.incident_window), settings.incident_min_devices,
                            settings.incident_min_share, settings.incident_resolve_share,
                            settings.incident_baseline_alpha)
    census_budget = max(INCIDENT_CENSUS_BUDGET_MIN,
                        settings.incident_check_interval * INCIDENT_CENSUS_SHARE) / INCIDENT_CENSUS_RUNS
    incidents = IncidentDetector(repositories.devices, repositories.events, repositories.incidents, config,
                                 services.clock, timedelta(seconds=settings.incident_census_interval), census_budget,
                                 census=IncidentCensusRepository(services.database), census_in_run=False,
                                 by_changes=True, read_budget=settings.incident_check_interval * INCIDENT_READ_SHARE,
                                 mark_budget=settings.incident_check_interval * INCIDENT_MARK_SHARE)
    changes = services.metrics.counter("acs_incidents_total", "Incidents opened and resolved", ("event",))
    incidents.hooks.append(lambda event, _incident: changes.inc(event=event))

    async def detect_incidents() -> dict[str, Any]:
        return await incidents.run()

    async def incident_census() -> dict[str, Any]:
        return await incidents.advance_census()

    async def prune_device_events() -> dict[str, Any]:
        before = services.clock() - timedelta(days=settings.event_retention_days)
        return {"events_pruned": await repositories.events.prune(before),
                "incidents_pruned": await repositories.incidents.prune(before)}

    runner.add(Job("detect_offline", settings.offline_check_interval, detect_offline))
    runner.add(Job("count_offline", OFFLINE_COUNT_INTERVAL, count_offline))
    runner.add(Job("poll_health", settings.health_check_interval, poll_health))
    runner.add(Job("detect_incidents", settings.incident_check_interval, detect_incidents))
    runner.add(Job("incident_census", settings.incident_check_interval / INCIDENT_CENSUS_RUNS, incident_census))
    runner.add(Job("prune_device_events", JOB_HISTORY_INTERVAL, prune_device_events))
    campaigns = CampaignJob(repositories.campaigns, repositories.firmware, repositories.devices, repositories.tasks,
                            services.queue, repositories.events, repositories.incidents, services.clock,
                            lambda file_id: download_url(settings, file_id), wake_for_campaign)
    runner.add(Job("run_campaigns", settings.campaign_check_interval, campaigns.run))
    register_trend_jobs(runner, services)
    register_webhook_jobs(runner, services)


TREND_BOOTS_INTERVAL = 900.0  # well within tasks.trends.BOOTS_LOOKBACK


def register_trend_jobs(runner: JobRunner, services: Services) -> None:
    """Issue 16 item 5: boots counted into the hourly trends; days past the retention dropped."""
    repositories = services.repositories
    boots = BootFolding(repositories.events, repositories.devices, repositories.trends, services.clock)

    async def prune_trends() -> dict[str, Any]:
        return {"trend_docs_pruned": await repositories.trends.prune(expired_days(services.clock()))}

    runner.add(Job("fold_boots", TREND_BOOTS_INTERVAL, boots.run))
    runner.add(Job("prune_trends", JOB_HISTORY_INTERVAL, prune_trends))


WEBHOOK_DELIVERIES_KEPT = timedelta(days=30)


def register_webhook_jobs(runner: JobRunner, services: Services) -> None:
    """Issue 16 item 7: new incidents to the operator's webhook (when one is configured)."""
    settings, repositories = services.settings, services.repositories

    async def prune_webhook_deliveries() -> dict[str, Any]:
        before = services.clock() - WEBHOOK_DELIVERIES_KEPT
        return {"deliveries_pruned": await repositories.webhooks.prune(before)}

    runner.add(Job("prune_webhook_deliveries", JOB_HISTORY_INTERVAL, prune_webhook_deliveries))

    async def prune_soap_captures() -> dict[str, Any]:  # issue 16 item 8: captures kept 7 days
        return {"captures_pruned": await repositories.soap_captures.prune(services.clock())}

    runner.add(Job("prune_soap_captures", JOB_HISTORY_INTERVAL, prune_soap_captures))
    if settings.webhook_url is None or settings.webhook_secret is None:
        return
    config = WebhookConfig(settings.webhook_url, settings.webhook_secret.get_secret_value().encode(),
                           settings.webhook_max_attempts)
    outbox = WebhookOutbox(config, repositories.webhooks, repositories.incidents, repositories.jobs,
                           http_sender(settings.webhook_timeout), services.clock)
    runner.add(Job("deliver_webhooks", settings.webhook_interval, outbox.run))
