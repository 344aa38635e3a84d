"""Operator-API helpers for end-to-end tests: a token minted by the real `acs token create` CLI."""

from __future__ import annotations

import asyncio
import subprocess

from tests.support.processes import AcsProcess, acs_command


def _create_token(acs: AcsProcess, name: str, role: str) -> str:
    result = subprocess.run(
        [*acs_command(), "token", "create", "--name", name, "--role", role],
        env=acs.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return next(word for word in result.stdout.split() if word.startswith("acs_"))


async def create_token(acs: AcsProcess, name: str, role: str) -> str:
    """A new API token for the database and data directory of this `acs serve`."""
    return await asyncio.to_thread(_create_token, acs, name, role)
