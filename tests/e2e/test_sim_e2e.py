"""`acs sim` against `acs serve`, both as processes: every profile bootstraps and gets registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import AcsServeFactory
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]
DEVICES = 6


@pytest.mark.parametrize(
    ("profile", "version"), [("huawei-hg8245", "1.0"), ("zte-f660", "mix"), ("tr181-gateway", "1.4")]
)
async def test_small_fleet_of_each_profile_registers(
    acs_serve: AcsServeFactory,
    mongo_client: Client,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    profile: str,
    version: str,
) -> None:
    db_name = unique_db_name(request.node.name)
    acs = await acs_serve(database=db_name)
    sim = start_sim(
        args=[
            "--url",
            acs.cwmp_url,
            "--devices",
            str(DEVICES),
            "--profile",
            profile,
            "--cwmp-version",
            version,
            "--ramp",
            "20",
            "--seed",
            "4",
            "--summary-every",
            "1",
            "--json",
        ],
        log_path=tmp_path / "sim.log",
    )
    try:
        devices = mongo_client[db_name].devices

        async def all_registered() -> bool:
            return await devices.count_documents({"last_events": "0 BOOTSTRAP"}) >= DEVICES

        await wait_until(all_registered, timeout=60, message=sim.describe("devices did not register"))
    finally:
        code = await sim.stop(grace=20, expect_returncode=0)
    assert code == 0
    log = sim.log_path.read_text()
    assert '"failed": 0' in log, sim.describe("sessions failed")
