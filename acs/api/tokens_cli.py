"""``acs token create|list|revoke``: manage operator API tokens from the shell.

The token text is printed once, by ``create``; only its SHA-256 hash is stored. A revoked token
stops working in running ACS processes within their token cache time (a few seconds); one made
with ``--expires 90d`` stops working at that time, and ``list`` shows when.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta

from acs.api.auth import TokenAuthority
from acs.config import Settings
from schemas.api import Role
from tasks.store.db import Database
from tasks.store.tokens import DuplicateTokenName, TokenRepository


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print it (once)",
                                description="Create an API token. The token is printed once; keep it.")
    create.add_argument("--name", required=True, help="a unique name (who or what uses the token)")
    create.add_argument("--role", required=True, choices=[role.value for role in Role],
                        help="viewer reads; operator also runs tasks; admin also manages tokens and settings")
    create.add_argument("--expires", type=lifetime, metavar="N[smhdw]", default=None,
                        help="the token stops working after this long (e.g. 90d, 12h); default: never")
    actions.add_parser("list", help="list tokens (names, roles, last use, expiry; never the token text)",
                       description="List API tokens.")
    revoke = actions.add_parser("revoke", help="revoke a token by name or id",
                                description="Revoke an API token (running servers notice within seconds).")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="the token's name")
    which.add_argument("--id", dest="token_id", help="the token's id")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from acs.serve import run_with_database  # starts the local development database when no URI is set

    return await run_with_database(settings, lambda database: _run(args, database))


async def _run(args: argparse.Namespace, database: Database) -> int:
    tokens = TokenRepository(database)
    await tokens.ensure_indexes()
    authority = TokenAuthority(tokens, lambda: datetime.now(UTC))
    match args.token_action:
        case "create":
            return await _create(authority, args.name, Role(args.role), args.expires)
        case "list":
            return await _list(tokens, authority.clock())
        case _:
            return await _revoke(authority, tokens, args.name, args.token_id)


async def _create(authority: TokenAuthority, name: str, role: Role, expires: timedelta | None) -> int:
    expires_at = None if expires is None else authority.clock() + expires
    try:
        token, record = await authority.create(name, role, "cli", expires_at)
    except DuplicateTokenName:
        print(f"acs token: a token named {name!r} exists; revoke it first or pick another name", file=sys.stderr)
        return 1
    until = f", expires {_when(expires_at)} UTC" if expires_at else ""
    print(f"created token {record['name']} (id {record['_id']}, role {role.value}{until}); it is shown only once:",
          file=sys.stderr)
    print(token)
    return 0


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def lifetime(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w``, ``45s``: how long a token lives."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})([smhdw])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number and a unit, e.g. 90d, 12h, 30m")
    return timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])


async def _list(tokens: TokenRepository, now: datetime) -> int:
    print(f"{'ID':24}  {'NAME':24}  {'ROLE':8}  {'CREATED':20}  {'EXPIRES':28}  LAST USED")
    after: str | None = None
    while page := await tokens.page(after, 200):
        for record in page:
            expires_at = record.get("expires_at")
            expires = _when(expires_at) + (" (expired)" if expires_at is not None and expires_at <= now else "")
            print(f"{record['_id']:24}  {record['name']:24}  {record['role']:8}  "
                  f"{_when(record.get('created_at')):20}  {expires:28}  {_when(record.get('last_used_at'))}")
        after = page[-1]["_id"]
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


async def _revoke(authority: TokenAuthority, tokens: TokenRepository, name: str | None, token_id: str | None) -> int:
    if name is not None:
        record = await tokens.by_name(name)
        token_id = None if record is None else record["_id"]
    revoked = await authority.revoke(token_id) if token_id else None
    if revoked is None:
        print(f"acs token: no token {name or token_id!r}", file=sys.stderr)
        return 1
    print(f"revoked token {revoked['name']} (id {revoked['_id']})", file=sys.stderr)
    return 0
