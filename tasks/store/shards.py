"""The shard key of each collection on a sharded MongoDB cluster (docs/scaling.md says why).

Device-keyed collections are sharded by the device id, so everything one CWMP session reads or
writes for its device sits on one shard: ``devices``, ``parameters``, ``session_locks`` and ``health_reads`` keep it
as ``_id``; ``session_steps``, ``tasks``, ``device_events``, ``health_results`` and ``trend_days``
in ``device_id``. Collections whose documents are reached by their own id on the session path
(``sessions`` by the cookie, ``task_sends`` by task/attempt/step) are sharded by a hash of ``_id``. The rest are small
(accounts, tokens, incidents, job leases) and stay unsharded on the primary shard.

``tests/acs/test_session_path_shard_keys.py`` checks that every command of a CWMP session names
the shard key of its collection.
"""

from __future__ import annotations

DEVICE_KEYED: dict[str, str] = {
    "devices": "_id",
    "parameters": "_id",
    "session_locks": "_id",
    # A running session's steps (``tasks/store/sessions.py``): found with its lease, by the device.
    "session_steps": "device_id",
    "tasks": "device_id",
    "device_events": "device_id",
    "health_results": "device_id",
    "health_reads": "_id",  # the health poll's reads in flight (read whole by the job: a scatter)
    "trend_days": "device_id",
    "device_notes": "device_id",
    "soap_captures": "device_id",
}
ID_HASHED = (
    "sessions",
    "task_sends",
    "digest_nonce_uses",
    "task_idempotency",
    "audit",
    "job_runs",
    # Issue 15: a campaign member is `<campaign>#<device>` and a claim is unique by `_id`: the
    # campaign job reads them by campaign (a scatter it runs a few times a minute, not per session).
    "campaign_devices",
    "campaign_claims",
    "campaign_takeovers",
)
UNSHARDED = (
    "api_tokens",
    "console_users",
    "console_sessions",
    "console_login_attempts",
    "incidents",
    "incident_keys",
    "incident_baselines",
    "job_leases",
    "job_claims",
    "job_state",
    "task_batches",
    "webhook_deliveries",
    "soap_capture_switches",
    # Issue 14: profiles are read whole (a few dozen documents); subscribers are found by serial or
    # PPPoE login on the session path, so they stay on one shard rather than scatter the lookup.
    "profiles",
    "profile_versions",
    "configuration_drift",
    "subscribers",
    # Issues 15 and 16: campaigns and firmware images (a few hundred documents), saved console
    # filters, cleared fault groups, the fleet summary (one document).
    "campaigns",
    "firmware",
    "console_saved_filters",
    "fault_clears",
    "fleet_summary",
    "incident_census",  # the incident job's group sizes: two documents
)


def shard_key(collection: str) -> dict[str, str | int]:
    """The ``shardCollection`` key for a collection, ``{}`` for one left unsharded."""
    if collection in DEVICE_KEYED:
        return {DEVICE_KEYED[collection]: "hashed"}
    if collection in ID_HASHED:
        return {"_id": "hashed"}
    return {}
