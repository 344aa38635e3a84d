"""Start and stop a local MongoDB-compatible server for development and tests.

Production points ``ACS_MONGODB_URI`` at a real MongoDB deployment. When it is unset, ``acs serve``
and the test suite use :class:`LocalMongo`: a real ``mongod`` when one is on PATH, otherwise
FerretDB (MongoDB wire protocol over SQLite) built by ``scripts/setup``.

The server runs as a child process in its own session, so a Ctrl-C aimed at the ACS does not
reach it before the ACS has finished with it and stops it. A pid file in the data directory lets
a later run adopt a server that an earlier run left behind (for example after ``kill -9``)
instead of starting a second server on the same files.
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
from types import TracebackType
from typing import Literal

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

logger = logging.getLogger("acs.localdb")

ServerKind = Literal["mongod", "ferretdb"]

FERRETDB_VERSION = "v1.24.2"
DEFAULT_PORT = 27017
PID_FILE_NAME = "localdb.pid"
_HOST = "127.0.0.1"
_LOG_TAIL_LINES = 40
_PORT_IN_USE_MARKERS = ("address already in use", "addrinuse")
_DB_SUBDIR: Mapping[ServerKind, str] = {"mongod": "mongodb", "ferretdb": "ferretdb"}


class LocalDatabaseError(RuntimeError):
    """The local database server could not be found, started or stopped."""


class _PortInUseError(LocalDatabaseError):
    """The server could not bind its port (someone took it between our check and its bind)."""


@dataclass(frozen=True)
class ServerBinary:
    kind: ServerKind
    path: Path


def free_port(host: str = _HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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


def server_argv(binary: ServerBinary, db_dir: Path, port: int) -> list[str]:
    if binary.kind == "mongod":
        return [str(binary.path), "--dbpath", str(db_dir), "--bind_ip", _HOST, "--port", str(port)]
    return [
        str(binary.path),
        "--handler=sqlite",
        f"--sqlite-url=file:{db_dir}/",  # FerretDB wants the trailing slash: it is a directory
        f"--state-dir={db_dir}",
        f"--listen-addr={_HOST}:{port}",
        "--debug-addr=-",  # no second (debug) port, so several servers can run side by side
        "--telemetry=disable",
        "--log-level=error",  # at warn it logs each unsupported command, e.g. PyMongo's endSessions
    ]


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    port: int
    kind: ServerKind
    binary: str
    db_dir: str

    @classmethod
    def read(cls, path: Path) -> _PidRecord | None:
        try:
            raw = json.loads(path.read_text())
            return cls(int(raw["pid"]), int(raw["port"]), raw["kind"], str(raw["binary"]), str(raw["db_dir"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self)) + "\n")
        tmp.replace(path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # An exited process nobody has reaped yet (e.g. under a PID 1 that does not reap) is gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _process_cmdline(pid: int) -> str | None:
    if Path("/proc/self/cmdline").exists():
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
    try:  # macOS and other systems without /proc
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _is_our_server(record: _PidRecord) -> bool:
    """The pid is alive and still runs the server on our files (pids get reused)."""
    if not _process_alive(record.pid):
        return False
    cmdline = _process_cmdline(record.pid)
    return cmdline is not None and record.db_dir in cmdline


async def _port_accepts(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(_HOST, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _ping(uri: str, wait_seconds: float) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=max(1, int(wait_seconds * 1000)), connectTimeoutMS=2000
    )
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


def _tail(path: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _make_dir(path: Path) -> Path:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spawn(argv: list[str], log_path: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server with its output appended to ``log_path``; returns where its output starts."""
    with log_path.open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        output_starts = log.tell()  # before the child shares (and moves) the file offset
        # start_new_session: the server gets its own process group, so the terminal's SIGINT on
        # Ctrl-C goes to the ACS only, and the ACS stops the server itself once it is done with it.
        process = subprocess.Popen(  # noqa: S603 - argv built from a resolved binary path, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
        return process, output_starts


class LocalMongo:
    """A MongoDB-compatible server run by this process, or adopted from an earlier run.

    Use ``server = await LocalMongo.start(data_dir)`` ... ``await server.stop()``, or
    ``async with await LocalMongo.start(data_dir) as server:``.
    """

    def __init__(
        self,
        *,
        binary: ServerBinary,
        data_dir: Path,
        port: int,
        pid: int,
        process: subprocess.Popen[bytes] | None,
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.pid = pid
        self._process = process  # None when adopted: not our child, we cannot wait() on it

    @property
    def kind(self) -> ServerKind:
        return self.binary.kind

    @property
    def uri(self) -> str:
        return f"mongodb://{_HOST}:{self.port}/"

    @property
    def db_dir(self) -> Path:
        return self.data_dir / _DB_SUBDIR[self.kind]

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{_DB_SUBDIR[self.kind]}.log"

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
        fits), else stopped and replaced.
        """
        binary = binary or find_server_binary(env)
        data_dir = _make_dir(data_dir)
        adopted = await cls._adopt_or_clean(binary, data_dir, port)
        if adopted is not None:
            return adopted
        if port is not None and not port_is_free(port):
            raise LocalDatabaseError(f"cannot start {binary.kind}: port {_HOST}:{port} is already in use")
        attempts = 1 if port is not None else 3  # an auto-picked port can be taken before we bind it
        for attempt in range(1, attempts + 1):
            chosen = port if port is not None else cls._pick_port(preferred_port if attempt == 1 else None)
            try:
                return await cls._launch(binary, data_dir, chosen, startup_timeout)
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
    async def _adopt_or_clean(cls, binary: ServerBinary, data_dir: Path, port: int | None) -> LocalMongo | None:
        pid_path = data_dir / PID_FILE_NAME
        record = _PidRecord.read(pid_path)
        if record is None:
            pid_path.unlink(missing_ok=True)
            return None
        if not _is_our_server(record):
            logger.info("removing stale %s (pid %d is gone)", pid_path, record.pid)
            pid_path.unlink(missing_ok=True)
            return None
        left = cls(
            binary=ServerBinary(record.kind, Path(record.binary)),
            data_dir=data_dir,
            port=record.port,
            pid=record.pid,
            process=None,
        )
        fits = record.kind == binary.kind and port in (None, record.port)
        if fits:
            with contextlib.suppress(Exception):
                await _ping(left.uri, 5.0)
                logger.warning("reusing %s left running by an earlier run: pid %d, %s", left.kind, left.pid, left.uri)
                return left
        logger.warning("stopping %s left running by an earlier run (pid %d) to start a fresh one", left.kind, left.pid)
        await left.stop()
        return None

    @classmethod
    async def _launch(cls, binary: ServerBinary, data_dir: Path, port: int, startup_timeout: float) -> LocalMongo:
        db_dir = _make_dir(data_dir / _DB_SUBDIR[binary.kind])
        log_path = data_dir / f"{_DB_SUBDIR[binary.kind]}.log"
        process, log_offset = _spawn(server_argv(binary, db_dir, port), log_path, data_dir)
        server = cls(binary=binary, data_dir=data_dir, port=port, pid=process.pid, process=process)
        _PidRecord(process.pid, port, binary.kind, str(binary.path), str(db_dir)).write(server.pid_path)
        started = time.monotonic()
        try:
            await server._wait_ready(started + startup_timeout, log_offset)
        except BaseException:
            await server.stop()
            raise
        logger.info(
            "local database: %s %s at %s (pid %d, data %s, ready in %.1fs)",
            binary.kind,
            binary.path,
            server.uri,
            server.pid,
            db_dir,
            time.monotonic() - started,
        )
        return server

    async def _wait_ready(self, deadline: float, log_offset: int) -> None:
        """Until ``ping`` answers; checks between short attempts that the child is still alive."""
        problem = "nothing listens on the port"
        while True:
            self._raise_if_exited(log_offset)
            if await _port_accepts(self.port):
                try:
                    await _ping(self.uri, min(1.0, max(0.1, deadline - time.monotonic())))
                    return
                except PyMongoError as exc:
                    problem = f"ping failed: {exc}"
            if time.monotonic() >= deadline:
                raise LocalDatabaseError(
                    f"{self.kind} on port {self.port} was not ready in time ({problem}); "
                    f"log {self.log_path}:\n{_tail(self.log_path, log_offset)}"
                )
            await asyncio.sleep(0.05)

    def _raise_if_exited(self, log_offset: int) -> None:
        if self._process is None or self._process.poll() is None:
            return
        tail = _tail(self.log_path, log_offset)
        message = (
            f"{self.kind} ({self.binary.path}) exited with code {self._process.returncode} while starting; "
            f"log {self.log_path}:\n{tail}"
        )
        if any(marker in tail.lower() for marker in _PORT_IN_USE_MARKERS):
            raise _PortInUseError(message)
        raise LocalDatabaseError(message)

    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return _process_alive(self.pid)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds. Idempotent."""
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

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    async def _wait_exit(self, deadline: float) -> bool:
        while self.running():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def __aenter__(self) -> LocalMongo:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
