"""`diagnostic` tasks against `acs sim` devices (TR-098 and TR-181), through the operator API.

The device sets DiagnosticsState, runs the test after the session, informs
``8 DIAGNOSTICS COMPLETE``, and the task reads the results in that new session.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import AcsServeFactory
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import AcsProcess, acs_command, free_port, start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]


def _token(acs: AcsProcess) -> str:
    result = subprocess.run(
        [*acs_command(), "token", "create", "--name", "diag", "--role", "operator"],
        env=acs.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return next(word for word in result.stdout.split() if word.startswith("acs_"))


@pytest.mark.parametrize("profile", ["zte-f660", "tr181-gateway"])
async def test_ping_and_traceroute_run_on_the_device(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path, request: pytest.FixtureRequest, profile: str
) -> None:
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name)
    sim = start_sim(
        args=[
            "--url",
            acs.cwmp_url,
            "--devices",
            "1",
            "--profile",
            profile,
            "--seed",
            "3",
            "--cr-listen",
            f"127.0.0.1:{free_port()}",
            "--summary-every",
            "0",
        ],
        log_path=tmp_path / "sim.log",
    )
    devices = mongo_client[name].devices
    token = await asyncio.to_thread(_token, acs)
    try:

        async def provisioned() -> MongoDocument | None:
            return await devices.find_one({"connection_request_username": {"$exists": True}})

        device = await wait_until(provisioned, timeout=60, message=sim.describe("device not provisioned"))
        url = f"{acs.api_url}/api/v1/devices/{quote(device['_id'], safe='')}/tasks"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for body in (
                {"kind": "diagnostic", "test": "ping", "host": "192.0.2.1", "repetitions": 4},
                {"kind": "diagnostic", "test": "traceroute", "host": "192.0.2.1"},
            ):
                params = {"connection_request": "true", "wait": "30"}
                async with http.post(url, json=body, params=params) as response:
                    task = await response.json()
                assert response.status == 201, task
                assert task["status"] == "done", task
                values = {value["name"]: value["value"] for value in task["result"]["values"]}
                assert task["result"]["diagnostics_state"] in ("Complete", "Completed")
                if body["test"] == "ping":
                    assert values["SuccessCount"] == "4"
                    assert int(values["AverageResponseTime"]) > 0
                else:
                    assert any(".Host" in key or "HopHost" in key for key in values), values
    finally:
        await sim.stop(grace=20, expect_returncode=0)
