"""The profiles every session reads, kept in memory: a session costs no database read for them.

In ``acs serve`` the CWMP application refreshes them every ``ttl`` seconds in the background
(``keep_fresh``), so a saved profile reaches every process within ``ttl`` and no session waits for
the read; without that loop (the CLI, tests) they are re-read lazily once ``ttl`` has passed. A
profile saved in this process (``invalidate``) is re-read by the next session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from schemas.profiles import ProfileSpec
from tasks.profiles.layering import StoredProfile
from tasks.profiles.sealing import open_spec
from tasks.secretbox import SecretBox
from tasks.store.profiles import ProfileRepository


class ProfileCatalog:
    def __init__(
        self,
        repository: ProfileRepository,
        box: SecretBox,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.box = box
        self.ttl = ttl
        self.clock = clock
        self._profiles: list[StoredProfile] = []
        self._loaded_at: float | None = None
        self._background = False

    async def current(self) -> list[StoredProfile]:
        now = self.clock()
        expired = self._loaded_at is not None and now - self._loaded_at >= self.ttl
        if self._loaded_at is None or (expired and not self._background):
            await self.refresh()
        return self._profiles

    async def refresh(self) -> None:
        loaded_at = self.clock()
        self._profiles = await self.load()
        self._loaded_at = loaded_at

    async def keep_fresh(self) -> None:
        """Re-read the profiles every ``ttl`` seconds until cancelled (a failed read keeps the last)."""
        self._background = True
        try:
            while True:
                await asyncio.sleep(max(self.ttl, 0.5))
                with contextlib.suppress(PyMongoError):
                    await self.refresh()
        finally:
            self._background = False

    async def load(self) -> list[StoredProfile]:
        profiles = []
        for document in await self.repository.all():
            try:
                spec = ProfileSpec.model_validate(open_spec(document["spec"], self.box))
            except ValidationError:
                continue  # written by a newer version with fields this one does not know
            profiles.append(StoredProfile(document["_id"], int(document["version"]), spec))
        return profiles

    def invalidate(self) -> None:
        self._loaded_at = None
