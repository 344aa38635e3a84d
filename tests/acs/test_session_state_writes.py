"""A session's bookkeeping as inserts and deletes only (issue 10): its state as the Inform left it
rides in the device's lease, each save before an RPC is a step insert, the history record is
inserted once at the end, and the lease and steps are deleted. Real FerretDB, real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from schemas.tasks import GetParameterValuesTask
from tasks.records import SessionRecord
from tasks.session_ids import device_of, new_session_id
from tasks.store import live_blob
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name


@dataclass
class Acs:
    services: Services
    database: Database
    url: str
    now: list[datetime]  # the services' clock: real time unless a test moves it on


@pytest.fixture
async def acs(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[Acs]:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("sessionstate")
    database = Database(client=client, db=client[name])
    skew = [timedelta(0)]
    now = [datetime.now(UTC)]

    def clock() -> datetime:
        now[0] = datetime.now(UTC) + skew[0]
        return now[0]

    services = build_services(Settings(data_dir=tmp_path), database, clock)
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield Acs(services, database, str(server.make_url("/")), now)
        skew.clear()
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


def test_a_session_id_names_its_device() -> None:
    for device_id in ("00259E-HG8245H-48575443A1B2C3D4", "OUI-Product%20Class-SN.1", "é"):
        session_id = new_session_id(device_id)
        assert device_of(session_id) == device_id
        assert "." not in session_id  # the cookie's sequence separator
    assert device_of("short") is None
    assert device_of("x" * 24 + "!!!") is None


async def _dropped_after_a_read(acs: Acs, serial: str) -> tuple[ScriptedCpe, str]:
    """A session that sent a queued read and lost its CPE (no answer); its task id."""
    cpe = ScriptedCpe(acs.url, serial=serial)
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    read = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    task, _ = await acs.services.queue.create(cpe.device_id, read, "test")
    exchange = await cpe.run_session(["2 PERIODIC"], stop_after_requests=0)
    assert [message.kind for message in exchange.received] == ["GetParameterValues"]
    return cpe, str(task["_id"])


async def test_a_running_session_is_in_its_lease_and_steps_and_shown_as_in_progress(acs: Acs) -> None:
    cpe, _ = await _dropped_after_a_read(acs, "LIVE01")
    db = acs.database.db
    lease = await db.session_locks.find_one({"_id": cpe.device_id})
    assert lease is not None and live_blob.unpack(lease["session"])["events"] == ["2 PERIODIC"]
    session_id = lease["session_id"]
    steps = [step async for step in db.session_steps.find({"session_id": session_id})]
    assert [step["seq"] for step in steps] == [1] and steps[0]["device_id"] == cpe.device_id
    # One value each, not a nested document: FerretDB decodes every lease (and step) at each merged
    # release, value by value (tasks/store/live_blob.py).
    assert isinstance(lease["session"], bytes) and isinstance(steps[0]["session"], bytes)
    assert live_blob.unpack(steps[0]["session"])["device_id"] == cpe.device_id
    assert await db.sessions.find_one({"_id": session_id}) is None, "history is written at the end only"

    shown = await acs.services.repositories.sessions.last_for_device(cpe.device_id)
    assert shown is not None and shown["_id"] == session_id and shown.get("live") is True
    assert "snapshot" not in shown and shown.get("outcome") is None
    assert [rpc["name"] for rpc in shown.get("rpcs", [])][-1] == "GetParameterValues"
    assert (await acs.services.repositories.sessions.get(session_id) or {}).get("_id") == session_id


async def test_the_reaper_writes_a_dropped_sessions_history_from_its_lease_and_latest_step(acs: Acs) -> None:
    cpe, task_id = await _dropped_after_a_read(acs, "DROP01")
    db = acs.database.db
    lease = await db.session_locks.find_one({"_id": cpe.device_id})
    assert lease is not None
    assert await acs.services.cwmp.reap_stale() == 0  # not idle yet

    skew = acs.services.cwmp.timeouts.idle + timedelta(seconds=1)
    real_clock = acs.services.cwmp.clock
    acs.services.cwmp.clock = lambda: real_clock() + skew
    assert await acs.services.cwmp.reap_stale() == 1

    history = await db.sessions.find_one({"_id": lease["session_id"]})
    assert history is not None and history["outcome"] == "timeout" and history["live"] is False
    assert [rpc["name"] for rpc in history["rpcs"]] == [
        "Inform", "InformResponse", "empty", "GetParameterValues"
    ]
    assert "snapshot" not in history and history["rpc_count"] == 4
    assert await db.session_locks.count_documents({}) == 0
    # Its steps (the end step among them) stay until no request can still be in flight on it.
    assert await db.session_steps.count_documents({"session_id": lease["session_id"]}) == 2
    later = skew + 2 * acs.services.cwmp.timeouts.idle + timedelta(seconds=10)
    acs.services.cwmp.clock = lambda: real_clock() + later
    assert await acs.services.cwmp.reap_stale() == 0
    assert await db.session_steps.count_documents({}) == 0
    task = await db.tasks.find_one({"_id": task_id})
    assert task is not None and task["status"] == "queued", "a read sent but unanswered goes back to the queue"
    # The device starts again at once, and the read goes out.
    acs.services.cwmp.clock = real_clock
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204 and [message.kind for message in exchange.received] == ["GetParameterValues"]


async def test_a_request_that_loaded_the_session_before_it_was_ended_cannot_save(acs: Acs) -> None:
    cpe, _ = await _dropped_after_a_read(acs, "SEAL01")
    sessions = acs.services.repositories.sessions
    lease = await acs.database.db.session_locks.find_one({"_id": cpe.device_id})
    assert lease is not None
    loaded = await sessions.load_live(lease["session_id"])
    assert loaded is not None and loaded["seq"] == 1
    # A newer Inform of the device ends the session while a request holds its state.
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
    assert not await sessions.save({**loaded, "seq": 2}, 2), "the end step took its next sequence"
    assert await sessions.load_live(lease["session_id"]) is None
    history = await acs.database.db.sessions.find_one({"_id": lease["session_id"]})
    assert history is not None and history["outcome"] == "superseded"


async def test_a_session_ending_while_the_history_is_read_is_listed_running_or_ended(acs: Acs) -> None:
    # CI once listed a device's history without the session that had just run its task: the
    # history was read before that session's end inserted it, and the lease after, when its live
    # state no longer read as running (the lease is freed after the 204). Here the session ends
    # right after its lease is read, as a clean end does: history inserted, lease still there.
    cpe, _ = await _dropped_after_a_read(acs, "RACE01")
    sessions = acs.services.repositories.sessions
    lease = await acs.database.db.session_locks.find_one({"_id": cpe.device_id})
    assert lease is not None
    session_id = lease["session_id"]
    running = await sessions.load_live(session_id)
    assert running is not None

    async def end() -> None:
        assert await sessions.record_end({**running, "outcome": "ok", "ended_at": datetime.now(UTC)})

    read_lease = sessions._locks.lease

    async def lease_then_end(device_id: str) -> MongoDocument | None:
        found = await read_lease(device_id)
        await end()
        return found

    sessions._locks.lease = lease_then_end  # type: ignore[method-assign]
    try:
        listed = await sessions.for_device(cpe.device_id)
    finally:
        sessions._locks.lease = read_lease  # type: ignore[method-assign]
    assert session_id in [record["_id"] for record in listed]
    assert [record["_id"] for record in listed].count(session_id) == 1

    # The same for one session read by its id: it ends between the history read and the live one.
    cpe2, _ = await _dropped_after_a_read(acs, "RACE02")
    lease2 = await acs.database.db.session_locks.find_one({"_id": cpe2.device_id})
    assert lease2 is not None
    running = await sessions.load_live(lease2["session_id"])
    assert running is not None
    load_live = sessions.load_live

    async def end_then_load(session_id: str) -> SessionRecord | None:
        await end()
        return await load_live(session_id)

    sessions.load_live = end_then_load  # type: ignore[method-assign]
    try:
        found = await sessions.get(lease2["session_id"])
    finally:
        sessions.load_live = load_live  # type: ignore[method-assign]
    assert found is not None and found["_id"] == lease2["session_id"] and found.get("outcome") == "ok"


async def test_a_lease_stored_with_its_state_as_a_nested_document_is_still_continued(acs: Acs) -> None:
    # A lease written by the version before the packed state (a rolling upgrade) is read as it is.
    device_id = "00259E-HG8245H-OLDLEASE01"
    session_id = new_session_id(device_id)
    now = datetime.now(UTC)
    state = {"_id": session_id, "device_id": device_id, "started_at": now, "expires_at": now + timedelta(seconds=30),
             "events": ["2 PERIODIC"], "rpcs": []}
    await acs.database.db.session_locks.insert_one({"_id": device_id, "session_id": session_id,
                                                    "until": now + timedelta(seconds=60), "taken_at": now,
                                                    "expires_at": state["expires_at"], "session": state})
    live = await acs.services.repositories.sessions.load_live(session_id)
    assert live is not None and live["events"] == ["2 PERIODIC"] and live["seq"] == 0 and live["live"] is True
