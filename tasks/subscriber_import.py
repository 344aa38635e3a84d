"""Subscriber records from a CSV file (``acs subscribers import``, ``POST /api/v1/subscribers/import``).

Columns (header row, any order; only ``account`` is required): ``account``, ``name``,
``pppoe_login``, ``pppoe_password``, ``vlan``, ``plan``, ``address``, ``serial_number``,
``bind_by`` (``serial`` | ``pppoe_login``) and, per VoIP line N (1-8), ``voipN_number``,
``voipN_username``, ``voipN_password``. Every row is checked before anything is written; a bad
row is reported with its line number and reason and skipped, the good rows are written (none with
``dry_run``). A password cell is never echoed in the report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.subscribers import MAX_VOIP_LINES, ImportReport, Subscriber
from tasks.store.subscribers import SubscriberRepository

MAX_ROWS = 100_000
KNOWN = {"account", "name", "pppoe_login", "pppoe_password", "vlan", "plan", "address", "serial_number", "bind_by"}
VOIP_FIELDS = ("number", "username", "password")


@dataclass(frozen=True)
class Row:
    line: int
    record: Subscriber | None
    problem: str | None = None
    account: str | None = None


def _voip(cells: dict[str, str]) -> list[dict[str, str]]:
    lines = []
    for index in range(1, MAX_VOIP_LINES + 1):
        line = {field: cells.get(f"voip{index}_{field}", "") for field in VOIP_FIELDS}
        if any(line.values()):
            lines.append(line)
    return lines


def _problem(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'row'}: {error['msg']}" for error in exc.errors())


def parse_csv(text: str) -> tuple[list[Row], list[str]]:
    """Rows checked one by one, and the header's unknown columns (refused: a typo would lose data)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    voip_columns = {f"voip{i}_{f}" for i in range(1, MAX_VOIP_LINES + 1) for f in VOIP_FIELDS}
    unknown = [name for name in header if name not in KNOWN | voip_columns]
    rows: list[Row] = []
    for number, raw in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            rows.append(Row(number, None, f"more than {MAX_ROWS} rows; split the file"))
            break
        cells = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            rows.append(Row(number, None, "more cells than header columns", cells.get("account") or None))
            continue
        if not any(cells.values()):
            continue  # a blank line
        fields: dict[str, Any] = {k: v for k, v in cells.items() if k in KNOWN and v != ""}
        fields["voip"] = _voip(cells)
        try:
            rows.append(Row(number, Subscriber.model_validate(fields), account=fields.get("account")))
        except ValidationError as exc:
            rows.append(Row(number, None, _problem(exc), cells.get("account") or None))
    return rows, unknown


async def import_csv(
    text: str, repository: SubscriberRepository, by: str, clock: Callable[[], datetime], dry_run: bool
) -> ImportReport:
    rows, unknown = parse_csv(text)
    if unknown:
        bad = [{"line": 1, "account": None, "problem": f"unknown column(s): {', '.join(unknown)}"}]
        return ImportReport(dry_run=dry_run, rows=len(rows), created=0, updated=0, unchanged=0, bad_rows=bad)
    seen: dict[str, int] = {}
    created = updated = unchanged = 0
    bad_rows: list[dict[str, Any]] = []
    for row in rows:
        if row.record is None:
            bad_rows.append({"line": row.line, "account": row.account, "problem": row.problem})
            continue
        account = row.record.account
        if account in seen:
            bad_rows.append(
                {"line": row.line, "account": account, "problem": f"account {account} is also on line {seen[account]}"}
            )
            continue
        seen[account] = row.line
        record = row.record.model_dump(mode="json", exclude={"account"})
        stored = await repository.get(account)
        if stored is not None and repository.same_record(stored, record):
            unchanged += 1
            continue
        if stored is None:
            created += 1
        else:
            updated += 1
        if not dry_run:
            await repository.put(account, record, by, clock())
    return ImportReport(
        dry_run=dry_run, rows=len(rows), created=created, updated=updated, unchanged=unchanged, bad_rows=bad_rows
    )
