"""Admin endpoints: API tokens, the operator audit log, the effective settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from acs.api.errors import ApiError
from acs.api.pagination import cursor_text, cursor_time, decode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from schemas.api import HistoryEntry, Page, PageQuery, Role, SettingsView, TokenCreateBody, TokenCreated, TokenView
from tasks.history import audit_entry
from tasks.store.db import Document
from tasks.store.tokens import DuplicateTokenName


def token_view(record: Document) -> TokenView:
    return TokenView.model_validate({**record, "id": record["_id"]})


async def list_tokens(call: Call) -> Reply:
    query = call.query(PageQuery)
    after = cursor_text(decode_cursor(query.cursor), "after")
    found = await call.api.services.repositories.tokens.page(after, query.limit + 1)
    items = [token_view(record) for record in found[: query.limit]]
    return Reply(Page[TokenView](items=items, next_cursor=next_cursor(found, query.limit,
                                                                      lambda t: {"after": t["_id"]})))


async def create_token(call: Call) -> Reply:
    body = call.body(TokenCreateBody)
    try:
        expires_at = None if body.expires_in is None else call.api.services.clock() + timedelta(seconds=body.expires_in)
        token, record = await call.api.auth.create(body.name, body.role, f"api:{call.who}", expires_at)
    except DuplicateTokenName as exc:
        raise ApiError(409, "conflict", f"a token named {body.name!r} exists") from exc
    call.audit["created_token"] = {"id": record["_id"], "name": body.name, "role": body.role.value}
    return Reply(TokenCreated.model_validate({**record, "id": record["_id"], "token": token}), status=201)


async def revoke_token(call: Call) -> Reply:
    token_id = call.path("token_id")
    revoked = await call.api.auth.revoke(token_id)
    if revoked is None:
        raise ApiError.not_found(f"token {token_id}")
    call.audit["revoked_token"] = {"id": token_id, "name": revoked["name"]}
    return Reply(token_view(revoked))


async def audit_log(call: Call) -> Reply:
    query = call.query(PageQuery)
    position = decode_cursor(query.cursor)
    at = cursor_time(position)
    before: tuple[datetime, str] | None = (at, cursor_text(position, "id") or "") if at is not None else None
    found = await call.api.services.repositories.audit.page(before, query.limit + 1)
    items = [audit_entry(entry) for entry in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda e: {"at": e["at"], "id": e["_id"]})
    return Reply(Page[HistoryEntry](items=items, next_cursor=cursor))


def redacted_settings(call: Call) -> dict[str, Any]:
    settings = call.api.services.settings
    shown = settings.model_dump(mode="json")
    for name in ("secret_key", "cpe_password"):
        if shown.get(name) is not None:
            shown[name] = "***"
    return shown


async def get_settings(call: Call) -> Reply:
    return Reply(SettingsView(redacted_settings(call)))


ROUTES = [
    Route("GET", "/api/v1/tokens", list_tokens, "List API tokens (never the token text)", Role.ADMIN, "admin",
          query=PageQuery, response=Page[TokenView], other_statuses=(400,)),
    Route("POST", "/api/v1/tokens", create_token, "Create an API token (the text is shown once)", Role.ADMIN,
          "admin", body=TokenCreateBody, response=TokenCreated, status=201, other_statuses=(400, 409)),
    Route("DELETE", "/api/v1/tokens/{token_id}", revoke_token, "Revoke an API token", Role.ADMIN, "admin",
          response=TokenView, other_statuses=(404,)),
    Route("GET", "/api/v1/audit", audit_log, "Operator audit log, newest first", Role.ADMIN, "admin",
          query=PageQuery, response=Page[HistoryEntry], other_statuses=(400,)),
    Route("GET", "/api/v1/settings", get_settings, "Effective settings of this process (secrets hidden)",
          Role.ADMIN, "admin", response=SettingsView),
]
