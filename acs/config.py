"""Settings: defaults, then a TOML file (``--config``), then ``ACS_*`` variables, then flags.

Every setting has one name used in all four places: ``cwmp_listen`` is the TOML key
``cwmp_listen``, the variable ``ACS_CWMP_LISTEN`` and the flag ``--cwmp-listen``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "ACS_"


class CpeAuthMode(StrEnum):
    NONE = "none"
    BASIC = "basic"
    DIGEST = "digest"


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
    cwmp_tls_key: Path | None = Field(default=None, description="PEM private key for the CWMP endpoint")
    cwmp_public_url: str | None = Field(
        default=None, description="URL devices use to reach the CWMP endpoint (pushed as ManagementServer.URL)"
    )
    api_listen: str = Field(default="127.0.0.1:7557", description="Operator API address HOST:PORT")
    api_tls_cert: Path | None = Field(default=None, description="PEM certificate for the operator API")
    api_tls_key: Path | None = Field(default=None, description="PEM private key for the operator API")
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key encrypting secrets at rest; unset: generated into data_dir"
    )
    cpe_auth: CpeAuthMode = Field(default=CpeAuthMode.NONE, description="CPE authentication: none|basic|digest")
    cpe_username: str | None = Field(default=None, description="Global CPE username (per-device ones win)")
    cpe_password: SecretStr | None = Field(default=None, description="Global CPE password")
    cpe_auth_realm: str = Field(default="acs", description="Realm of the CPE authentication challenge")
    periodic_inform_interval: int = Field(
        default=300, ge=30, le=86400 * 7, description="Periodic inform interval pushed to devices (s)"
    )
    session_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Idle time allowed between two messages of a CWMP session (s)"
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=4096, description="Largest CWMP request body")
    provision_connection_request_credentials: bool = Field(
        default=True, description="Set random per-device connection-request credentials at BOOTSTRAP"
    )
    connection_request_timeout: float = Field(default=5.0, gt=0, le=60, description="Per attempt (s)")
    connection_request_attempts: int = Field(default=2, ge=1, le=5, description="Attempts per wake-up")
    task_default_expiry: int = Field(default=7 * 86400, ge=60, description="Lifetime of a task with no expires_in (s)")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes sharing the listening sockets")
    shutdown_grace: float = Field(default=10.0, ge=0, le=300, description="Bound on finishing sessions at exit")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

    @field_validator("cwmp_listen", "api_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

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
