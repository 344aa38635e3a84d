"""Bearer tokens: creation, lookup (briefly cached) and role checks.

A token is ``acs_`` + 32 random bytes (base64url). Only its SHA-256 is stored: with 256 bits of
entropy there is nothing to brute-force, so a slow password hash would only slow every request.

Lookups are cached in-process for ``CACHE_SECONDS`` (hits and misses), so a token revoked
through the API of this process stops working at once, and one revoked elsewhere (the CLI,
another worker or host) within ``CACHE_SECONDS``. A token may carry an expiry
(``expires_at``), checked on every request, cached or not.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId

from acs.api.errors import ApiError
from schemas.api import Role
from tasks.store.db import Document
from tasks.store.tokens import TokenRepository

TOKEN_PREFIX = "acs_"  # noqa: S105 - a marker for secret scanners, not a secret
CACHE_SECONDS = 5.0
CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role
    expires_at: datetime | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenAuthority:
    def __init__(
        self,
        tokens: TokenRepository,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.tokens = tokens
        self.clock = clock
        self.monotonic = monotonic
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def create(
        self, name: str, role: Role, created_by: str, expires_at: datetime | None = None
    ) -> tuple[str, Document]:
        """Store a new token (valid until ``expires_at``, or until revoked when None); returns the
        token text (shown once) and its stored record."""
        token = new_token()
        if expires_at is not None:  # as stored (BSON keeps milliseconds), so the answer shows what holds
            expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)
        record: Document = {
            "_id": str(ObjectId()),
            "name": name,
            "role": role.value,
            "hash": hash_token(token),
            "created_at": self.clock(),
            "created_by": created_by,
            "last_used_at": None,
            "expires_at": expires_at,
        }
        await self.tokens.insert(record)
        record.pop("hash")
        return token, record

    async def revoke(self, token_id: str) -> Document | None:
        revoked = await self.tokens.delete(token_id)
        self._cache = {key: value for key, value in self._cache.items()
                       if value[1] is None or value[1].token_id != token_id}
        return revoked

    async def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
        principal = await self._lookup(hash_token(token.strip()))
        if principal is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token")
        if principal.expires_at is not None and principal.expires_at <= self.clock():
            raise ApiError(401, "unauthorized", f"token {principal.name!r} expired; create a new one")
        return principal

    async def authorize(self, authorization: str | None, needed: Role) -> Principal:
        principal = await self.authenticate(authorization)
        if not principal.role.allows(needed):
            raise ApiError(403, "forbidden", f"this needs the {needed.value} role; token {principal.name!r} "
                                             f"is {principal.role.value}")
        return principal

    async def _lookup(self, token_hash: str) -> Principal | None:
        now = self.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self.tokens.by_hash(token_hash)
        principal = None if record is None else Principal(
            record["_id"], record["name"], Role(record["role"]), record.get("expires_at")
        )
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()  # bounded: a flood of bad tokens cannot grow it without limit
        self._cache[token_hash] = (now + self.cache_seconds, principal)
        if principal is not None:
            await self.tokens.touch(principal.token_id, {"last_used_at": self.clock()})
        return principal
