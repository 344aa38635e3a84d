"""Console accounts: argon2id passwords, login sessions, CSRF tokens and lock-out.

- Passwords: argon2id (memory-hard), verified in a worker thread so a login does not stall the
  event loop; a hash made with other parameters still verifies (they are stored in the hash).
  An unknown username costs the same hash as a wrong password (no user probing).
- Sessions: 256-bit cookie value; only its SHA-256 is stored, with the user's name, an absolute
  lifetime and an idle timeout. The account is re-read per request, so disabling a user or
  changing a role takes effect at once.
- CSRF: one synchronizer token per session, compared in constant time on every state-changing
  request (form field ``csrf`` or header ``X-CSRF-Token``).
- Lock-out: ``MAX_FAILURES`` failed passwords lock the account for ``LOCK_SECONDS``; a successful
  login starts a new count. Every attempt is counted before its password is checked, by an
  insert of its own (``tasks.store.login_attempts``), so a parallel burst checks at most
  ``MAX_FAILURES`` passwords; a correct password that raced a lock is refused too.
- Throttle: at most ``ADDRESS_ATTEMPTS`` attempts a minute from one address (any usernames,
  known or not), counted the same way; more are refused as ``throttled`` before any hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from bson import ObjectId

from schemas.api import Role
from tasks.store.db import Document
from tasks.store.login_attempts import LoginAttemptRepository
from tasks.store.users import ConsoleSessionRepository, UserRepository

MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
ADDRESS_ATTEMPTS = 20  # per address and minute
SESSION_LIFETIME = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(hours=2)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$"
MIN_PASSWORD = 10
LANGUAGES = ("en", "ru")
# OWASP's argon2id floor (19 MiB, 2 passes, 1 lane): ~0.1 s per login on a small server, where
# argon2-cffi's default (64 MiB, 3 passes, 4 lanes) costs 0.7 s on two cores.


def password_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)



class LoginRefused(Exception):
    def __init__(self, reason: str) -> None:  # "invalid", "locked" or "throttled"
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConsoleUser:
    username: str
    role: Role
    language: str
    time_zone: str
    csrf: str
    session_hash: str

    @property
    def who(self) -> str:
        """How tasks and audit entries name this user (API tokens appear by their name)."""
        return f"user:{self.username}"

    def can(self, needed: Role) -> bool:
        return self.role.allows(needed)


def _new_epoch() -> str:
    return secrets.token_hex(8)


def _locked(user: Document, now: datetime) -> bool:
    locked_until = user.get("locked_until")
    return locked_until is not None and locked_until > now


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_ok(expected: str, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(expected.encode(), (offered or "").encode())


class Accounts:
    def __init__(
        self,
        users: UserRepository,
        sessions: ConsoleSessionRepository,
        clock: Callable[[], datetime],
        hasher: PasswordHasher | None = None,
        attempts: LoginAttemptRepository | None = None,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.attempts = attempts or LoginAttemptRepository(users.database)
        self.clock = clock
        self.hasher = hasher or password_hasher()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    async def create(self, username: str, password: str, role: Role, created_by: str) -> Document:
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        user: Document = {
            "_id": str(ObjectId()),
            "username": username,
            "password_hash": password_hash,
            "role": role.value,
            "disabled": False,
            "language": "en",
            "time_zone": "UTC",
            "login_epoch": _new_epoch(),
            "locked_until": None,
            "created_at": self.clock(),
            "created_by": created_by,
            "last_login_at": None,
        }
        await self.users.insert(user)
        user.pop("password_hash")
        return user

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        changed = await self.users.set_fields(username, {"disabled": disabled})
        if changed and disabled:
            await self.sessions.delete_for_user(username)
        return changed

    async def set_role(self, username: str, role: Role) -> bool:
        """Takes effect on the user's next request (the account is re-read per request)."""
        return await self.users.set_fields(username, {"role": role.value})

    async def reset_password(self, username: str, password: str) -> bool:
        """A new password: the lock and the failure count end, and every session of the user ends."""
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        changed = await self.users.set_fields(username, {"password_hash": password_hash, "locked_until": None,
                                                         "login_epoch": _new_epoch()})
        if changed:
            await self.sessions.delete_for_user(username)
        return changed

    async def end_sessions(self, username: str) -> int:
        return await self.sessions.delete_for_user(username)

    async def login(self, username: str, password: str, remote: str | None) -> str:
        """A new session's cookie value; LoginRefused("invalid" | "locked" | "throttled") otherwise."""
        now = self.clock()
        if remote is not None:
            minute = int(now.timestamp() // 60)
            if await self.attempts.record(f"address:{remote}:{minute}", now, ADDRESS_ATTEMPTS) > ADDRESS_ATTEMPTS:
                raise LoginRefused("throttled")
        user = await self.users.by_name(username, with_hash=True)
        if user is None or user.get("disabled"):
            await asyncio.to_thread(self._verify, self._dummy_hash, password)
            raise LoginRefused("invalid")
        if _locked(user, now):
            raise LoginRefused("locked")
        # Counted before the hash is checked: the attempt beyond the limit is never checked.
        rank = await self.attempts.record(f"user:{username}:{user.get('login_epoch') or ''}", now, MAX_FAILURES)
        if rank > MAX_FAILURES:
            await self._lock(username, now)
            raise LoginRefused("locked")
        if not await asyncio.to_thread(self._verify, user["password_hash"], password):
            if rank == MAX_FAILURES:
                await self._lock(username, now)
                raise LoginRefused("locked")
            raise LoginRefused("invalid")
        await self.users.set_fields(username, {"login_epoch": _new_epoch(), "last_login_at": now})
        # A lock written by failures racing this attempt stands: the burst was an attack.
        current = await self.users.by_name(username)
        if current is None or current.get("disabled") or _locked(current, now):
            raise LoginRefused("locked")
        token = secrets.token_urlsafe(32)
        await self.sessions.insert({
            "_id": session_hash(token),
            "username": username,
            "csrf": secrets.token_urlsafe(32),
            "created_at": now,
            "last_seen": now,
            "expires_at": now + SESSION_LIFETIME,
            "remote": remote,
        })
        return token

    async def _lock(self, username: str, now: datetime) -> None:
        # A new epoch with the lock: after it ends, attempts are counted from zero again.
        until = now + timedelta(seconds=LOCK_SECONDS)
        await self.users.set_fields(username, {"locked_until": until, "login_epoch": _new_epoch()})

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def logout(self, token: str) -> None:
        await self.sessions.delete(session_hash(token))

    async def user_for(self, token: str | None) -> ConsoleUser | None:
        if not token:
            return None
        hashed = session_hash(token)
        session = await self.sessions.get(hashed)
        now = self.clock()
        if session is None or session["expires_at"] <= now or session["last_seen"] + IDLE_TIMEOUT <= now:
            return None
        user = await self.users.by_name(session["username"])
        if user is None or user.get("disabled"):
            return None
        if now - session["last_seen"] >= TOUCH_EVERY:
            await self.sessions.touch(hashed, {"last_seen": now})
        return ConsoleUser(user["username"], Role(user["role"]), user.get("language") or "en",
                           user.get("time_zone") or "UTC", session["csrf"], hashed)
