"""``acs token create|list|revoke`` as an operator runs them, against the test database server."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta

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


async def test_a_token_with_an_expiry_is_listed_and_stops_working(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve()
    created = await asyncio.to_thread(acs_token, proc.env, "create", "--name", "quarter", "--role", "viewer",
                                      "--expires", "90d")
    assert created.returncode == 0, created.stderr
    in_90_days = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")
    assert f"expires {in_90_days}" in created.stderr
    brief = await asyncio.to_thread(acs_token, proc.env, "create", "--name", "brief", "--role", "viewer",
                                    "--expires", "2s")
    assert brief.returncode == 0, brief.stderr
    listed = await asyncio.to_thread(acs_token, proc.env, "list")
    assert "EXPIRES" in listed.stdout
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()[1:]}
    assert in_90_days in rows["quarter"]
    wrong = await asyncio.to_thread(acs_token, proc.env, "create", "--name", "x", "--role", "viewer",
                                    "--expires", "90 days")
    assert wrong.returncode == 2 and "90d" in wrong.stderr
    url = f"{proc.api_url}/api/v1/devices"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {brief.stdout.strip()}"}) as http:

        async def refused_as_expired() -> bool:
            async with http.get(url) as response:
                return response.status == 401 and "expired" in (await response.json())["error"]["message"]

        await wait_until(refused_as_expired, timeout=30, interval=0.2, message="expired token refused")
    listed = await asyncio.to_thread(acs_token, proc.env, "list")
    assert "(expired)" in next(line for line in listed.stdout.splitlines() if " brief " in line)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {created.stdout.strip()}"}) as http:
        async with http.get(url) as response:
            assert response.status == 200
