"""The database goes away under a running `acs serve` and comes back: clear 503s, nothing lost."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from pymongo import AsyncMongoClient

from acs.localdb import LocalMongo
from cwmp import serialize
from tests.conftest import AcsServeFactory
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument
from tests.support.processes import free_port, wait_until


async def test_database_restart_gives_503_then_service_resumes(acs_serve: AcsServeFactory, tmp_path: Path) -> None:
    port = free_port()
    database = await LocalMongo.start(tmp_path / "db", port)
    try:
        acs = await acs_serve(env={"ACS_MONGODB_URI": database.uri + "acs"})
        cpe = ScriptedCpe(acs.cwmp_url, serial="RESTART")
        assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204

        await database.stop()
        async with aiohttp.ClientSession() as http:
            async with http.post(acs.cwmp_url, data=serialize(cpe.inform(["2 PERIODIC"]))) as reply:
                assert reply.status == 503
                assert reply.headers["Retry-After"]
                assert "database unavailable" in await reply.text()
            async with http.get(acs.api_url + "/readyz") as reply:
                assert reply.status == 503
            async with http.get(acs.api_url + "/healthz") as reply:
                assert reply.status == 200  # the process itself is alive

        database = await LocalMongo.start(tmp_path / "db", port)

        async def informs_again() -> bool:
            return (await cpe.run_session(["2 PERIODIC"])).ended_with == 204

        await wait_until(informs_again, timeout=60, message=acs.describe("no session after the restart"))
        client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(database.uri)
        try:
            device = await client.acs.devices.find_one({"_id": cpe.device_id})
            assert device is not None
            assert device["first_inform"] < device["last_inform"]  # the record from before the outage is intact
        finally:
            await client.close()
    finally:
        await database.stop()
