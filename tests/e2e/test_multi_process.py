"""Two ``acs serve`` processes on one database: sessions move between them, tasks go out once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import TypeAdapter
from yarl import URL

from cwmp import Envelope, InformResponse, parse, serialize
from schemas.tasks import TaskRequest
from tasks.notify import TaskNotifier
from tasks.queue import TaskQueue
from tasks.secretbox import SecretBox
from tasks.store.db import connect
from tasks.store.tasks import TaskRepository
from tests.conftest import AcsServeFactory
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoServer, unique_db_name
from tests.support.processes import AcsProcess, acs_command, free_port, start_process, wait_until

REQUEST: TypeAdapter[Any] = TypeAdapter(TaskRequest)
SHARED_KEY = "q2bFZJ7dXy0c7n6Zz2oNqHk8b3cD1e0fJvH4wQm9R5s="  # a test-only Fernet key both servers share


async def test_a_session_continues_on_another_process(acs_serve: AcsServeFactory, mongo_server: MongoServer) -> None:
    name = unique_db_name("cross")
    # Health polls off: a read the poll job queues for the new device would ride on this session.
    env = {"ACS_SECRET_KEY": SHARED_KEY, "ACS_HEALTH_INTERVAL": "0"}
    first = await acs_serve(database=name, env=env)
    second = await acs_serve(database=name, env=env)
    cpe = ScriptedCpe(first.cwmp_url, serial="CROSS")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(first.cwmp_url, data=serialize(cpe.inform(["0 BOOTSTRAP"]))) as reply:
            assert isinstance(parse(await reply.read()).body, InformResponse)
        # A load balancer may send the next connection elsewhere: the cookie carries the session.
        cookie = {"acs_session": jar.filter_cookies(URL(first.cwmp_url))["acs_session"].value}
        async with aiohttp.ClientSession(cookies=cookie) as other, other.post(second.cwmp_url, data=b"") as reply:
            assert reply.status == 200
            request = parse(await reply.read())
            assert request.body.kind == "SetParameterValues"
        response = Envelope(id=request.id, body=cpe.answer(request.body))
        async with http.post(first.cwmp_url, data=serialize(response)) as reply:
            assert reply.status == 204
    client = connect(mongo_server.uri_for(name))
    try:
        session = await client.collection("sessions").find_one({"device_id": cpe.device_id})
        assert session is not None and session["outcome"] == "ok"
    finally:
        await client.close()


async def test_two_processes_never_dispatch_a_task_twice(acs_serve: AcsServeFactory, mongo_server: MongoServer) -> None:
    name = unique_db_name("twice")
    env = {"ACS_SECRET_KEY": SHARED_KEY, "ACS_SESSION_TIMEOUT": "3"}
    servers = [await acs_serve(database=name, env=env), await acs_serve(database=name, env=env)]
    database = connect(mongo_server.uri_for(name))
    queue = TaskQueue(
        TaskRepository(database), SecretBox(SHARED_KEY.encode()), TaskNotifier(), lambda: datetime.now(UTC), 3600
    )
    cpes = [ScriptedCpe(servers[n % 2].cwmp_url, serial=f"RACE-{n:02d}") for n in range(12)]
    try:
        await asyncio.gather(*(cpe.run_session(["0 BOOTSTRAP"]) for cpe in cpes))
        task_ids: set[str] = set()
        for cpe in cpes:
            for n in range(5):
                request = REQUEST.validate_python(
                    {
                        "kind": "get_parameter_values",
                        "names": [f"{cpe.root}DeviceInfo.UpTime"],
                        "idempotency_key": str(n),
                    }
                )
                task, _ = await queue.create(cpe.device_id, request, "test")
                task_ids.add(task["_id"])
        sent: list[str] = []
        rng = random.Random(7)

        async def storm(cpe: ScriptedCpe) -> None:
            # The device opens sessions on both processes at once; only one may hold its lease:
            # the later Inform ends the earlier session (a CPE sends one Inform per session, so it
            # gave that one up), whose next message is refused. A read that session had sent is
            # re-queued as for any broken session (a new attempt); what must never happen is one
            # attempt of a task sent twice.
            for _ in range(4):
                twins = [ScriptedCpe(server.cwmp_url, serial=cpe.serial) for server in servers]
                rng.shuffle(twins)
                for exchange in await asyncio.gather(*(twin.run_session(["2 PERIODIC"]) for twin in twins)):
                    sent.extend(exchange.request_ids)

        await asyncio.gather(*(storm(cpe) for cpe in cpes))
        # Provisioning tasks the ACS queued itself at BOOTSTRAP may ride along: count only ours.
        dispatched = {rid.partition(":")[0] for rid in sent} & task_ids
        missing = [t async for t in database.collection("tasks").find({"_id": {"$in": list(task_ids - dispatched)}})]
        assert dispatched == task_ids, f"every task was sent {missing}"
        tasks = [t async for t in database.collection("tasks").find({"created_by": "test"})]
        assert Counter(t["status"] for t in tasks) == Counter({"done": len(task_ids)})
        # Each RPC is recorded in ``task_sends`` under its unique (task, attempt, step) before it
        # leaves, so the device may get a step of a task once per attempt, never more. (The task's
        # ``attempts`` is no count of them on FerretDB 1.24, whose findAndModify and update read,
        # then write the whole document: the superseded session's answer, settling the task while
        # the new session claims it again, can write back the count it read. ARCHITECTURE.md,
        # "Where we differ".)
        records = [r async for r in database.collection("task_sends").find({"task_id": {"$in": list(task_ids)}})]
        recorded = Counter(f"{r['task_id']}:{r['_id'].rpartition('/')[2]}" for r in records)
        received = Counter(rid for rid in sent if rid.partition(":")[0] in task_ids)
        twice = {rid: n for rid, n in received.items() if n > recorded[rid]}
        assert not twice, f"a step of a task reached the device more often than it was recorded sent: {twice} {records}"
    finally:
        await database.client.drop_database(name)
        await database.close()


def _pids_logging(acs: AcsProcess, text: str) -> set[int]:
    """The pids (from the log's ``[pid]``) of ``acs serve``'s processes that logged ``text``."""
    return {int(line.split("[")[1].split("]")[0]) for line in acs.log_path.read_text().splitlines() if text in line}


async def test_workers_share_the_listening_sockets_and_stop_cleanly(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve(args=["--workers", "2"])
    # Ready (/healthz answers) means CWMP accepts: the jobs process, which serves the API and no
    # CWMP, starts only once the session workers serve. It once answered first, and a device's
    # first connection was refused.
    url = URL(acs.cwmp_url)
    _reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.close()
    await writer.wait_closed()
    cpes = [ScriptedCpe(acs.cwmp_url, serial=f"WORKER-{n}") for n in range(8)]
    exchanges = await asyncio.gather(
        *(cpe.run_session(["0 BOOTSTRAP"], new_connection_each_message=True) for cpe in cpes)
    )
    assert [exchange.ended_with for exchange in exchanges] == [204] * len(cpes)

    # A worker may still be starting when the other has served all eight (the kernel queues its
    # connections on the sockets that accept); what must hold is that both come up and stay up.
    await wait_until(lambda: len(_pids_logging(acs, "serving CWMP")) == 2, timeout=30,
                     message="two worker processes serve")
    await wait_until(lambda: len(_pids_logging(acs, "running the scheduled jobs")) == 1, timeout=30,
                     message="the jobs process starts")
    lines = acs.log_path.read_text().splitlines()
    serving = [n for n, line in enumerate(lines) if "serving CWMP" in line]
    (jobs,) = [n for n, line in enumerate(lines) if "running the scheduled jobs" in line]
    assert max(serving) < jobs, "the jobs process started before every session worker served"
    assert acs.running()
    assert await acs.stop(grace=30) == 0



async def test_with_workers_the_scheduled_jobs_run_in_their_own_process_not_in_a_session_worker(
    acs_serve: AcsServeFactory, mongo_server: MongoServer
) -> None:
    # A session worker that also ran the jobs served its sessions four times slower than the other
    # (docs/performance.md): with --workers N the jobs run in one more process, which serves no CWMP.
    name = unique_db_name("jobsproc")
    acs = await acs_serve(args=["--workers", "2"], database=name)
    database = connect(mongo_server.uri_for(name))
    try:
        await wait_until(lambda: len(_pids_logging(acs, "serving CWMP")) == 2, timeout=30,
                         message="two session workers serve CWMP")
        await wait_until(lambda: len(_pids_logging(acs, "running the scheduled jobs")) == 1, timeout=30,
                         message="the jobs process starts")
        (jobs_pid,) = _pids_logging(acs, "running the scheduled jobs")
        session_pids = _pids_logging(acs, "serving CWMP")
        assert jobs_pid not in session_pids

        async def runs_recorded() -> bool:  # reap_sessions runs every 5 s
            return await database.collection("job_runs").count_documents({}) >= 3

        await wait_until(runs_recorded, timeout=30, message="scheduled job runs recorded")
        holders = {int(run["holder"].split(":")[1]) async for run in database.collection("job_runs").find({})}
        assert holders == {jobs_pid}, f"job runs held by {holders}; session workers {session_pids}"
        # The session workers serve CWMP as before.
        exchange = await ScriptedCpe(acs.cwmp_url, serial="JOBS-PROC").run_session(["0 BOOTSTRAP"])
        assert exchange.ended_with == 204
        # The jobs process is one of acs serve's children: its death stops acs serve, as a worker's does.
        os.kill(jobs_pid, signal.SIGKILL)
        assert await acs.wait_exit(30) == 1, acs.describe("acs serve did not exit 1 when its jobs process died")
    finally:
        await database.client.drop_database(name)
        await database.close()


async def test_a_session_worker_that_cannot_listen_stops_acs_serve_before_the_jobs_start(
    mongo_server: MongoServer, tmp_path: Path
) -> None:
    # Another program holds the CWMP port (no SO_REUSEPORT): the session workers cannot bind it.
    # acs serve must say so and exit 1, not start the jobs process and answer /healthz without CWMP.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        cwmp_port = holder.getsockname()[1]
        acs = start_process(
            "acs serve",
            [*acs_command(), "serve", "--workers", "2"],
            env={"ACS_MONGODB_URI": mongo_server.uri_for(unique_db_name("nolisten")),
                 "ACS_CWMP_LISTEN": f"127.0.0.1:{cwmp_port}", "ACS_API_LISTEN": f"127.0.0.1:{free_port()}",
                 "ACS_DATA_DIR": str(tmp_path / "acs")},
            log_path=tmp_path / "acs-serve.log",
        )
        try:
            assert await acs.wait_exit(60) == 1, acs.describe("acs serve did not exit 1")
        finally:
            await acs.kill()
    log = acs.log_path.read_text()
    assert "Address already in use" in log and "exited unexpectedly" in log, acs.describe("no clear error")
    assert not _pids_logging(acs, "running the scheduled jobs"), "the jobs process started without CWMP"
