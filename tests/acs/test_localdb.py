"""acs.localdb: the local MongoDB-compatible server (FerretDB here, mongod where installed).

These start real servers of their own (not the session's `mongo_server`), each on a temp dir.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

import acs.localdb as localdb
from acs.localdb import PID_FILE_NAME, LocalDatabaseError, LocalMongo, find_server_binary
from tests.support.mongo import MongoDocument, MongoServer
from tests.support.processes import wait_until

try:
    find_server_binary()
except LocalDatabaseError as exc:  # pragma: no cover - only on a machine without scripts/setup run
    pytest.skip(f"no local database server: {exc}", allow_module_level=True)


def fake_server(tmp_path: Path, script: str) -> dict[str, str]:
    """An env whose ACS_FERRETDB_BIN is a shell script standing in for the server."""
    binary = tmp_path / "fake-ferretdb"
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "ACS_FERRETDB_BIN": str(binary)}


async def test_start_store_stop_and_restart_keeps_data(tmp_path: Path) -> None:
    server = await LocalMongo.start(tmp_path)
    assert server.uri == f"mongodb://127.0.0.1:{server.port}/"
    assert server.kind in ("mongod", "ferretdb")
    assert os.getsid(server.pid) == server.pid  # own session: the terminal's Ctrl-C does not reach it
    assert (tmp_path / PID_FILE_NAME).exists()
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
    assert not (tmp_path / PID_FILE_NAME).exists()
    await server.stop()  # idempotent

    async with await LocalMongo.start(tmp_path) as again:
        client = AsyncMongoClient(again.uri)
        try:
            assert await client.acs.devices.count_documents({"online": True}) == 1
        finally:
            await client.close()
    assert not again.running()


async def test_explicit_port_is_used(tmp_path: Path) -> None:
    port = localdb.free_port()
    async with await LocalMongo.start(tmp_path, port) as server:
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


async def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The port accepts connections, but they are not MongoDB: start must not believe it.
        with pytest.raises(LocalDatabaseError, match="already in use"):
            await LocalMongo.start(tmp_path, port, startup_timeout=5)


async def test_stale_pid_file_is_cleaned(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / PID_FILE_NAME).write_text(
        f'{{"pid": {gone.pid}, "port": 1, "kind": "ferretdb", "binary": "x", "db_dir": "{tmp_path}"}}\n'
    )
    async with await LocalMongo.start(tmp_path) as server:
        assert server.pid != gone.pid


async def test_server_left_running_is_adopted_then_stopped(tmp_path: Path) -> None:
    first = await LocalMongo.start(tmp_path)  # an earlier `acs serve` that was killed -9
    try:
        second = await LocalMongo.start(tmp_path)
        assert (second.pid, second.uri) == (first.pid, first.uri)
        await second.stop()
        await wait_until(lambda: not first.running(), timeout=10, message="adopted server stopped")
    finally:
        await first.stop()


async def test_server_left_running_on_another_port_is_replaced(tmp_path: Path) -> None:
    first = await LocalMongo.start(tmp_path)
    try:
        async with await LocalMongo.start(tmp_path, localdb.free_port()) as second:
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], localdb.free_port()])
        monkeypatch.setattr(localdb, "free_port", lambda: next(ports))
        async with await LocalMongo.start(tmp_path) as server:
            assert server.port != taken.getsockname()[1]
