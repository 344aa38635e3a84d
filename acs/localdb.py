"""Start and stop a local MongoDB-compatible server for development and tests.

Production points ``ACS_MONGODB_URI`` at a real MongoDB deployment. When it is unset, ``acs serve``
and the test suite use :class:`LocalMongo`: a real ``mongod`` when one is on PATH, otherwise
FerretDB (MongoDB wire protocol) built by ``scripts/setup``, storing its data in

- PostgreSQL (``kind == "ferretdb-postgresql"``), a private cluster under ``data_dir/postgresql``
  (:mod:`acs.localpg`), whenever PostgreSQL's server binaries are installed. FerretDB 1.24 pushes
  equality filters down to PostgreSQL; measured with the ACS: 47 CWMP sessions/s serially, ~94/s
  at 20-50 concurrent sessions, no errors;
- SQLite (``kind == "ferretdb-sqlite"``) only as a last resort, logged as a warning: FerretDB pushes
  down only ``{_id: X}`` there and scans every other query, and SQLite has one writer: ~3
  sessions/s and ``SQLITE_BUSY`` errors at 20 concurrent sessions.

``ACS_LOCALDB_BACKEND=auto|postgresql|sqlite`` (default auto) chooses FerretDB's backend;
``ACS_PG_BIN_DIR`` names PostgreSQL's binaries (else ``/usr/lib/postgresql/*/bin``, newest first,
then PATH). An explicit setting that cannot be honoured is an error, never a silent fallback.

The server runs as a child process in its own session, so a Ctrl-C aimed at the ACS does not
reach it before the ACS has finished with it and stops it (FerretDB first, then PostgreSQL). A pid
file in the data directory lets a later run adopt a server that an earlier run left behind (for
example after ``kill -9``) instead of starting a second server on the same files.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from acs import localpg
from acs.localpg import (
    LocalPostgres,
    LocalPostgresError,
    PostgresUnavailableError,
    ServerProcess,
    is_port_in_use_message,
    log_tail,
    port_accepts,
    process_alive,
    runs_on,
    spawn_logged,
)
from acs.localpg import free_port as free_port  # public here too (tests and tools pick ports with it)

logger = logging.getLogger("acs.localdb")

ServerKind = Literal["mongod", "ferretdb"]  # which program
LocalKind = Literal["mongod", "ferretdb-postgresql", "ferretdb-sqlite"]  # which program and storage
Backend = Literal["auto", "postgresql", "sqlite"]
BACKEND_ENV = "ACS_LOCALDB_BACKEND"

FERRETDB_VERSION = "v1.24.2"
DEFAULT_PORT = 27017
PID_FILE_NAME = "localdb.pid"
_HOST = "127.0.0.1"
# Where each kind keeps its data, and the log of the MongoDB-protocol server.
_DB_SUBDIR: Mapping[LocalKind, str] = {
    "mongod": "mongodb",
    "ferretdb-postgresql": localpg.SUBDIR,
    "ferretdb-sqlite": "ferretdb",
}
_LOG_NAME: Mapping[ServerKind, str] = {"mongod": "mongodb.log", "ferretdb": "ferretdb.log"}
_FERRETDB_STATE_SUBDIR = "ferretdb"
_SQLITE_FALLBACK_WARNING = (
    "FerretDB falls back to SQLite for the local database because %s. Expect it to be slow: FerretDB "
    "scans whole collections for every query but {_id: X}, and SQLite has one writer, so concurrent CWMP "
    "sessions queue up and fail with 'database is locked (SQLITE_BUSY)' (~3 sessions/s, vs ~94/s on PostgreSQL). "
    "Fix: install PostgreSQL (apt-get install postgresql, or run scripts/setup as root), or set "
    "ACS_MONGODB_URI to a MongoDB"
)


class LocalDatabaseError(RuntimeError):
    """The local database server could not be found, started or stopped."""


class _PortInUseError(LocalDatabaseError):
    """The server could not bind its port (someone took it between our check and its bind)."""


@dataclass(frozen=True)
class ServerBinary:
    kind: ServerKind
    path: Path


def port_is_free(port: int, host: str = _HOST) -> bool:
    """Whether a server could listen on ``port`` now (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _cache_bin_dir(env: Mapping[str, str]) -> Path:
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "acs" / "bin"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def ferretdb_candidates(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where FerretDB is looked for, in order (``$ACS_FERRETDB_BIN`` is handled separately)."""
    env = os.environ if env is None else env
    cache = _cache_bin_dir(env)
    candidates = [
        _repo_root() / ".local" / "bin" / "ferretdb",
        Path.cwd() / ".local" / "bin" / "ferretdb",
        cache / f"ferretdb-{FERRETDB_VERSION}",
        cache / "ferretdb",
    ]
    on_path = shutil.which("ferretdb", path=env.get("PATH", ""))
    if on_path:
        candidates.append(Path(on_path))
    return list(dict.fromkeys(candidates))


def find_server_binary(env: Mapping[str, str] | None = None) -> ServerBinary:
    """Pick the server to run: ``$ACS_FERRETDB_BIN``, else ``mongod`` on PATH, else a FerretDB.

    An explicit ``ACS_FERRETDB_BIN`` wins over ``mongod`` and must exist: a wrong setting is an
    error, not something to silently work around.
    """
    env = os.environ if env is None else env
    explicit = env.get("ACS_FERRETDB_BIN")
    if explicit:
        path = Path(explicit).expanduser()
        if not _is_executable(path):
            raise LocalDatabaseError(
                f"ACS_FERRETDB_BIN={explicit} is not an executable file. Fix or unset it, "
                "run scripts/setup to build FerretDB, or set ACS_MONGODB_URI to use an existing MongoDB."
            )
        return ServerBinary("ferretdb", path)
    mongod = shutil.which("mongod", path=env.get("PATH", ""))
    if mongod:
        return ServerBinary("mongod", Path(mongod))
    for candidate in ferretdb_candidates(env):
        if _is_executable(candidate):
            return ServerBinary("ferretdb", candidate)
    raise LocalDatabaseError(
        "No local database server found: no mongod on PATH and no FerretDB binary "
        f"(looked in ACS_FERRETDB_BIN, {', '.join(str(c) for c in ferretdb_candidates(env))}, PATH). "
        "Run scripts/setup to build FerretDB, or set ACS_MONGODB_URI to use an existing MongoDB."
    )


def backend_setting(env: Mapping[str, str] | None = None) -> Backend:
    """``$ACS_LOCALDB_BACKEND``: which storage FerretDB uses (auto: PostgreSQL when installed)."""
    env = os.environ if env is None else env
    value = (env.get(BACKEND_ENV) or "auto").strip().lower()
    for backend in get_args(Backend):
        if value == backend:
            return backend  # type: ignore[no-any-return]
    raise LocalDatabaseError(f"{BACKEND_ENV}={env.get(BACKEND_ENV)} is not one of auto, postgresql, sqlite")


# FerretDB is a Go program that allocates for every value it decodes: at Go's default (GOGC=100) its
# garbage collector's background marking took 13% of its CPU in a saturated 5,000-device steady
# state, 5% at 400, for a heap a few tens of MB larger (docs/performance.md, 2026-12-06). A GOGC
# set in the environment wins.
FERRETDB_GOGC = "400"


def ferretdb_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment FerretDB runs with: ours, with ``GOGC`` at ``FERRETDB_GOGC`` unless set."""
    chosen = dict(os.environ if env is None else env)
    chosen.setdefault("GOGC", FERRETDB_GOGC)
    return chosen


def server_argv(binary: ServerBinary, db_dir: Path, port: int, *, postgresql_url: str | None = None) -> list[str]:
    """The command line; ``db_dir`` is mongod's dbpath, or FerretDB's state (and SQLite) directory."""
    if binary.kind == "mongod":
        return [str(binary.path), "--dbpath", str(db_dir), "--bind_ip", _HOST, "--port", str(port)]
    if postgresql_url is not None:
        storage = ["--handler=postgresql", f"--postgresql-url={postgresql_url}"]
    else:
        storage = [
            "--handler=sqlite",
            # FerretDB wants the trailing slash (a directory). _txlock=immediate: a write transaction takes
            # SQLite's lock when it begins, so concurrent writers wait (busy_timeout) instead of failing
            # with SQLITE_BUSY when a read transaction tries to upgrade.
            f"--sqlite-url=file:{db_dir}/?_txlock=immediate",
        ]
    return [
        str(binary.path),
        *storage,
        f"--state-dir={db_dir}",
        f"--listen-addr={_HOST}:{port}",
        "--debug-addr=-",  # no second (debug) port, so several servers can run side by side
        "--telemetry=disable",
        "--log-level=error",  # at warn it logs each unsupported command, e.g. PyMongo's endSessions
    ]


def _server_of(kind: LocalKind) -> ServerKind:
    return "mongod" if kind == "mongod" else "ferretdb"


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    port: int
    kind: LocalKind
    binary: str
    db_dir: str  # the directory its command line names: how a reused pid is told apart
    pg_port: int | None = None  # the PostgreSQL that FerretDB was started on

    @classmethod
    def read(cls, path: Path) -> _PidRecord | None:
        try:
            raw = json.loads(path.read_text())
            kind = "ferretdb-sqlite" if raw["kind"] == "ferretdb" else raw["kind"]  # written before PostgreSQL
            if kind not in get_args(LocalKind):
                return None
            pg_port = raw.get("pg_port")
            return cls(
                int(raw["pid"]),
                int(raw["port"]),
                cast(LocalKind, kind),
                str(raw["binary"]),
                str(raw["db_dir"]),
                None if pg_port is None else int(pg_port),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self)) + "\n")
        tmp.replace(path)


async def _ping(uri: str, wait_seconds: float) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=max(1, int(wait_seconds * 1000)), connectTimeoutMS=2000
    )
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


def _make_dir(path: Path) -> Path:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _storage(
    binary: ServerBinary, data_dir: Path, env: Mapping[str, str], startup_timeout: float
) -> tuple[LocalKind, LocalPostgres | None]:
    """What the server stores its data in; starts (or adopts) PostgreSQL when that is the answer."""
    if binary.kind == "mongod":
        return "mongod", None
    backend = backend_setting(env)
    if backend == "sqlite":
        logger.info(
            "FerretDB stores its data in SQLite, as %s=sqlite asks (slow under concurrent sessions)", BACKEND_ENV
        )
        return "ferretdb-sqlite", None
    try:
        postgres = await LocalPostgres.start(data_dir / localpg.SUBDIR, env=env, startup_timeout=startup_timeout)
    except PostgresUnavailableError as exc:
        if backend == "postgresql":
            raise LocalDatabaseError(f"{BACKEND_ENV}=postgresql, but {exc}. Install it or run scripts/setup") from exc
        logger.warning(_SQLITE_FALLBACK_WARNING, exc)
        return "ferretdb-sqlite", None
    except LocalPostgresError as exc:  # explicit ACS_PG_BIN_DIR wrong, or PostgreSQL failed: not a fallback
        raise LocalDatabaseError(str(exc)) from exc
    sqlite_files = sorted((data_dir / _FERRETDB_STATE_SUBDIR).glob("*.sqlite"))
    if sqlite_files:
        logger.info(
            "%s holds %d SQLite database(s) from runs on FerretDB's SQLite backend: not used (nor migrated) "
            "now that it runs on PostgreSQL",
            data_dir / _FERRETDB_STATE_SUBDIR,
            len(sqlite_files),
        )
    return "ferretdb-postgresql", postgres


class LocalMongo(ServerProcess):
    """A MongoDB-compatible server run by this process, or adopted from an earlier run.

    Use ``server = await LocalMongo.start(data_dir)`` ... ``await server.stop()``, or
    ``async with await LocalMongo.start(data_dir) as server:``. ``kind`` says which server and
    storage: "mongod", "ferretdb-postgresql" (``postgres`` is then its PostgreSQL) or "ferretdb-sqlite".
    """

    def __init__(
        self,
        *,
        binary: ServerBinary,
        kind: LocalKind,
        data_dir: Path,
        port: int,
        pid: int,
        process: subprocess.Popen[bytes] | None,
        postgres: LocalPostgres | None = None,
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.pid = pid
        self.postgres = postgres
        self._kind = kind
        self._process = process  # None when adopted: not our child, we cannot wait() on it

    @property
    def kind(self) -> LocalKind:
        return self._kind

    @property
    def uri(self) -> str:
        return f"mongodb://{_HOST}:{self.port}/"

    @property
    def db_dir(self) -> Path:
        """Where the data lives (for FerretDB on PostgreSQL: the cluster's directory)."""
        if self.postgres is not None:
            return self.postgres.root  # outside data_dir when PostgreSQL's user cannot reach it
        return self.data_dir / _DB_SUBDIR[self.kind]

    @property
    def log_path(self) -> Path:
        return self.data_dir / _LOG_NAME[self.binary.kind]

    @property
    def pid_path(self) -> Path:
        return self.data_dir / PID_FILE_NAME

    def __repr__(self) -> str:
        return f"LocalMongo(kind={self.kind!r}, uri={self.uri!r}, pid={self.pid})"

    @classmethod
    async def start(
        cls,
        data_dir: Path,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
        binary: ServerBinary | None = None,
        startup_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> LocalMongo:
        """Start a server on ``data_dir`` and wait until it answers ``ping``.

        ``port=None`` picks ``preferred_port`` when it is free, else a free port. A server that
        an earlier run left on the same data directory is adopted when it answers (and the port
        fits), else stopped and replaced; likewise its PostgreSQL.
        """
        env = os.environ if env is None else env
        binary = binary or find_server_binary(env)
        data_dir = _make_dir(data_dir)
        kind, postgres = await _storage(binary, data_dir, env, startup_timeout)
        try:
            if postgres is None:
                with contextlib.suppress(LocalPostgresError):
                    await localpg.stop_leftover(data_dir / localpg.SUBDIR, env)
            return await cls._start_server(binary, kind, data_dir, port, preferred_port, startup_timeout, postgres)
        except BaseException:
            if postgres is not None:
                with contextlib.suppress(LocalPostgresError):
                    await postgres.stop()
            raise

    @classmethod
    async def _start_server(
        cls,
        binary: ServerBinary,
        kind: LocalKind,
        data_dir: Path,
        port: int | None,
        preferred_port: int | None,
        startup_timeout: float,
        postgres: LocalPostgres | None,
    ) -> LocalMongo:
        adopted = await cls._adopt_or_clean(kind, data_dir, port, postgres)
        if adopted is not None:
            return adopted
        if port is not None and not port_is_free(port):
            raise LocalDatabaseError(f"cannot start {kind}: port {_HOST}:{port} is already in use")
        attempts = 1 if port is not None else 3  # an auto-picked port can be taken before we bind it
        for attempt in range(1, attempts + 1):
            chosen = port if port is not None else cls._pick_port(preferred_port if attempt == 1 else None)
            try:
                return await cls._launch(binary, kind, data_dir, chosen, startup_timeout, postgres)
            except _PortInUseError:
                if attempt == attempts:
                    raise
                logger.info("port %d was taken before %s bound it; trying another", chosen, binary.kind)
        raise AssertionError("unreachable")

    @staticmethod
    def _pick_port(preferred_port: int | None) -> int:
        if preferred_port is None:
            return free_port()
        if port_is_free(preferred_port):
            return preferred_port
        port = free_port()
        logger.info("port %d is in use (another server?); the local database takes port %d", preferred_port, port)
        return port

    @classmethod
    async def _adopt_or_clean(
        cls, kind: LocalKind, data_dir: Path, port: int | None, postgres: LocalPostgres | None
    ) -> LocalMongo | None:
        pid_path = data_dir / PID_FILE_NAME
        record = _PidRecord.read(pid_path)
        if record is None:
            pid_path.unlink(missing_ok=True)
            return None
        if not runs_on(record.pid, record.db_dir):
            logger.info("removing stale %s (pid %d is gone)", pid_path, record.pid)
            pid_path.unlink(missing_ok=True)
            return None
        left = cls(
            binary=ServerBinary(_server_of(record.kind), Path(record.binary)),
            kind=record.kind,
            data_dir=data_dir,
            port=record.port,
            pid=record.pid,
            process=None,
        )
        same_storage = record.pg_port == (postgres.port if postgres is not None else None)
        if record.kind == kind and port in (None, record.port) and same_storage:
            with contextlib.suppress(Exception):
                await _ping(left.uri, 5.0)
                logger.warning("reusing %s left running by an earlier run: pid %d, %s", left.kind, left.pid, left.uri)
                left.postgres = postgres
                return left
        logger.warning("stopping %s left running by an earlier run (pid %d) to start a fresh one", left.kind, left.pid)
        await left.stop()
        return None

    @classmethod
    async def _launch(
        cls,
        binary: ServerBinary,
        kind: LocalKind,
        data_dir: Path,
        port: int,
        startup_timeout: float,
        postgres: LocalPostgres | None,
    ) -> LocalMongo:
        if postgres is not None:
            named_dir = _make_dir(data_dir / _FERRETDB_STATE_SUBDIR)
            argv = server_argv(binary, named_dir, port, postgresql_url=postgres.url)
        else:
            named_dir = _make_dir(data_dir / _DB_SUBDIR[kind])
            argv = server_argv(binary, named_dir, port)
        env = ferretdb_env() if binary.kind == "ferretdb" else None
        process, log_offset = spawn_logged(argv, data_dir / _LOG_NAME[binary.kind], data_dir, env=env)
        # postgres is attached once ready: stopping a server that failed to start leaves PostgreSQL to the caller.
        server = cls(binary=binary, kind=kind, data_dir=data_dir, port=port, pid=process.pid, process=process)
        _PidRecord(
            process.pid, port, kind, str(binary.path), str(named_dir), postgres.port if postgres else None
        ).write(server.pid_path)
        started = time.monotonic()
        try:
            await server._wait_ready(started + startup_timeout, log_offset)
        except BaseException:
            await server.stop()
            raise
        server.postgres = postgres
        logger.info(
            "local database: %s (%s) at %s (pid %d, data %s%s, ready in %.1fs)",
            kind,
            binary.path,
            server.uri,
            server.pid,
            server.db_dir,
            f", PostgreSQL pid {postgres.pid} on port {postgres.port}" if postgres else "",
            time.monotonic() - started,
        )
        return server

    async def _wait_ready(self, deadline: float, log_offset: int) -> None:
        """Until ``ping`` answers; checks between short attempts that the child is still alive."""
        problem = "nothing listens on the port"
        while True:
            self._raise_if_exited(log_offset)
            if await port_accepts(self.port):
                try:
                    await _ping(self.uri, min(1.0, max(0.1, deadline - time.monotonic())))
                    return
                except PyMongoError as exc:
                    problem = f"ping failed: {exc}"
            if time.monotonic() >= deadline:
                raise LocalDatabaseError(
                    f"{self.kind} on port {self.port} was not ready in time ({problem}); "
                    f"log {self.log_path}:\n{log_tail(self.log_path, log_offset)}"
                )
            await asyncio.sleep(0.05)

    def _raise_if_exited(self, log_offset: int) -> None:
        if self._process is None or self._process.poll() is None:
            return
        tail = log_tail(self.log_path, log_offset)
        message = (
            f"{self.kind} ({self.binary.path}) exited with code {self._process.returncode} while starting; "
            f"log {self.log_path}:\n{tail}"
        )
        if is_port_in_use_message(tail):
            raise _PortInUseError(message)
        raise LocalDatabaseError(message)

    @property
    def started_here(self) -> bool:
        """False when adopted from another run (e.g. a running ``acs serve``): not ours to stop."""
        return self._process is not None

    def running(self) -> bool:
        """Whether the MongoDB-protocol server (mongod or FerretDB) runs."""
        if self._process is not None:
            return self._process.poll() is None
        return process_alive(self.pid)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds; then its PostgreSQL. Idempotent."""
        if self.running():
            self._signal(signal.SIGTERM)
            if not await self._wait_exit(time.monotonic() + grace):
                logger.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", self.kind, self.pid, grace)
                self._signal(signal.SIGKILL)
                if not await self._wait_exit(time.monotonic() + 5.0):
                    raise LocalDatabaseError(f"{self.kind} (pid {self.pid}) survived SIGKILL")
            logger.info("stopped %s (pid %d)", self.kind, self.pid)
        record = _PidRecord.read(self.pid_path)
        if record is None or record.pid == self.pid:
            self.pid_path.unlink(missing_ok=True)
        if self.postgres is not None:
            try:
                await self.postgres.stop()
            except LocalPostgresError as exc:
                raise LocalDatabaseError(str(exc)) from exc
