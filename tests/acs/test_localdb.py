"""acs.localdb: the local MongoDB-compatible server (FerretDB over PostgreSQL here, mongod where installed).

These start real servers of their own (not the session's `mongo_server`), each on a temp dir that
PostgreSQL can reach when it runs as the `postgres` user (`db_dir`; pytest's `tmp_path` is private
to root when we are root).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

import acs.localdb as localdb
from acs import localpg
from acs.localdb import FERRETDB_GOGC, PID_FILE_NAME, LocalDatabaseError, LocalMongo, ferretdb_env, find_server_binary
from acs.localpg import LocalPostgres
from tests.support.mongo import MongoDocument, MongoServer, database_temp_dir
from tests.support.processes import wait_until

try:
    USES_FERRETDB = find_server_binary().kind == "ferretdb"
except LocalDatabaseError as exc:  # pragma: no cover - only on a machine without scripts/setup run
    pytest.skip(f"no local database server: {exc}", allow_module_level=True)

PG_BIN_DIR = localpg.find_pg_bin_dir()
needs_postgresql = pytest.mark.skipif(
    not USES_FERRETDB or PG_BIN_DIR is None,
    reason="mongod is on PATH (it wins) or PostgreSQL is not installed (run scripts/setup)",
)
needs_ferretdb = pytest.mark.skipif(not USES_FERRETDB, reason="mongod is on PATH: FerretDB is not used")
SQLITE = {**os.environ, localdb.BACKEND_ENV: "sqlite"}


@pytest.fixture
def db_dir() -> Iterator[Path]:
    with database_temp_dir("acs-test-localdb-") as path:
        yield path


def fake_server(tmp_path: Path, script: str, backend: str = "sqlite") -> dict[str, str]:
    """An env whose ACS_FERRETDB_BIN is a shell script standing in for the server."""
    binary = tmp_path / "fake-ferretdb"
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "ACS_FERRETDB_BIN": str(binary), localdb.BACKEND_ENV: backend}


async def stored_ids(uri: str, filter_: MongoDocument | None = None) -> list[str]:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(uri)
    try:
        return [doc["_id"] async for doc in client.acs.devices.find(filter_ or {}).sort("_id")]
    finally:
        await client.close()


async def store(uri: str, *docs: MongoDocument) -> None:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(uri)
    try:
        await client.acs.devices.insert_many(list(docs))
    finally:
        await client.close()


def cmdline(pid: int) -> str:
    return localpg.process_cmdline(pid) or ""


async def test_start_store_stop_and_restart_keeps_data(db_dir: Path) -> None:
    server = await LocalMongo.start(db_dir)
    assert server.uri == f"mongodb://127.0.0.1:{server.port}/"
    assert server.kind in ("mongod", "ferretdb-postgresql", "ferretdb-sqlite")
    if USES_FERRETDB and PG_BIN_DIR is not None:
        assert server.kind == "ferretdb-postgresql"
    assert os.getsid(server.pid) == server.pid  # own session: the terminal's Ctrl-C does not reach it
    assert (db_dir / PID_FILE_NAME).exists()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(server.uri)
    try:
        await client.acs.devices.insert_one({"_id": "00259E-HG8245-1", "online": True})
        assert await client.acs.devices.find_one({"_id": "00259E-HG8245-1"}) == {
            "_id": "00259E-HG8245-1",
            "online": True,
        }
    finally:
        await client.close()
    await server.stop()
    assert not server.running()
    assert not (db_dir / PID_FILE_NAME).exists()
    await server.stop()  # idempotent

    async with await LocalMongo.start(db_dir) as again:
        client = AsyncMongoClient(again.uri)
        try:
            assert await client.acs.devices.count_documents({"online": True}) == 1
        finally:
            await client.close()
    assert not again.running()


async def test_explicit_port_is_used(db_dir: Path) -> None:
    port = localdb.free_port()
    async with await LocalMongo.start(db_dir, port) as server:
        assert server.port == port


async def test_missing_explicit_binary_is_a_clear_error(tmp_path: Path) -> None:
    env = {"ACS_FERRETDB_BIN": str(tmp_path / "missing"), "PATH": str(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(LocalDatabaseError, match="ACS_FERRETDB_BIN") as caught:
        await LocalMongo.start(tmp_path, env=env)
    assert "scripts/setup" in str(caught.value)
    assert "ACS_MONGODB_URI" in str(caught.value)


def test_no_binary_anywhere_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localdb, "_repo_root", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with pytest.raises(LocalDatabaseError, match="No local database server found") as caught:
        find_server_binary(env)
    assert "scripts/setup" in str(caught.value)
    assert "ACS_MONGODB_URI" in str(caught.value)


def test_mongod_on_path_is_preferred_unless_ferretdb_is_named(tmp_path: Path) -> None:
    mongod = tmp_path / "mongod"
    mongod.write_text("#!/bin/sh\n")
    mongod.chmod(0o755)
    assert find_server_binary({"PATH": str(tmp_path)}) == localdb.ServerBinary("mongod", mongod)
    named = {"PATH": str(tmp_path), "ACS_FERRETDB_BIN": str(mongod)}
    assert find_server_binary(named).kind == "ferretdb"
    argv = localdb.server_argv(localdb.ServerBinary("mongod", mongod), tmp_path / "mongodb", 27999)
    assert argv[1:] == ["--dbpath", str(tmp_path / "mongodb"), "--bind_ip", "127.0.0.1", "--port", "27999"]


async def test_child_death_during_start_is_reported_with_its_log(tmp_path: Path) -> None:
    env = fake_server(tmp_path, "echo 'fatal: cannot open sqlite directory' >&2\nexit 3\n")
    with pytest.raises(LocalDatabaseError, match="exited with code 3") as caught:
        await LocalMongo.start(tmp_path / "data", env=env)
    assert "fatal: cannot open sqlite directory" in str(caught.value)
    assert not (tmp_path / "data" / PID_FILE_NAME).exists()


async def test_server_that_never_listens_times_out_and_is_stopped(tmp_path: Path) -> None:
    env = fake_server(tmp_path, "echo 'starting slowly'\nexec sleep 60\n")
    with pytest.raises(LocalDatabaseError, match="not ready in time") as caught:
        await LocalMongo.start(tmp_path / "data", env=env, startup_timeout=0.5)
    assert "starting slowly" in str(caught.value)
    assert not (tmp_path / "data" / PID_FILE_NAME).exists()


async def test_port_in_use_is_reported(db_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The port accepts connections, but they are not MongoDB: start must not believe it.
        with pytest.raises(LocalDatabaseError, match="already in use"):
            await LocalMongo.start(db_dir, port, startup_timeout=5)


async def test_stale_pid_file_is_cleaned(db_dir: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (db_dir / PID_FILE_NAME).write_text(
        f'{{"pid": {gone.pid}, "port": 1, "kind": "ferretdb", "binary": "x", "db_dir": "{db_dir}"}}\n'
    )
    async with await LocalMongo.start(db_dir) as server:
        assert server.pid != gone.pid


async def test_server_left_running_is_adopted_then_stopped(db_dir: Path) -> None:
    first = await LocalMongo.start(db_dir)  # an earlier `acs serve` that was killed -9
    try:
        second = await LocalMongo.start(db_dir)
        assert (second.pid, second.uri) == (first.pid, first.uri)
        if first.postgres is not None:
            assert second.postgres is not None and second.postgres.pid == first.postgres.pid
        await second.stop()
        await wait_until(lambda: not first.running(), timeout=10, message="adopted server stopped")
        if (postgres := first.postgres) is not None:
            await wait_until(lambda: not postgres.running(), timeout=10, message="its PostgreSQL stopped")
    finally:
        await first.stop()


async def test_server_left_running_on_another_port_is_replaced(db_dir: Path) -> None:
    first = await LocalMongo.start(db_dir)
    try:
        async with await LocalMongo.start(db_dir, localdb.free_port()) as second:
            assert second.pid != first.pid
            assert not first.running()  # never two servers on the same files
    finally:
        await first.stop()


async def test_session_fixtures_give_each_test_its_own_database(
    mongo_server: MongoServer, mongo_db: AsyncDatabase[MongoDocument]
) -> None:
    assert mongo_db.name.startswith("t_test_session_fixtures")
    await mongo_db.tasks.insert_one({"_id": "t1", "status": "queued"})
    assert await mongo_db.tasks.count_documents({}) == 1
    assert mongo_server.uri_for(mongo_db.name).endswith(f"/{mongo_db.name}")


async def test_auto_port_taken_before_the_server_binds_it_is_retried(
    db_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], localdb.free_port()])
        monkeypatch.setattr(localdb, "free_port", lambda: next(ports))
        async with await LocalMongo.start(db_dir) as server:
            assert server.port != taken.getsockname()[1]


# --- FerretDB's storage: PostgreSQL when installed, SQLite only when asked or as a loud last resort


@needs_postgresql
async def test_ferretdb_runs_on_a_private_postgresql_and_keeps_data_across_restarts(db_dir: Path) -> None:
    server = await LocalMongo.start(db_dir)
    try:
        postgres = server.postgres
        assert server.kind == "ferretdb-postgresql" and postgres is not None
        assert server.db_dir == db_dir / "postgresql"
        assert f"--postgresql-url={postgres.url}" in cmdline(server.pid)
        # FerretDB reaches it over its Unix socket (no loopback TCP: no delayed-ACK stalls)
        assert postgres.url == f"postgres://acs@/ferretdb?host={db_dir / 'postgresql'}&port={postgres.port}"
        assert os.getsid(postgres.pid) == postgres.pid  # own session, like FerretDB
        assert str(db_dir / "postgresql" / "data") in cmdline(postgres.pid)
        assert (db_dir / "postgresql" / f".s.PGSQL.{postgres.port}").is_socket()  # not /var/run/postgresql
        await store(server.uri, {"_id": "A", "model": "HG8245"}, {"_id": "B", "model": "F670L"})
        assert await stored_ids(server.uri, {"model": "F670L"}) == ["B"]  # a filter PostgreSQL evaluates
    finally:
        await server.stop()
    assert not server.running() and not postgres.running()
    assert not (db_dir / "postgresql" / "data" / "postmaster.pid").exists()  # a clean shutdown

    async with await LocalMongo.start(db_dir) as again:
        assert again.kind == "ferretdb-postgresql" and again.postgres is not None
        assert again.postgres.pid != postgres.pid
        assert await stored_ids(again.uri) == ["A", "B"]


def test_postgresql_is_reached_over_tcp_when_its_socket_path_would_be_too_long(tmp_path: Path) -> None:
    """A data directory too deep for a Unix socket path: PostgreSQL listens on TCP only, and FerretDB's
    URL names 127.0.0.1 and the port instead of the socket directory."""
    root = tmp_path / ("d" * 120)
    postgres = LocalPostgres(bin_dir=tmp_path, root=root, port=5999, pid=0, process=None, run_as=None, env={})
    assert postgres.socket_dir == ""
    assert postgres.url == "postgres://acs@127.0.0.1:5999/ferretdb"
    short = LocalPostgres(bin_dir=tmp_path, root=tmp_path / "pg", port=5999, pid=0, process=None, run_as=None, env={})
    assert short.url == f"postgres://acs@/ferretdb?host={tmp_path / 'pg'}&port=5999"


@needs_postgresql
async def test_two_data_dirs_run_side_by_side(db_dir: Path) -> None:
    async with await LocalMongo.start(db_dir / "one") as one, await LocalMongo.start(db_dir / "two") as two:
        assert one.postgres is not None and two.postgres is not None
        assert len({one.port, two.port, one.postgres.port, two.postgres.port}) == 4
        await store(one.uri, {"_id": "only-in-one"})
        assert await stored_ids(two.uri) == []
        assert await stored_ids(one.uri) == ["only-in-one"]


LEFT_BEHIND = """
import asyncio, sys
from pathlib import Path
from acs.localdb import LocalMongo

async def main() -> None:
    server = await LocalMongo.start(Path(sys.argv[1]))
    print(server.pid, server.postgres.pid if server.postgres else 0, server.uri, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def start_in_another_process(data_dir: Path) -> tuple[asyncio.subprocess.Process, int, int, str]:
    """Servers started (and held) by another process, as by a running `acs serve`; the process is
    stopped (SIGSTOP), not killed: its servers die with it. Returns it, the servers' pids and uri."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LEFT_BEHIND, str(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line, (await proc.stderr.read()).decode() if proc.stderr else "no output"
        ferretdb_pid, pg_pid, uri = line.decode().split()
    except BaseException:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        raise
    proc.send_signal(signal.SIGSTOP)
    return proc, int(ferretdb_pid), int(pg_pid), uri


async def end(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


@needs_postgresql
async def test_servers_held_by_another_process_are_adopted_then_stopped(db_dir: Path) -> None:
    holder, ferretdb_pid, pg_pid, uri = await start_in_another_process(db_dir)
    try:
        await store(uri, {"_id": "written-by-the-other"})
        server = await LocalMongo.start(db_dir)
        assert server.postgres is not None
        assert (server.pid, server.postgres.pid, server.uri) == (ferretdb_pid, pg_pid, uri)
        assert await stored_ids(server.uri) == ["written-by-the-other"]
        await server.stop()
        await wait_until(
            lambda: not localpg.process_alive(ferretdb_pid) and not localpg.process_alive(pg_pid),
            timeout=30,
            message="adopted FerretDB and PostgreSQL stopped",
        )
    finally:
        await end(holder)
    assert not (db_dir / PID_FILE_NAME).exists()
    assert not (db_dir / "postgresql" / "data" / "postmaster.pid").exists()


@needs_postgresql
async def test_postgresql_held_by_another_process_is_stopped_when_sqlite_is_asked_for(db_dir: Path) -> None:
    holder, ferretdb_pid, pg_pid, _uri = await start_in_another_process(db_dir)
    try:
        async with await LocalMongo.start(db_dir, env=SQLITE) as server:
            assert server.kind == "ferretdb-sqlite" and server.pid != ferretdb_pid
            assert not localpg.process_alive(ferretdb_pid)
            await wait_until(lambda: not localpg.process_alive(pg_pid), timeout=30, message="other PostgreSQL stopped")
    finally:
        await end(holder)


@needs_postgresql
async def test_servers_die_with_the_process_that_started_them(db_dir: Path) -> None:
    # Issue 11 item 12: `kill -9` of `acs serve` used to leave FerretDB and PostgreSQL running.
    holder, ferretdb_pid, pg_pid, _uri = await start_in_another_process(db_dir)
    await end(holder)
    await wait_until(
        lambda: not localpg.process_alive(ferretdb_pid) and not localpg.process_alive(pg_pid),
        timeout=30,
        interval=0.1,
        message="FerretDB and PostgreSQL exit when the process that started them is killed",
    )


@needs_ferretdb
async def test_sqlite_backend_when_postgresql_is_disabled(db_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="acs.localdb")
    async with await LocalMongo.start(db_dir, env=SQLITE) as server:
        assert server.kind == "ferretdb-sqlite" and server.postgres is None
        assert server.db_dir == db_dir / "ferretdb"
        assert f"--sqlite-url=file:{db_dir / 'ferretdb'}/?_txlock=immediate" in cmdline(server.pid)
        await store(server.uri, {"_id": "A", "online": True}, {"_id": "B", "online": False})
        assert await stored_ids(server.uri, {"online": True}) == ["A"]
    assert not (db_dir / "postgresql").exists()
    assert "ACS_LOCALDB_BACKEND=sqlite" in caplog.text


@needs_ferretdb
async def test_pg_bin_dir_pointing_nowhere_is_a_clear_error(db_dir: Path) -> None:
    env = {**os.environ, "ACS_PG_BIN_DIR": str(db_dir / "nowhere")}
    with pytest.raises(LocalDatabaseError, match=r"ACS_PG_BIN_DIR=.*nowhere has no executable initdb, postgres"):
        await LocalMongo.start(db_dir / "data", env=env)
    assert not (db_dir / "data" / PID_FILE_NAME).exists()
    assert not (db_dir / "data" / "ferretdb.log").exists()  # no fallback to SQLite


async def test_unknown_backend_setting_is_an_error(db_dir: Path) -> None:
    with pytest.raises(LocalDatabaseError, match="ACS_LOCALDB_BACKEND=mysql is not one of auto, postgresql, sqlite"):
        localdb.backend_setting({localdb.BACKEND_ENV: "mysql"})


@needs_postgresql
async def test_postgresql_dying_during_start_is_reported_with_its_log(db_dir: Path) -> None:
    bin_dir = db_dir / "fake-pg-bin"
    bin_dir.mkdir()
    scripts = {
        # Enough of initdb for LocalPostgres: a data dir with PG_VERSION.
        "initdb": 'while [ $# -gt 0 ]; do [ "$1" = -D ] && mkdir -p "$2" && echo 15 >"$2/PG_VERSION"; shift; done\n',
        "postgres": "echo 'FATAL:  could not create shared memory segment: No space left on device' >&2\nexit 1\n",
        "pg_ctl": "exit 0\n",
        "createdb": "exit 0\n",
        "psql": "exit 0\n",
    }
    for name, script in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + script)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "ACS_PG_BIN_DIR": str(bin_dir)}
    with pytest.raises(LocalDatabaseError, match=r"PostgreSQL .* exited with code 1 while starting") as caught:
        await LocalMongo.start(db_dir / "data", env=env)
    assert "could not create shared memory segment" in str(caught.value)
    assert not (db_dir / "data" / "ferretdb.log").exists()  # FerretDB never started


@needs_postgresql
async def test_ferretdb_dying_on_postgresql_stops_postgresql(tmp_path: Path, db_dir: Path) -> None:
    env = fake_server(tmp_path, "echo 'fatal: cannot connect to postgres' >&2\nexit 3\n", backend="postgresql")
    with pytest.raises(LocalDatabaseError, match=r"ferretdb-postgresql .* exited with code 3") as caught:
        await LocalMongo.start(db_dir, env=env)
    assert "fatal: cannot connect to postgres" in str(caught.value)
    assert not (db_dir / PID_FILE_NAME).exists()
    assert not (db_dir / "postgresql" / "data" / "postmaster.pid").exists()  # PostgreSQL stopped too


@needs_postgresql
@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: PostgreSQL then runs as the postgres user")
async def test_data_dir_the_postgres_user_cannot_reach(tmp_path: Path) -> None:
    """Issue 10 item 6: a checkout under a home of mode 0700 (/root) still gets PostgreSQL.

    Its cluster lives under ``ACS_PG_HOME`` (here a temp dir; by default /var/lib/acs/postgresql),
    one per data dir, and a second start adopts the same cluster: the data is kept.
    """
    private = tmp_path / "private"  # like /root or /tmp/pytest-of-root: mode 0700, owned by root
    private.mkdir(mode=0o700)
    with database_temp_dir("acs-pg-home-") as home:
        env = {**os.environ, localpg.PG_HOME_ENV: str(home / "clusters")}
        async with await LocalMongo.start(private / "auto", env=env) as server:
            assert server.kind == "ferretdb-postgresql"
            assert server.db_dir.parent == home / "clusters"
            assert (private / "auto" / "postgresql.location").read_text().strip() == str(server.db_dir)
            client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(server.uri)
            try:
                await client.kept.things.insert_one({"_id": 1})
            finally:
                await client.close()
        explicit = {**env, localdb.BACKEND_ENV: "postgresql"}
        async with await LocalMongo.start(private / "auto", env=explicit) as again:
            assert again.kind == "ferretdb-postgresql" and again.db_dir == server.db_dir
            client = AsyncMongoClient(again.uri)
            try:
                assert await client.kept.things.find_one({"_id": 1}) == {"_id": 1}
            finally:
                await client.close()
        assert not (private / "auto" / "postgresql").exists()


def plan_nodes(plan: MongoDocument) -> list[str]:
    nodes = [str(plan.get("Node Type"))]
    for child in plan.get("Plans") or []:
        nodes += plan_nodes(child)
    return nodes


@needs_postgresql
async def test_pushed_down_equality_filters_use_an_index(
    mongo_server: MongoServer, mongo_db: AsyncDatabase[MongoDocument]
) -> None:
    """FerretDB's btree indexes cannot serve its `@>` filters; the local cluster adds GIN companions
    (acs.localpg_indexes), for collections created after start-up too, so lookups stay index scans."""
    if mongo_server.kind != "ferretdb-postgresql":
        pytest.skip(f"the tests' database is {mongo_server.kind}")
    from tasks.store.db import Database
    from tasks.store.tasks import TaskRepository

    tasks = TaskRepository(Database(client=mongo_db.client, db=mongo_db))
    await tasks.ensure_indexes()
    await mongo_db.tasks.insert_many(
        [{"_id": f"t{n:05d}", "device_id": f"dev{n % 400:04d}", "status": "done"} for n in range(4000)]
    )

    # The session's read of its device's open tasks (TaskRepository.open_for_device): one equality
    # on ``open_on``, which only open tasks carry, so the device's finished ones are not read.
    open_tasks = {"open_on": "dev0042", "device_id": "dev0042"}
    for query in ({"_id": "t01234"}, {"device_id": "dev0042", "status": "queued"}, open_tasks):
        explained = await mongo_db.command({"explain": {"find": "tasks", "filter": query}})
        assert explained.get("filterPushdown") is True, explained
        nodes = plan_nodes(explained["queryPlanner"]["Plan"])
        assert "Seq Scan" not in nodes and any("Index" in node for node in nodes), (query, nodes)


@needs_ferretdb
async def test_ferretdb_runs_with_a_lighter_garbage_collector_unless_gogc_is_set(db_dir: Path) -> None:
    server = await LocalMongo.start(db_dir)
    try:
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert f"GOGC={FERRETDB_GOGC}".encode() in environ
    finally:
        await server.stop()
    assert ferretdb_env({"GOGC": "150"})["GOGC"] == "150"
