"""Settings: defaults, then a TOML file (``--config``), then ``ACS_*`` variables, then flags.

Every setting has one name used in all four places: ``cwmp_listen`` is the TOML key
``cwmp_listen``, the variable ``ACS_CWMP_LISTEN`` and the flag ``--cwmp-listen``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from acs.eventloop import EventLoopChoice

ENV_PREFIX = "ACS_"


class CpeAuthMode(StrEnum):
    NONE = "none"
    BASIC = "basic"
    DIGEST = "digest"


class CpeUsernameRule(StrEnum):
    """How global CPE credentials name the device speaking (per-device credentials always do)."""

    NONE = "none"  # any device knowing the global username and password may speak for any device
    SERIAL = "serial"  # the username is the device's SerialNumber
    DEVICE_ID = "device_id"  # the username is the device id (OUI-ProductClass-SerialNumber)


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:7547``) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all interfaces


class Settings(BaseModel):
    """The whole configuration of one ACS process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mongodb_uri: str | None = Field(
        default=None, description="MongoDB URI; unset: start the local development database"
    )
    data_dir: Path = Field(default=Path(".acs-data"), description="Local state: database, secret key, logs")
    cwmp_listen: str = Field(default="0.0.0.0:7547", description="CWMP endpoint address HOST:PORT")
    cwmp_tls_cert: Path | None = Field(default=None, description="PEM certificate for the CWMP endpoint")
    mongodb_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Database connections per worker; keep workers x this well below FerretDB's 50 PostgreSQL "
        "connections (it deadlocks near 25 concurrent writes)",
    )
    mongodb_wait_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Wait for a free database connection before answering 503 (s)"
    )
    cwmp_db_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Time limit of each database operation of a CWMP request (s)"
    )
    cwmp_max_requests: int = Field(
        default=128, ge=1, le=100_000, description="CWMP requests handled at once per worker; more get 503"
    )
    cwmp_tls_key: Path | None = Field(default=None, description="PEM private key for the CWMP endpoint")
    cwmp_public_url: str | None = Field(
        default=None, description="URL devices use to reach the CWMP endpoint (pushed as ManagementServer.URL)"
    )
    cwmp_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Load balancers (addresses or networks) whose X-Forwarded-For names the device's address",
    )
    cwmp_header_timeout: float = Field(
        default=20.0, gt=0, le=600, description="CWMP: a new connection's request headers must arrive within (s)"
    )
    cwmp_body_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="CWMP: longest pause between two reads of a request body (s)"
    )
    cwmp_keepalive_timeout: float = Field(
        default=40.0, gt=0, le=3600, description="CWMP: an idle kept-alive connection is closed after (s)"
    )
    cwmp_max_connections: int = Field(
        default=10_000, ge=1, le=1_000_000, description="CWMP: open connections per worker; more get 503"
    )
    api_listen: str = Field(default="127.0.0.1:7557", description="Operator API address HOST:PORT")
    api_header_timeout: float = Field(
        default=20.0, gt=0, le=600, description="API and console: request headers must arrive within (s)"
    )
    api_body_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="API and console: longest pause between two body reads (s)"
    )
    api_keepalive_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="API and console: idle kept-alive connections closed after (s)"
    )
    api_max_connections: int = Field(
        default=1_000, ge=1, le=1_000_000, description="API and console: open connections per worker; more get 503"
    )
    api_tls_cert: Path | None = Field(default=None, description="PEM certificate for the operator API")
    api_tls_key: Path | None = Field(default=None, description="PEM private key for the operator API")
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key encrypting secrets at rest; unset: generated into data_dir"
    )
    cpe_auth: CpeAuthMode = Field(default=CpeAuthMode.NONE, description="CPE authentication: none|basic|digest")
    cpe_username: str | None = Field(default=None, description="Global CPE username (per-device ones win)")
    cpe_password: SecretStr | None = Field(default=None, description="Global CPE password")
    cpe_auth_realm: str = Field(default="acs", description="Realm of the CPE authentication challenge")
    cpe_username_rule: CpeUsernameRule = Field(
        default=CpeUsernameRule.NONE,
        description="Bind global CPE credentials to the device: none|serial|device_id (the username must be it; "
        "any username then takes the global password)",
    )
    periodic_inform_interval: int = Field(
        default=300, ge=10, le=86400 * 7, description="Periodic inform interval pushed to devices (s)"
    )
    session_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Idle time allowed between two messages of a CWMP session (s)"
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=4096, description="Largest CWMP request body")
    max_file_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest stored file (operator upload or device Upload)"
    )
    provision_connection_request_credentials: bool = Field(
        default=True, description="Set random per-device connection-request credentials at BOOTSTRAP"
    )
    profile_cache_seconds: float = Field(
        default=5.0, ge=0, le=600, description="How long a process keeps the profiles in memory before re-reading them"
    )
    profile_max_failures: int = Field(
        default=3, ge=1, le=100, description="Failed profile applications in a row before a device is blocked"
    )
    drift_interval: int = Field(default=3600, ge=5, description="Seconds between two configuration drift reports")
    drift_max_devices: int = Field(
        default=20_000, ge=1, description="Devices one drift report reads at most (the rest is counted as not checked)"
    )
    connection_request_timeout: float = Field(default=5.0, gt=0, le=60, description="Per attempt (s)")
    connection_request_attempts: int = Field(default=2, ge=1, le=5, description="Attempts per wake-up")
    task_default_expiry: int = Field(default=7 * 86400, ge=60, description="Lifetime of a task with no expires_in (s)")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes sharing the listening sockets")
    shutdown_grace: float = Field(default=10.0, ge=0, le=300, description="Bound on finishing sessions at exit")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    event_loop: EventLoopChoice = Field(
        default="auto",
        description="auto (uvloop when installed, as it is on Linux and macOS; else asyncio), uvloop or asyncio",
    )
    # -- offline detection, health polls, incidents (issue 5) --
    offline_interval_factor: float = Field(
        default=2.0, ge=1.0, le=10.0, description="Offline after missing the periodic inform interval x this"
    )
    offline_grace: float = Field(default=60.0, ge=0, le=86400, description="Plus this grace before offline (s)")
    offline_check_interval: float = Field(default=15.0, gt=0, le=3600, description="Offline detection job (s)")
    health_interval: int = Field(default=21600, ge=0, description="Health poll of every device (s); 0: off")
    health_watch_tag: str = Field(default="watch", description="Tag line 2 sets to poll a device more often")
    health_watch_interval: int = Field(default=300, ge=10, description="Health poll of watched devices (s)")
    health_policies_file: Path | None = Field(
        default=None, description="JSON list of health policies (replaces the two built from the settings above)"
    )
    health_check_interval: float = Field(default=10.0, gt=0, le=3600, description="Health poll job (s)")
    health_concurrency: int = Field(default=20, ge=1, le=1000, description="Connection requests at once")
    health_max_in_flight: int = Field(default=500, ge=1, description="Health reads queued and unanswered at once")
    health_ride_window: float = Field(
        default=300.0, ge=0, description="No connection request when the periodic inform is due within this (s)"
    )
    health_results_kept: int = Field(default=48, ge=1, le=10000, description="Health results kept per device")
    health_rx_warn_dbm: float = Field(default=-25.0, description="Optical RX power below this: warn")
    health_rx_critical_dbm: float = Field(default=-27.0, description="Optical RX power below this: critical")
    health_tx_low_dbm: float = Field(default=0.5, description="Optical TX power below this: warn")
    health_temperature_warn_c: float = Field(default=70.0, description="Temperature above this: warn")
    health_temperature_critical_c: float = Field(default=85.0, description="Temperature above this: critical")
    health_reboots_warn: int = Field(default=3, ge=1, description="Reboots in 24 h from this many: warn")
    health_reboots_critical: int = Field(default=6, ge=1, description="Reboots in 24 h from this many: critical")
    incident_check_interval: float = Field(default=30.0, gt=0, le=3600, description="Incident detection job (s)")
    incident_window: float = Field(default=900.0, gt=0, description="Signals (offline, critical, failed task) within")
    incident_min_devices: int = Field(default=5, ge=1, description="Affected devices a group needs for an incident")
    incident_min_share: float = Field(
        default=0.3, gt=0, le=1, description="Share of a group affected, above its baseline, that opens an incident"
    )
    incident_resolve_share: float = Field(
        default=0.1, ge=0, lt=1, description="Resolved when members still affected fall to this share of the peak"
    )
    incident_baseline_alpha: float = Field(default=0.05, gt=0, le=1, description="Weight of each run in baselines")
    incident_census_interval: float = Field(
        default=300.0, gt=0, le=86400,
        description="A new count of the fleet's group sizes begins this often at most (s), read a slice per run; "
        "groups near a decision are counted exactly every run",
    )
    campaign_check_interval: float = Field(
        default=10.0, gt=0, le=3600, description="Campaigns move on (stop rules checked) this often (s)"
    )
    event_retention_days: int = Field(default=30, ge=1, description="Device events and closed incidents kept (days)")
    webhook_url: str | None = Field(
        default=None, description="Each new incident is POSTed here, signed (chat or ticketing system); unset: off"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret of the webhook's HMAC-SHA256 signature (required with webhook_url)"
    )
    webhook_max_attempts: int = Field(default=10, ge=1, le=100, description="Webhook attempts before giving up")
    webhook_timeout: float = Field(default=10.0, gt=0, le=300, description="Webhook request time limit (s)")
    webhook_interval: float = Field(default=5.0, gt=0, le=3600, description="Webhook outbox job interval (s)")
    soap_capture_refresh: float = Field(
        default=30.0, gt=0, le=3600, description="Each CWMP worker re-reads the SOAP capture switches this often (s)"
    )

    @field_validator("cwmp_listen", "api_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("cwmp_trusted_proxies", mode="before")
    @classmethod
    def _check_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):  # ACS_CWMP_TRUSTED_PROXIES=10.0.0.2,172.20.0.0/16
            value = [entry.strip() for entry in value.split(",") if entry.strip()]
        if isinstance(value, list):
            for entry in value:
                ipaddress.ip_network(str(entry), strict=False)  # ValueError names the bad entry
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _webhook_signed(self) -> Settings:
        if self.webhook_url is not None and (self.webhook_secret is None or not self.webhook_secret.get_secret_value()):
            raise ValueError("webhook_url needs webhook_secret: every delivery is signed")
        return self

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return upper

    @property
    def cwmp_address(self) -> tuple[str, int]:
        return parse_listen(self.cwmp_listen)

    @property
    def api_address(self) -> tuple[str, int]:
        return parse_listen(self.api_listen)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for field in Settings.model_fields:
        value = environ.get(env_name(field))
        if value is not None and value != "":
            found[field] = value
    return found


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            loaded = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    section = loaded.get("acs", loaded)
    if not isinstance(section, dict):
        raise ConfigError(f"configuration file {path}: [acs] must be a table")
    return dict(section)


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the four sources (later wins) and validate once."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_from_toml(config_file))
    merged.update(_from_env(os.environ if environ is None else environ))
    merged.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
