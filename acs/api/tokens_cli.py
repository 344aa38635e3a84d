"""``acs token create|list|revoke``: manage operator API tokens from the shell.

The token text is printed once, by ``create``; only its SHA-256 hash is stored. A revoked token
stops working in running ACS processes within their token cache time (a few seconds).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

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
    actions.add_parser("list", help="list tokens (names, roles, last use; never the token text)",
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
            return await _create(authority, args.name, Role(args.role))
        case "list":
            return await _list(tokens)
        case _:
            return await _revoke(authority, tokens, args.name, args.token_id)


async def _create(authority: TokenAuthority, name: str, role: Role) -> int:
    try:
        token, record = await authority.create(name, role, "cli")
    except DuplicateTokenName:
        print(f"acs token: a token named {name!r} exists; revoke it first or pick another name", file=sys.stderr)
        return 1
    print(f"created token {record['name']} (id {record['_id']}, role {role.value}); it is shown only once:",
          file=sys.stderr)
    print(token)
    return 0


async def _list(tokens: TokenRepository) -> int:
    print(f"{'ID':24}  {'NAME':24}  {'ROLE':8}  {'CREATED':20}  LAST USED")
    after: str | None = None
    while page := await tokens.page(after, 200):
        for record in page:
            print(f"{record['_id']:24}  {record['name']:24}  {record['role']:8}  "
                  f"{_when(record.get('created_at')):20}  {_when(record.get('last_used_at'))}")
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
