"""``acs user create|list|disable|enable``: console accounts from the shell.

The password is read from ``--password-stdin`` (one line) or asked for on the terminal; it is
never a command-line argument (which other users could see in the process list).
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from datetime import UTC, datetime

from acs.config import Settings
from acs.console.accounts import MIN_PASSWORD, USERNAME_PATTERN, Accounts
from schemas.api import Role
from tasks.store.db import Database
from tasks.store.users import ConsoleSessionRepository, DuplicateUserName, UserRepository


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a console user", description="Create a console user.")
    create.add_argument("--name", required=True, help="the username")
    create.add_argument("--role", required=True, choices=[role.value for role in Role],
                        help="viewer reads; operator also acts on devices; admin also manages users")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("list", help="list console users", description="List console users.")
    for action, text in (("disable", "disable a user and end their sessions"), ("enable", "enable a user again")):
        which = actions.add_parser(action, help=text, description=text.capitalize() + ".")
        which.add_argument("--name", required=True, help="the username")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from acs.serve import run_with_database  # starts the local development database when no URI is set

    return await run_with_database(settings, lambda database: _run(args, database))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


async def _run(args: argparse.Namespace, database: Database) -> int:
    users, sessions = UserRepository(database), ConsoleSessionRepository(database)
    await users.ensure_indexes()
    accounts = Accounts(users, sessions, lambda: datetime.now(UTC))
    match args.user_action:
        case "create":
            return await _create(accounts, args)
        case "list":
            return await _list(users)
        case _:
            if not await accounts.set_disabled(args.name, args.user_action == "disable"):
                print(f"acs user: no user {args.name!r}", file=sys.stderr)
                return 1
            print(f"user {args.name} {args.user_action}d", file=sys.stderr)
            return 0


async def _create(accounts: Accounts, args: argparse.Namespace) -> int:
    if not re.fullmatch(USERNAME_PATTERN, args.name):
        print("acs user: a username is letters, digits and _ . @ - (up to 64)", file=sys.stderr)
        return 2
    try:
        password = _password(args.password_stdin)
        user = await accounts.create(args.name, password, Role(args.role), "cli")
    except ValueError as exc:
        print(f"acs user: {exc} (at least {MIN_PASSWORD} characters)", file=sys.stderr)
        return 2
    except DuplicateUserName:
        print(f"acs user: a user named {args.name!r} exists", file=sys.stderr)
        return 1
    print(f"created console user {user['username']} (role {user['role']})", file=sys.stderr)
    return 0


async def _list(users: UserRepository) -> int:
    print(f"{'USERNAME':24}  {'ROLE':8}  {'STATE':8}  LAST LOGIN")
    after: str | None = None
    while page := await users.page(after, 200):
        for user in page:
            state = "disabled" if user.get("disabled") else "active"
            last = user.get("last_login_at")
            print(f"{user['username']:24}  {user['role']:8}  {state:8}  {last:%Y-%m-%d %H:%M:%S}" if last
                  else f"{user['username']:24}  {user['role']:8}  {state:8}  -")
        after = page[-1]["username"]
    return 0
