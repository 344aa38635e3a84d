"""A GetParameterValues answer of 30,000 parameters is stored whole (issue 10: large messages linear).

FerretDB 1.24 applies a ``$set`` of N dotted paths in time quadratic in N: 3,000 parameters took
82 s and 30,000 never finished. Storing them must complete, and every value must be in the cache.
The time is measured by ``bench/big_message.py``, never asserted here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from schemas.tasks import GetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

PARAMETERS = 30_000
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
async def served(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[str, Services]]:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("big")
    settings = Settings(data_dir=tmp_path, max_body_bytes=16 * 1024 * 1024)
    services = build_services(settings, Database(client=client, db=client[name]), lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/")), services
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


async def test_a_read_of_30000_parameters_is_stored_whole(served: tuple[str, Services]) -> None:
    url, services = served
    cpe = ScriptedCpe(url, serial="BIG00001")
    for n in range(PARAMETERS):
        cpe.params[f"{cpe.root}X_Big.{n // 100 + 1}.Leaf.{n % 100 + 1}.Value"] = (f"v{n}", "xsd:string", True)
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204

    request = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root])
    task, _ = await services.queue.create(cpe.device_id, request, "test")
    exchange = await cpe.run_session(["2 PERIODIC"])

    assert exchange.ended_with == 204
    assert [m.kind for m in exchange.received] == ["GetParameterValues"]
    stored = await services.repositories.tasks.get(task["_id"])
    assert stored is not None and stored["status"] == "done", stored and stored.get("reason")
    cached = await services.repositories.parameters.get(cpe.device_id, cpe.root + "X_Big.")
    assert len(cached) == PARAMETERS
    assert cached[f"{cpe.root}X_Big.300.Leaf.100.Value"].value == f"v{PARAMETERS - 1}"
    assert cached[f"{cpe.root}X_Big.1.Leaf.1.Value"].type == "xsd:string"
    # What was cached before the read (the Inform's parameters) is still there.
    everything = await services.repositories.parameters.get(cpe.device_id)
    assert everything[cpe.root + "DeviceInfo.HardwareVersion"].value == "HW1"
    assert set(cpe.params) <= set(everything)
