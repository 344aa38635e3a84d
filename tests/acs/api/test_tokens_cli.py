"""``acs token create|list|revoke`` as an operator runs them, against the test database server."""

from __future__ import annotations

import asyncio
import subprocess

import aiohttp

from tests.conftest import AcsServeFactory
from tests.support.processes import acs_command, wait_until


def acs_token(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*acs_command(), "token", *args], env=env, capture_output=True, text=True, timeout=60)


async def test_create_list_revoke(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve()
    created = await asyncio.to_thread(acs_token, proc.env, "create", "--name", "ops-1", "--role", "operator")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("acs_") and len(token) > 40
    duplicate = await asyncio.to_thread(acs_token, proc.env, "create", "--name", "ops-1", "--role", "viewer")
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr
    listed = await asyncio.to_thread(acs_token, proc.env, "list")
    assert listed.returncode == 0 and "ops-1" in listed.stdout and "operator" in listed.stdout
    assert token not in listed.stdout
    url = f"{proc.api_url}/api/v1/devices"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(url) as response:
            assert response.status == 200
        revoked = await asyncio.to_thread(acs_token, proc.env, "revoke", "--name", "ops-1")
        assert revoked.returncode == 0, revoked.stderr

        async def refused() -> bool:
            async with http.get(url) as response:
                return response.status == 401

        # Another process revoked it: the server's token cache forgets it within a few seconds.
        await wait_until(refused, timeout=10, interval=0.2, message="revoked token refused")
    missing = await asyncio.to_thread(acs_token, proc.env, "revoke", "--id", "nope")
    assert missing.returncode == 1
