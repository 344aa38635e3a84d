"""Hostile CPE input on the CWMP listener (issue 11, items 8 and 10): refused with a 4xx, nothing
stored, and one log line per record whatever the device put in its text."""

from __future__ import annotations

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from cwmp import serialize
from tests.conftest import AcsServeFactory
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, leases_freed, unique_db_name
from tests.support.processes import wait_until

Client = AsyncMongoClient[MongoDocument]


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    return unique_db_name(request.node.name)


async def test_file_paths_with_a_nul_are_a_client_error(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve()
    async with aiohttp.ClientSession() as http:
        for path in ("/files/%00", "/files/a%00b", "/uploads/%00/token", "/uploads/0123/%00"):
            method = http.get if path.startswith("/files") else http.put
            async with method(acs.cwmp_url.rstrip("/") + path) as reply:
                assert 400 <= reply.status < 500, (path, reply.status, await reply.text())


@pytest.mark.parametrize(
    ("oui", "product_class", "serial", "why"),
    [
        ("00E0FC", "HG8245H", "S" * 1024 * 1024, "SerialNumber is 1048576 characters"),
        ("00E0FC", "HG8245H", "S" * 65, "SerialNumber is 65 characters"),
        ("00E0FC1", "HG8245H", "SERIAL1", "OUI is 7 characters"),
        ("00E0FC", "P" * 65, "SERIAL1", "ProductClass is 65 characters"),
        ("", "HG8245H", "SERIAL1", "OUI is empty"),
        ("00E0FC", "HG8245H", "", "SerialNumber is empty"),
    ],
)
async def test_device_identity_beyond_tr069_limits_is_refused_and_nothing_stored(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str, oui: str, product_class: str, serial: str, why: str
) -> None:
    acs = await acs_serve(database=db_name)
    cpe = ScriptedCpe(acs.cwmp_url, oui=oui, product_class=product_class, serial=serial)
    async with aiohttp.ClientSession() as http:
        async with http.post(acs.cwmp_url, data=serialize(cpe.inform(["0 BOOTSTRAP", "1 BOOT"]))) as reply:
            assert reply.status == 400
            assert why in await reply.text()
    db = mongo_client[db_name]
    for collection in ("devices", "parameters", "sessions", "session_locks", "tasks"):
        assert await db[collection].count_documents({}) == 0, collection


async def test_identity_at_the_limits_is_accepted(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve()
    cpe = ScriptedCpe(acs.cwmp_url, oui="00E0FC", product_class="P" * 64, serial="S" * 64)
    exchange = await cpe.run_session(["0 BOOTSTRAP"])
    assert exchange.ended_with == 204


async def test_a_newline_in_an_event_code_cannot_forge_a_log_line(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve()
    forged = "WARNING acs.api: admin token created for mallory"
    cpe = ScriptedCpe(acs.cwmp_url, serial="FORGER-1")
    exchange = await cpe.run_session(["1 BOOT\n" + forged, "2 PERIODIC\u2028\x85" + forged])
    assert exchange.ended_with == 204

    async def session_logged() -> bool:
        return "FORGER-1" in acs.log_path.read_text(errors="replace")

    await wait_until(session_logged, timeout=10, message="the session logged")
    lines = acs.log_path.read_text(errors="replace").splitlines()
    assert not any(line.startswith(forged) for line in lines)
    logged = [line for line in lines if "FORGER-1" in line and "1 BOOT" in line]
    assert logged and "1 BOOT\\n" + forged in logged[0]
    assert "2 PERIODIC\\u2028\\x85" + forged in logged[0]  # Unicode line breaks too


async def test_a_device_whose_id_collides_cannot_take_over_the_first_record(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name)
    first = ScriptedCpe(acs.cwmp_url, product_class="A-B", serial="C9")
    second = ScriptedCpe(acs.cwmp_url, product_class="A", serial="B-C9")
    assert first.device_id == second.device_id  # "-" is unreserved: the SPEC's id format is ambiguous
    assert (await first.run_session(["0 BOOTSTRAP"])).ended_with == 204
    db = mongo_client[db_name]
    before = await db.devices.find_one({"_id": first.device_id})
    assert before is not None

    exchange = await second.run_session(["0 BOOTSTRAP", "1 BOOT"])

    assert exchange.ended_with == 409
    after = await db.devices.find_one({"_id": first.device_id})
    assert after == before
    assert await db.sessions.count_documents({}) == 1
    await wait_until(lambda: leases_freed(db), message="every lease freed")  # a clean end frees it after its 204
    assert "collides with a stored device" in acs.log_path.read_text(errors="replace")
    assert (await first.run_session(["2 PERIODIC"])).ended_with == 204  # the first device is undisturbed
