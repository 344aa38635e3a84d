"""``acs profile apply|list|show|diff|rollback`` and ``acs subscribers import``: profiles and
subscriber records from files, against the configured database (like ``acs token``).

Each change is audited as the API's are (who: ``cli:<login>``, the profile, its version, the diff).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from acs.config import Settings
from acs.services import build_services
from schemas.profiles import ProfileSpec
from tasks.profiles.sealing import shown_spec
from tasks.profiles.service import ProfileError, ProfileService, diff_specs
from tasks.store.db import Database
from tasks.subscriber_import import import_csv


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="profile_action", required=True, metavar="ACTION")
    apply = actions.add_parser(
        "apply",
        help="create or update the profiles of a YAML file (a new version each)",
        description="Save each profile of FILE (one YAML document per profile, or a list) "
        "as its next version; an unchanged profile keeps its version.",
    )
    apply.add_argument("file", type=Path, help="YAML file")
    apply.add_argument("--comment", default=None, help="why (kept with the version)")
    actions.add_parser("list", help="list profiles (name, version, priority, events)", description="List profiles.")
    show = actions.add_parser("show", help="print a profile as YAML (secrets as ***)", description="Print a profile.")
    show.add_argument("name")
    show.add_argument("--version", type=int, default=None, help="an earlier version")
    diff = actions.add_parser(
        "diff",
        help="what FILE would change against the stored profiles (exit 1 if any)",
        description="Compare a YAML file with the stored profiles, field by field.",
    )
    diff.add_argument("file", type=Path)
    rollback = actions.add_parser(
        "rollback",
        help="roll a profile back to an earlier version (saved as a new one)",
        description="Roll a profile back.",
    )
    rollback.add_argument("name")
    rollback.add_argument("--version", type=int, required=True)
    rollback.add_argument("--comment", default=None)


def add_subscriber_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="subscriber_action", required=True, metavar="ACTION")
    load = actions.add_parser(
        "import",
        help="import subscriber records from CSV (bad rows reported, skipped)",
        description="Import subscriber records. Columns: account (required), name, "
        "pppoe_login, pppoe_password, vlan, plan, address, serial_number, bind_by, "
        "voipN_number/voipN_username/voipN_password (N = 1..8).",
    )
    load.add_argument("file", type=Path, help="CSV file (UTF-8, header row)")
    load.add_argument("--dry-run", action="store_true", help="check every row and report; write nothing")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def load_specs(path: Path) -> list[ProfileSpec]:
    """Profiles of a YAML file; ValueError with the document and field that is wrong."""
    documents: list[Any] = []
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if document is None:
            continue
        documents.extend(document if isinstance(document, list) else [document])
    specs = []
    for index, document in enumerate(documents, start=1):
        try:
            specs.append(ProfileSpec.model_validate(document))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{path}: profile {index}: {problems}") from None
    return specs


async def run_profile(args: argparse.Namespace, settings: Settings) -> int:
    from acs.serve import run_with_database

    return await run_with_database(settings, lambda database: _profile(args, settings, database))


async def run_subscribers(args: argparse.Namespace, settings: Settings) -> int:
    from acs.serve import run_with_database

    return await run_with_database(settings, lambda database: _subscribers(args, settings, database))


async def _profile(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    services = build_services(settings, database)
    repositories = services.repositories
    await repositories.profiles.ensure_indexes()
    service = ProfileService(
        repositories.profiles, services.profiles, repositories.devices, services.box, services.clock
    )
    try:
        match args.profile_action:
            case "apply":
                return await _apply(service, services, load_specs(args.file), args.comment)
            case "list":
                return await _list(service)
            case "show":
                return await _show(service, args.name, args.version)
            case "diff":
                return await _diff(service, load_specs(args.file))
            case _:
                saved = await service.rollback(args.name, args.version, _who(), args.comment)
                await _audit(services, "acs profile rollback", args.name, saved["version"])
                print(f"{args.name}: rolled back to version {args.version}, saved as version {saved['version']}")
                return 0
    except (ValueError, ProfileError, OSError, yaml.YAMLError) as exc:
        print(f"acs profile: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1


async def _audit(services: Any, command: str, name: str, version: int) -> None:
    latest = await services.repositories.profiles.versions(name, 1)
    await services.repositories.audit.record(
        {
            "at": services.clock(),
            "token_id": None,
            "token_name": _who(),
            "role": "admin",
            "method": "CLI",
            "path": command,
            "route": command,
            "summary": command,
            "remote": None,
            "status": 0,
            "device_id": None,
            "profile": name,
            "version": version,
            "diff": latest[0]["diff"] if latest else [],
        }
    )


async def _apply(service: ProfileService, services: Any, specs: list[ProfileSpec], comment: str | None) -> int:
    for spec in specs:
        before = await service.repository.get(spec.name)
        saved = await service.save(spec, _who(), comment)
        if before is not None and before["version"] == saved["version"]:
            print(f"{spec.name}: unchanged (version {saved['version']})")
            continue
        await _audit(services, "acs profile apply", spec.name, saved["version"])
        print(f"{spec.name}: {'updated' if before else 'created'}, version {saved['version']}")
    return 0


async def _list(service: ProfileService) -> int:
    print(f"{'NAME':24}  {'VERSION':>7}  {'PRIORITY':>8}  {'ENABLED':7}  {'UPDATED':19}  EVENTS")
    for document in await service.repository.all():
        spec = document["spec"]
        updated = document["updated_at"].strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{document['_id']:24}  {document['version']:>7}  {spec.get('priority', 0):>8}  "
            f"{str(spec.get('enabled', True)).lower():7}  {updated:19}  {', '.join(spec.get('events') or [])}"
        )
    return 0


async def _show(service: ProfileService, name: str, version: int | None) -> int:
    document = await (service.repository.version(name, version) if version else service.repository.get(name))
    if document is None or document.get("spec") is None:
        raise ProfileError("not_found", f"no profile {name}" + (f" version {version}" if version else ""))
    print(yaml.safe_dump(shown_spec(document["spec"]), sort_keys=False, allow_unicode=True), end="")
    return 0


async def _diff(service: ProfileService, specs: list[ProfileSpec]) -> int:
    changed = False
    for spec in specs:
        stored = await service.repository.get(spec.name)
        entries = diff_specs(service.opened(stored["spec"]) if stored else None, spec.model_dump(mode="json"))
        if not entries:
            print(f"{spec.name}: no change")
            continue
        changed = True
        print(f"{spec.name}: {'new profile' if stored is None else 'version ' + str(stored['version'])} ->")
        for entry in entries:
            print(f"  {entry['field']}: {json.dumps(entry['from'])} -> {json.dumps(entry['to'])}")
    return 1 if changed else 0


async def _subscribers(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    services = build_services(settings, database)
    await services.repositories.subscribers.ensure_indexes()
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"acs subscribers: {exc}", file=sys.stderr)
        return 1
    report = await import_csv(text, services.repositories.subscribers, _who(), services.clock, args.dry_run)
    what = "would be" if report.dry_run else "were"
    print(
        f"{report.rows} row(s): {report.created} {what} created, {report.updated} {what} updated, "
        f"{report.unchanged} unchanged, {len(report.bad_rows)} bad"
    )
    for bad in report.bad_rows:
        print(f"  line {bad['line']} ({bad.get('account') or '-'}): {bad['problem']}", file=sys.stderr)
    return 1 if report.bad_rows else 0
