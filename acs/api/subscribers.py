"""Subscriber records (issue 14 item 2): list and search (account number, PPPoE login, serial),
read, create or replace, delete, and the CSV import with a dry run and a report of bad rows.

Passwords are sealed at rest and shown as ``***`` to every role.
"""

from __future__ import annotations

from acs.api.errors import ApiError, found_or_404
from acs.api.pagination import cursor_text, decode_cursor, keyset_page
from acs.api.routes import Call, Reply, Route
from schemas.api import Page, Role
from schemas.subscribers import ImportQuery, ImportReport, Subscriber, SubscriberQuery, SubscriberView
from tasks.store.db import Document
from tasks.store.subscribers import SubscriberRepository
from tasks.subscriber_import import import_csv

SUBSCRIBER = "/api/v1/subscribers/{account}"
MAX_CSV_BYTES = 16 * 1024 * 1024 - 1024


def view(stored: Document) -> SubscriberView:
    shown = SubscriberRepository.shown(stored)
    return SubscriberView.model_validate(
        {
            "account": shown["account"],
            "name": shown.get("name", ""),
            "pppoe_login": shown.get("pppoe_login", ""),
            "pppoe_password": shown.get("pppoe_password", ""),
            "vlan": shown.get("vlan"),
            "voip": shown.get("voip") or [],
            "plan": shown.get("plan", ""),
            "address": shown.get("address", ""),
            "serial_number": shown.get("serial_number", ""),
            "bind_by": shown.get("bind_by", "serial"),
            "device_id": shown.get("device_id"),
            "updated_at": shown["updated_at"],
            "updated_by": shown["updated_by"],
        }
    )


async def list_subscribers(call: Call) -> Reply:
    query = call.query(SubscriberQuery)
    repository = call.api.services.repositories.subscribers
    if query.q is not None:
        found = await repository.search(query.q, query.limit)
        return Reply(Page[SubscriberView](items=[view(s) for s in found], next_cursor=None))
    after = cursor_text(decode_cursor(query.cursor), "after")
    found = await repository.page(after, query.limit + 1)
    return Reply(keyset_page(Page[SubscriberView], found, query.limit, view, lambda record: {"after": record["_id"]}))


async def get_subscriber(call: Call) -> Reply:
    account = call.path("account")
    stored = await call.api.services.repositories.subscribers.get(account)
    return Reply(view(found_or_404(stored, f"subscriber {account}")))


async def put_subscriber(call: Call) -> Reply:
    record = call.body(Subscriber)
    if record.account != call.path("account"):
        raise ApiError(
            422, "validation_error", f"the body names account {record.account}, the path {call.path('account')}"
        )
    services = call.api.services
    created = await services.repositories.subscribers.put(
        record.account, record.model_dump(mode="json", exclude={"account"}), call.who, services.clock()
    )
    call.audit["subscriber"] = record.account
    stored = await services.repositories.subscribers.get(record.account)
    assert stored is not None
    return Reply(view(stored), status=201 if created else 200)


async def delete_subscriber(call: Call) -> Reply:
    if not await call.api.services.repositories.subscribers.delete(call.path("account")):
        raise ApiError.not_found(f"subscriber {call.path('account')}")
    call.audit["subscriber"] = call.path("account")
    return Reply(None, status=204)


async def import_subscribers(call: Call) -> Reply:
    raw = await call.request.read()
    if len(raw) > MAX_CSV_BYTES:
        raise ApiError(413, "too_large", "the CSV file is too large; split it")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_text", f"the CSV file is not UTF-8: {exc}") from None
    if "\x00" in text:
        raise ApiError(400, "invalid_text", "the CSV file contains a NUL character")
    services = call.api.services
    dry_run = call.query(ImportQuery).dry_run
    report = await import_csv(text, services.repositories.subscribers, call.who, services.clock, dry_run)
    call.audit["import"] = {
        "dry_run": dry_run,
        "created": report.created,
        "updated": report.updated,
        "bad_rows": len(report.bad_rows),
    }
    return Reply(report)


ROUTES = [
    Route(
        "GET",
        "/api/v1/subscribers",
        list_subscribers,
        "Subscriber records; q: account, PPPoE login or serial",
        Role.VIEWER,
        "subscribers",
        query=SubscriberQuery,
        response=Page[SubscriberView],
        other_statuses=(400,),
    ),
    Route(
        "POST",
        "/api/v1/subscribers/import",
        import_subscribers,
        "Import subscriber records from CSV (dry_run: report only)",
        Role.ADMIN,
        "subscribers",
        query=ImportQuery,
        response=ImportReport,
        other_statuses=(400, 413),
        raw_body="text/csv",
    ),
    Route(
        "GET",
        SUBSCRIBER,
        get_subscriber,
        "One subscriber record (passwords as ***)",
        Role.VIEWER,
        "subscribers",
        response=SubscriberView,
        other_statuses=(404,),
    ),
    Route(
        "PUT",
        SUBSCRIBER,
        put_subscriber,
        "Create or replace a subscriber record",
        Role.OPERATOR,
        "subscribers",
        body=Subscriber,
        response=SubscriberView,
        status=200,
        other_statuses=(201,),
    ),
    Route(
        "DELETE",
        SUBSCRIBER,
        delete_subscriber,
        "Delete a subscriber record",
        Role.ADMIN,
        "subscribers",
        status=204,
        other_statuses=(404,),
    ),
]
