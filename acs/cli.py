"""The ``acs`` command: ``serve``, ``token``, ``user``, ``profile``, ``subscribers``, ``sim``.

Every setting of :class:`acs.config.Settings` is a flag of ``acs serve`` (``--cwmp-listen``),
an ``ACS_*`` variable (``ACS_CWMP_LISTEN``) and a key of the ``--config`` TOML file.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acs import eventloop
from acs.config import ConfigError, Settings, env_name, load_settings
from acs.eventloop import EventLoopChoice, EventLoopUnavailable
from acs.logs import configure_logging


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with settings (keys as below, optionally under [acs])")
    for field, info in Settings.model_fields.items():
        annotation = typing.get_args(info.annotation) or (info.annotation,)
        kind = "int" if int in annotation else "float" if float in annotation else "text"
        default = info.default if info.default is not None else "unset"
        help_text = f"{info.description} (env {env_name(field)}; default {default})"
        if bool in annotation:
            parser.add_argument(_flag(field), dest=field, action=argparse.BooleanOptionalAction, help=help_text)
            continue
        converter: Any = {"int": int, "float": float, "text": str}[kind]
        parser.add_argument(
            _flag(field), dest=field, type=converter, metavar=field.split("_")[-1].upper(), help=help_text
        )


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {field: getattr(args, field, None) for field in Settings.model_fields}
    return load_settings(getattr(args, "config", None), overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acs",
        description="TR-069 (CWMP) auto-configuration server: CWMP endpoint, operator API, scheduler, simulator.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the CWMP endpoint, the operator API and the scheduler",
        description="Run the ACS. With ACS_MONGODB_URI unset a local database is "
        "started under the data directory and stopped on exit.",
    )
    _add_setting_flags(serve)

    token = commands.add_parser(
        "token", help="manage operator API tokens", description="Create, list and revoke API tokens (stored hashed)."
    )
    _add_setting_flags(token)
    from acs.api import tokens_cli

    tokens_cli.add_arguments(token)

    user = commands.add_parser(
        "user", help="manage console users", description="Create, list, disable and enable console users."
    )
    _add_setting_flags(user)
    from acs.console import users_cli

    users_cli.add_arguments(user)

    firmware = commands.add_parser(
        "firmware", help="manage firmware images for campaigns",
        description="Store firmware files and describe them (version, product classes) for campaigns.",
    )
    _add_setting_flags(firmware)
    from acs import firmware_cli

    firmware_cli.add_arguments(firmware)

    from acs import profiles_cli

    profile = commands.add_parser(
        "profile",
        help="manage auto-configuration profiles from YAML files",
        description="Apply, list, show, diff and roll back auto-configuration profiles.",
    )
    _add_setting_flags(profile)
    profiles_cli.add_profile_arguments(profile)
    subscribers = commands.add_parser(
        "subscribers",
        help="import subscriber records (PPPoE, VLAN, VoIP, plan) from CSV",
        description="Subscriber records that profile templates draw on.",
    )
    _add_setting_flags(subscribers)
    profiles_cli.add_subscriber_arguments(subscribers)

    sim = commands.add_parser(
        "sim",
        help="run a fleet of simulated CPEs against an ACS",
        description="Simulate N CPEs (TR-098 / TR-181 profiles) speaking CWMP to an ACS.",
    )
    from acs.sim import cli as sim_cli

    sim_cli.add_arguments(sim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        from acs.sim import cli as sim_cli

        exit_code: int = sim_cli.run(args)
        return exit_code
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(f"acs: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.command == "serve":
        from acs.serve import serve

        return _run(serve(settings), settings.event_loop)
    if args.command in ("profile", "subscribers"):
        from acs import profiles_cli

        run = profiles_cli.run_profile if args.command == "profile" else profiles_cli.run_subscribers
        return _run(run(args, settings))
    if args.command == "firmware":
        from acs import firmware_cli

        return _run(firmware_cli.run(args, settings))
    if args.command == "user":
        from acs.console import users_cli

        return _run(users_cli.run(args, settings))
    from acs.api import tokens_cli

    return _run(tokens_cli.run(args, settings))


def _run(coroutine: Any, loop: EventLoopChoice = "asyncio") -> int:
    try:
        return int(eventloop.run(coroutine, loop))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for operators; the log has the details
        from acs.localdb import LocalDatabaseError

        if isinstance(exc, LocalDatabaseError | ConfigError | OSError | EventLoopUnavailable):
            print(f"acs: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
