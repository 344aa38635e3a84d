"""Job: secret parameter values cached in clear, before the cache sealed them, are sealed.

The ``parameters`` cache seals secrets as it stores them (``tasks/store/parameters.py``), but a
database written by an earlier version may still hold Wi-Fi keys, passwords and URLs with a
password in clear. One streamed pass in bounded batches, at start-up and then until it has reached
the end once for the current version of the secret rules (``tasks/secret_values.py``); afterwards
a run is one read.
"""

from __future__ import annotations

import time
from typing import Any

from tasks.store.jobs import JobRepository
from tasks.store.parameters import ParameterRepository

NAME = "seal_cached_secrets"
BATCH = 500
# A new version makes the job pass over every device again (bump it when the secret rules widen).
VERSION = 1


class SecretSealing:
    def __init__(self, parameters: ParameterRepository, jobs: JobRepository, budget_seconds: float) -> None:
        self.parameters = parameters
        self.jobs = jobs
        self.budget_seconds = budget_seconds  # stays under the job's lease

    async def run(self) -> dict[str, Any]:
        state = await self.jobs.state(NAME)
        if state is not None and state.get("version") == VERSION:
            return {"values_sealed": 0, "done_before": True}
        deadline = time.monotonic() + self.budget_seconds
        sealed, complete = await self.parameters.seal_clear_secrets(BATCH, lambda: time.monotonic() < deadline)
        if complete:
            await self.jobs.save_state(NAME, {"version": VERSION})
        return {"values_sealed": sealed, "complete": complete}
