"""What one CWMP session costs the database, command by command.

One simulated HG8245H bootstraps (Inform with provisioning, empty POST, SetParameterValues, 204),
then opens two periodic sessions with nothing queued, against a CWMP endpoint in this process on a
private FerretDB over PostgreSQL. PostgreSQL logs every statement (``log_statement=all``) with
its virtual transaction id, and after each MongoDB command the ACS sends, this script writes a
marker into the same log: so each command is listed with the PostgreSQL transactions and
statements FerretDB ran for it; the writes a clean end defers past its 204 are sent before the
session's table is read, so they are listed with it (the lease's and the steps' deletes leave at once,
so their transactions may be listed under either). Nothing else runs (no scheduled jobs), so every line is the
session's. Timings are not measured here; see boot_storm.py and steady_state.py.

    python bench/session_statements.py [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.localdb import LocalMongo
from acs.localpg import DATABASE, HOST, USER
from acs.services import build_services
from acs.sim.fleet import Fleet, FleetConfig
from tasks.store.db import Database
from tests.support.mongo import database_temp_dir

MARK = "acs-command-mark"
SESSIONS = (
    ("BOOTSTRAP with provisioning", "boot"),
    ("first periodic, nothing queued (the Inform carries the ParameterKey the provisioning set)", "2 PERIODIC"),
    ("periodic, nothing queued, the Inform repeating the previous one's values", "2 PERIODIC"),
)
IGNORED = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo"})
PREFIX = "@@ %p %v "  # log_line_prefix: backend pid, virtual transaction id


@dataclass
class Command:
    label: str
    transactions: int = 0
    statements: Counter[str] = field(default_factory=Counter)


class Marker(monitoring.CommandListener):
    """After each command of the ACS, a marker statement in PostgreSQL's log (synchronously: the
    session waits, so the log lines before the marker are that command's)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.labels: list[str] = []
        self._pending: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in IGNORED:
            self._pending[event.request_id] = self.describe(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._mark(event.command_name, event.request_id)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._mark(event.command_name + " (failed)", event.request_id)

    def describe(self, event: monitoring.CommandStartedEvent) -> str:
        command = event.command
        collection = command.get(event.command_name)
        detail = ""
        if event.command_name in ("insert", "update", "delete"):
            items = command.get({"insert": "documents", "update": "updates", "delete": "deletes"}[event.command_name])
            detail = f" x{len(items or [])}"
        return f"{event.command_name} {collection}{detail}"

    def _mark(self, name: str, request_id: int) -> None:
        if name.split(" ")[0] in IGNORED:
            return
        self.labels.append(self._pending.pop(request_id, name))
        psql(self.port, f"SELECT '{MARK} {len(self.labels) - 1}'")


def psql(port: int, sql: str) -> str:
    done = subprocess.run(
        ["psql", "-h", HOST, "-p", str(port), "-U", USER, "-d", DATABASE, "-Atc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def split_log(text: str, labels: list[str]) -> list[Command]:
    """The statement lines between two markers belong to the command of the second marker."""
    commands = [Command(label) for label in labels]
    transactions: set[str] = set()
    statements: Counter[str] = Counter()
    for line in text.splitlines():
        match = re.match(r"@@ (\d+) (\S*) LOG:  (?:statement|execute [^:]*): (.*)", line)
        if match is None:
            continue
        vxid, sql = match.group(2), match.group(3)
        marker = re.search(rf"{MARK} (\d+)", sql)
        if marker is not None:
            index = int(marker.group(1))
            commands[index].transactions = len(transactions)
            commands[index].statements = statements
            transactions, statements = set(), Counter()
            continue
        if sql.startswith("-- ping"):  # pgx checks a connection idle for a second: not the command's
            continue
        transactions.add(vxid)
        statements[_shape(sql)] += 1
    return commands


def _shape(sql: str) -> str:
    words = sql.split()
    head = " ".join(words[:2]).upper()
    if head in ("BEGIN", "COMMIT", "ROLLBACK") or words[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK"):
        return words[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+("?[\w.]+"?(?:\."?[\w]+"?)?)', sql, re.IGNORECASE)
    return f"{words[0].upper()} {table.group(1) if table else ''}".strip()


async def measure(verbose: bool, keep_log: bool = False) -> None:
    with database_temp_dir("acs-bench-statements-") as directory:
        local = await LocalMongo.start(directory)
        try:
            if local.postgres is None:
                raise SystemExit("this measure needs FerretDB over PostgreSQL")
            port = local.postgres.port
            psql(port, "ALTER SYSTEM SET log_statement = 'all'")
            psql(port, f"ALTER SYSTEM SET log_line_prefix = '{PREFIX}'")
            psql(port, "SELECT pg_reload_conf()")
            await _sessions(local.uri, port, local.postgres.log_path, directory, verbose)
        finally:
            if keep_log:
                print(local.postgres.log_path.read_text() if local.postgres else "")
            await local.stop()


async def _sessions(uri: str, port: int, log_path: Path, directory: Path, verbose: bool) -> None:
    marker = Marker(port)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True, event_listeners=[marker])
    database = Database(client=client, db=client["acs"])
    services = build_services(Settings(data_dir=directory / "acs"), database, lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    fleet = Fleet(FleetConfig(url=str(server.make_url("/")), devices=2, cr_listen=None, autostart=False))
    try:
        await fleet.start()
        # A first device creates the collections (FerretDB's catalogue writes): not measured.
        warm_up, serial = fleet.devices[0].serial, fleet.devices[1].serial
        waiting = fleet.next_session(warm_up)
        fleet.power_on(warm_up)
        assert (await waiting).ok
        for title, start in SESSIONS:
            # PostgreSQL writes a statement's log line before it answers: the log is complete here.
            offset = _size(log_path)
            marker.labels = []
            if start == "boot":
                waiting = fleet.next_session(serial)
                fleet.power_on(serial)
                outcome = await waiting
            else:
                outcome = await fleet.run_session(serial, start)
            assert outcome.ok, outcome
            # A clean end defers its lease's and steps' deletes past its 204 (``GroupWriter.write_later``):
            # sent here, so each table lists its own session's writes, deferred ones included.
            await database.flush_later()
            commands = split_log(_read_from(log_path, offset), marker.labels)
            _print(title, outcome.requests, commands, verbose)
    finally:
        await fleet.stop()
        await server.close()
        await database.close()


def _size(path: Path) -> int:
    return path.stat().st_size


def _read_from(path: Path, offset: int) -> str:
    with path.open() as log:
        log.seek(offset)
        return log.read()


def _print(title: str, requests: list[str], commands: list[Command], verbose: bool) -> None:
    print(f"\n{title} (RPCs the ACS sent: {', '.join(requests) or 'none'})")
    print("| # | MongoDB command | PostgreSQL transactions | PostgreSQL statements |")
    print("|---|---|---|---|")
    for n, command in enumerate(commands, 1):
        detail = ", ".join(f"{shape} x{count}" for shape, count in sorted(command.statements.items()))
        shown = detail if verbose else str(sum(command.statements.values()))
        print(f"| {n} | {command.label} | {command.transactions} | {shown} |")
    total_tx = sum(c.transactions for c in commands)
    total_st = sum(sum(c.statements.values()) for c in commands)
    print(f"| | {len(commands)} commands | {total_tx} | {total_st} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="name every statement kind per command")
    parser.add_argument("--log", action="store_true", help="print PostgreSQL's log at the end")
    args = parser.parse_args()
    asyncio.run(measure(args.verbose, args.log))


if __name__ == "__main__":
    main()
