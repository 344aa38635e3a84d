"""A private PostgreSQL cluster: the storage under the local development database.

:class:`acs.localdb.LocalMongo` runs FerretDB over PostgreSQL when PostgreSQL's server binaries
are installed. FerretDB 1.24 pushes equality filters down to PostgreSQL; over SQLite it pushes
down only ``{_id: X}``, scans every other query in Go, and SQLite takes one writer at a time.

This module has one job, the cluster under ``data_dir/postgresql``:

- ``data/`` is initialised once (``initdb``: superuser ``acs``, trust authentication, C locale,
  UTF8). Trust is acceptable for a development database that listens on 127.0.0.1 only;
- the server listens on a free port of 127.0.0.1 with its Unix socket in ``data_dir/postgresql``
  (not the system's ``/var/run/postgresql``), so clusters on different data dirs run side by side;
- the ``ferretdb`` database is created once;
- PostgreSQL's own pid file, ``data/postmaster.pid``, lets a later run adopt a server that an
  earlier one left running (the ACS killed with SIGKILL), or stop it when it is not ready;
- it stops with ``pg_ctl stop -m fast``.

PostgreSQL refuses to run as root. As root its processes run as the ``postgres`` user (which
Debian's ``postgresql`` package creates), so that user must be able to reach the data directory.

The generic process helpers that :mod:`acs.localdb` shares live here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from acs.localpg_indexes import COMPANION_SQL

logger = logging.getLogger("acs.localpg")

PG_BIN_DIR_ENV = "ACS_PG_BIN_DIR"
SERVER_TOOLS = ("initdb", "postgres", "pg_ctl", "createdb", "psql")
DATABASE = "ferretdb"
USER = "acs"
SUBDIR = "postgresql"
PG_HOME_ENV = "ACS_PG_HOME"
DEFAULT_PG_HOME = Path("/var/lib/acs/postgresql")
HOST = "127.0.0.1"
# A development database: a crash of the machine may lose the last transactions or corrupt the
# cluster, which is acceptable here and makes writes several times faster. Pass durable=True to keep
# PostgreSQL's defaults.
FAST_UNSAFE_SETTINGS = ("fsync=off", "synchronous_commit=off")
_LOG_TAIL_LINES = 40
_SOCKET_PATH_MAX = 103  # sun_path is 108 bytes on Linux and 104 on macOS, with its NUL
_PORT_IN_USE_MARKERS = ("address already in use", "addrinuse", "could not create any tcp/ip sockets")
_DEBIAN_BIN_DIRS = Path("/usr/lib/postgresql")


class LocalPostgresError(RuntimeError):
    """The local PostgreSQL cluster could not be found, initialised, started or stopped."""


class PostgresUnavailableError(LocalPostgresError):
    """PostgreSQL cannot be used here at all (not installed, or cannot run as this user on this dir)."""


class _PortInUseError(LocalPostgresError):
    """The server could not bind its port (someone took it between our check and its bind)."""


# ---------------------------------------------------------------------------------------------
# Process helpers (shared with acs.localdb)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def process_alive(pid: int) -> bool:
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
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rpartition(")")[2].split()[:1] == ["Z"]


def process_cmdline(pid: int) -> str | None:
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


def runs_on(pid: int, path: Path | str) -> bool:
    """The pid is alive and its command line names ``path`` (pids get reused)."""
    if not process_alive(pid):
        return False
    cmdline = process_cmdline(pid)
    return cmdline is not None and str(path) in cmdline


async def port_accepts(port: int, host: str = HOST) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def log_tail(path: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def is_port_in_use_message(text: str) -> bool:
    return any(marker in text.lower() for marker in _PORT_IN_USE_MARKERS)


@dataclass(frozen=True)
class RunAs:
    """The unprivileged user that PostgreSQL's programs run as when we are root."""

    name: str
    uid: int
    gid: int

    def groups(self) -> list[int]:
        return os.getgrouplist(self.name, self.gid)


_setpriv_missing_logged = False


def dying_with_us(argv: Sequence[str], signum: signal.Signals) -> list[str]:
    """``argv`` run so that the kernel sends it ``signum`` when this process dies (``kill -9``
    included): util-linux's ``setpriv --pdeathsig`` sets PR_SET_PDEATHSIG and execs the server
    (same pid, no Python in the child, so nothing unsafe between fork and exec). The signal
    comes when the thread that started it ends, and servers are started from the event loop's
    thread. Without setpriv the server outlives a killed ACS (the next start adopts it)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        global _setpriv_missing_logged
        if not _setpriv_missing_logged:
            _setpriv_missing_logged = True
            logger.warning("setpriv (util-linux) not found: the local database outlives an ACS killed with SIGKILL")
        return list(argv)
    return [setpriv, f"--pdeathsig={signum.name.removeprefix('SIG')}", "--", *argv]


def spawn_logged(
    argv: Sequence[str],
    log_path: Path,
    cwd: Path,
    *,
    run_as: RunAs | None = None,
    env: Mapping[str, str] | None = None,
    parent_death_signal: signal.Signals = signal.SIGTERM,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server with its output appended to ``log_path``; returns where its output starts.

    The server gets ``parent_death_signal`` if this process dies without stopping it."""
    argv = dying_with_us(argv, parent_death_signal)
    with log_path.open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        output_starts = log.tell()  # before the child shares (and moves) the file offset
        # start_new_session: the server gets its own process group, so the terminal's SIGINT on
        # Ctrl-C goes to the ACS only, and the ACS stops the server itself once it is done with it.
        process = subprocess.Popen(  # noqa: S603 - argv built from resolved binary paths, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=run_as.groups() if run_as else None,
        )
        return process, output_starts


# ---------------------------------------------------------------------------------------------
# Finding PostgreSQL


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def _missing_tools(bin_dir: Path) -> list[str]:
    return [tool for tool in SERVER_TOOLS if not _is_executable(bin_dir / tool)]


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def pg_bin_dir_candidates(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where PostgreSQL's server binaries are looked for after ``$ACS_PG_BIN_DIR``, in order."""
    env = os.environ if env is None else env
    candidates = sorted(_DEBIAN_BIN_DIRS.glob("*/bin"), key=_version_key, reverse=True)  # newest first
    on_path = shutil.which("postgres", path=env.get("PATH", ""))
    if on_path:
        candidates.append(Path(on_path).parent)
    return list(dict.fromkeys(candidates))


def find_pg_bin_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """PostgreSQL's server binaries: ``$ACS_PG_BIN_DIR``, ``/usr/lib/postgresql/*/bin``, PATH.

    None when there are none. An explicit ``ACS_PG_BIN_DIR`` that lacks them is an error.
    """
    env = os.environ if env is None else env
    explicit = env.get(PG_BIN_DIR_ENV)
    if explicit:
        bin_dir = Path(explicit).expanduser()
        missing = _missing_tools(bin_dir)
        if missing:
            raise LocalPostgresError(
                f"{PG_BIN_DIR_ENV}={explicit} has no executable {', '.join(missing)}: point it at PostgreSQL's "
                "server binaries (e.g. /usr/lib/postgresql/15/bin) or unset it"
            )
        return bin_dir
    for candidate in pg_bin_dir_candidates(env):
        if not _missing_tools(candidate):
            return candidate
    return None


def run_as_for_postgres() -> RunAs | None:
    """None when we are not root (PostgreSQL runs as us), else the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailableError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as "
            "(Debian's postgresql package creates one)"
        ) from None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _searchable_by(path: Path, who: RunAs) -> bool:
    st = path.stat()
    if st.st_uid == who.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in os.getgrouplist(who.name, who.gid):
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def check_reachable(directory: Path, who: RunAs | None) -> None:
    """Raise :class:`PostgresUnavailableError` when ``who`` cannot search its way to ``directory``."""
    if who is None:
        return
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["test", "-x", str(directory)],  # noqa: S607 - coreutils' test, looked up on PATH
        cwd="/",
        check=False,
        user=who.uid,
        group=who.gid,
        extra_groups=who.groups(),
    )
    if result.returncode == 0:
        return
    blocking = next((p for p in [*reversed(directory.parents), directory] if not _searchable_by(p, who)), directory)
    raise PostgresUnavailableError(
        f"PostgreSQL refuses to run as root, and the user '{who.name}' it runs as cannot reach {directory} "
        f"({blocking} is mode {stat.filemode(blocking.stat().st_mode)}, not searchable by it). "
        f"Use a data directory that user can reach (e.g. ACS_DATA_DIR=/var/lib/acs), or allow it: chmod o+x {blocking}"
    )


def _tool_env(env: Mapping[str, str]) -> dict[str, str]:
    # The cluster is private: a developer's PGHOST, PGDATABASE, PGOPTIONS... must not steer its tools.
    # LC_ALL=C: English messages, which ensure_database() reads.
    clean = {key: value for key, value in env.items() if not key.startswith("PG")}
    return {**clean, "LC_ALL": "C"}


# ---------------------------------------------------------------------------------------------
# The cluster


@dataclass(frozen=True)
class _PostmasterPid:
    pid: int
    port: int
    status: str  # "starting", "ready", "stopping" (PostgreSQL 10+)

    @classmethod
    def read(cls, path: Path) -> _PostmasterPid | None:
        try:
            lines = path.read_text().splitlines()
            return cls(int(lines[0]), int(lines[3]), lines[7].strip() if len(lines) > 7 else "")
        except (OSError, ValueError, IndexError):
            return None


async def _run_tool(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: Mapping[str, str],
    run_as: RunAs | None,
    timeout: float,
) -> tuple[int, str]:
    """Run a PostgreSQL tool to completion with its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} running: {' '.join(argv)}\n".encode())
        log.flush()  # before the child appends its output, so the tail below is the tool's
        offset = log.tell()
        # subprocess.Popen (fork and exec, from the event loop's thread like the servers) waited on
        # in a thread, rather than the loop's subprocess support: uvloop (acs serve's event loop
        # when installed) cannot start a child as another user.
        process = subprocess.Popen(  # noqa: S603, ASYNC220 - argv from resolved binary paths; a short fork+exec
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=run_as.groups() if run_as else None,
        )
        try:
            returncode = await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.to_thread(process.wait)
            raise LocalPostgresError(
                f"{Path(argv[0]).name} did not finish in {timeout:.0f}s; log {log_path}:\n{log_tail(log_path, offset)}"
            ) from None
    return returncode, log_tail(log_path, offset)


class ServerProcess:
    """What a server child process (PostgreSQL, FerretDB, mongod) offers: signals, waiting, ``async with``."""

    pid: int

    def running(self) -> bool:
        raise NotImplementedError

    async def stop(self, grace: float = 10.0) -> None:
        raise NotImplementedError

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    async def _wait_exit(self, deadline: float) -> bool:
        while self.running():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class LocalPostgres(ServerProcess):
    """A PostgreSQL cluster under ``root`` run by this process, or adopted from an earlier run."""

    def __init__(
        self,
        *,
        bin_dir: Path,
        root: Path,
        port: int,
        pid: int,
        process: subprocess.Popen[bytes] | None,
        run_as: RunAs | None,
        env: Mapping[str, str],
    ) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = port
        self.pid = pid
        self._process = process  # None when adopted: not our child, we cannot wait() on it
        self._run_as = run_as
        self._env = _tool_env(env)

    @property
    def data_path(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root.with_name(self.root.name + ".log")

    @property
    def url(self) -> str:
        """For FerretDB's ``--postgresql-url``."""
        # Over the cluster's Unix socket when it has one: on loopback TCP a result PostgreSQL writes in
        # 8 kB pieces, after an idle pause, waited about 200 ms for a delayed ACK now and then (the
        # slow-start restart's window filled by pieces far below loopback's 64 kB MSS, which the
        # receiver acknowledges lazily): single API requests of 220-260 ms at 20,000 devices, each one
        # find (docs/performance.md). A Unix socket has no ACKs to wait for.
        if self.socket_dir:
            return f"postgres://{USER}@/{DATABASE}?host={self.socket_dir}&port={self.port}"
        return f"postgres://{USER}@{HOST}:{self.port}/{DATABASE}"

    @property
    def socket_dir(self) -> str:
        """Where the server's Unix socket is (its root), or "" when the path would be too long for one."""
        return self._socket_dir_for(self.port)

    def __repr__(self) -> str:
        return f"LocalPostgres(url={self.url!r}, pid={self.pid}, root={str(self.root)!r})"

    @classmethod
    async def start(
        cls,
        root: Path,
        *,
        bin_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        durable: bool = False,
    ) -> LocalPostgres:
        """Initialise the cluster under ``root`` if needed, start it (or adopt a running one) and
        create the ``ferretdb`` database if needed."""
        env = os.environ if env is None else env
        bin_dir = bin_dir or find_pg_bin_dir(env)
        if bin_dir is None:
            raise PostgresUnavailableError(
                f"no PostgreSQL server binaries found (looked in {PG_BIN_DIR_ENV}, {_DEBIAN_BIN_DIRS}/*/bin and PATH)"
            )
        run_as = run_as_for_postgres()
        root = prepare_root(root, run_as, env)
        server = await cls._adopt_or_clean(bin_dir, root, run_as, env)
        if server is None:
            template = cls(bin_dir=bin_dir, root=root, port=0, pid=0, process=None, run_as=run_as, env=env)
            await template._init_once()
            deadline = time.monotonic() + startup_timeout
            for attempt in range(1, 4):  # an auto-picked port can be taken before the server binds it
                try:
                    server = await cls._launch(template, free_port(), deadline, durable)
                    break
                except _PortInUseError:
                    if attempt == 3:
                        raise
                    logger.info("the port PostgreSQL was given was taken before it bound it; trying another")
            assert server is not None
        try:
            await server._ensure_database(startup_timeout)
            await server._install_index_companions(startup_timeout)
        except BaseException:
            await server.stop()
            raise
        return server

    async def _init_once(self) -> None:
        if (self.data_path / "PG_VERSION").exists():
            return
        if self.data_path.exists():  # an initdb that was interrupted: start over
            shutil.rmtree(self.data_path)
        self._database_marker.unlink(missing_ok=True)
        started = time.monotonic()
        returncode, output = await _run_tool(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_path),
                "-U",
                USER,
                "--auth=trust",  # listens on 127.0.0.1 only; see the module docstring
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",  # a development cluster; see FAST_UNSAFE_SETTINGS
                "--no-instructions",
            ],
            log_path=self.log_path,
            cwd=self.root,
            env=self._env,
            run_as=self._run_as,
            timeout=120.0,
        )
        if returncode != 0:
            raise LocalPostgresError(f"initdb failed (exit {returncode}); log {self.log_path}:\n{output}")
        logger.info("initialised a PostgreSQL cluster in %s (%.1fs)", self.data_path, time.monotonic() - started)

    def _socket_dir_for(self, port: int) -> str:
        socket_dir = str(self.root)
        return "" if len(f"{socket_dir}/.s.PGSQL.{port}") > _SOCKET_PATH_MAX else socket_dir

    def _server_argv(self, port: int, durable: bool) -> list[str]:
        socket_dir = self._socket_dir_for(port)
        if not socket_dir:
            logger.info("%s is too long a path for a Unix socket: PostgreSQL listens on TCP only", self.root)
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_path),
            "-p",
            str(port),
            "-k",
            socket_dir,
            "-c",
            f"listen_addresses={HOST}",
        ]
        for setting in () if durable else FAST_UNSAFE_SETTINGS:
            argv += ["-c", setting]
        return argv

    @classmethod
    async def _launch(cls, template: LocalPostgres, port: int, deadline: float, durable: bool) -> LocalPostgres:
        process, log_offset = spawn_logged(
            template._server_argv(port, durable),
            template.log_path,
            template.root,
            run_as=template._run_as,
            env=template._env,
            parent_death_signal=signal.SIGINT,  # PostgreSQL's fast shutdown
        )
        server = cls(
            bin_dir=template.bin_dir,
            root=template.root,
            port=port,
            pid=process.pid,
            process=process,
            run_as=template._run_as,
            env=template._env,
        )
        started = time.monotonic()
        try:
            await server._wait_ready(deadline, log_offset)
        except BaseException:
            await server.stop()
            raise
        logger.info(
            "PostgreSQL %s on %s:%d (pid %d, data %s, ready in %.1fs)",
            template.bin_dir,
            HOST,
            port,
            server.pid,
            server.data_path,
            time.monotonic() - started,
        )
        return server

    async def _wait_ready(self, deadline: float, log_offset: int) -> None:
        """Until postmaster.pid says "ready" and the port accepts; the child must stay alive."""
        while True:
            if self._process is not None and self._process.poll() is not None:
                tail = log_tail(self.log_path, log_offset)
                message = (
                    f"PostgreSQL ({self.bin_dir / 'postgres'}) exited with code {self._process.returncode} "
                    f"while starting; log {self.log_path}:\n{tail}"
                )
                raise (_PortInUseError if is_port_in_use_message(tail) else LocalPostgresError)(message)
            if await self._accepting():
                return
            if time.monotonic() >= deadline:
                raise LocalPostgresError(
                    f"PostgreSQL on port {self.port} was not ready in time; "
                    f"log {self.log_path}:\n{log_tail(self.log_path, log_offset)}"
                )
            await asyncio.sleep(0.05)

    async def _accepting(self) -> bool:
        info = _PostmasterPid.read(self.data_path / "postmaster.pid")
        ready = info is not None and info.pid == self.pid and info.status == "ready"
        return ready and await port_accepts(self.port)

    @property
    def _database_marker(self) -> Path:
        return self.root / f"{DATABASE}-database-created"

    async def _ensure_database(self, timeout: float) -> None:
        if self._database_marker.exists():
            return
        returncode, output = await _run_tool(
            [str(self.bin_dir / "createdb"), "-h", HOST, "-p", str(self.port), "-U", USER, "-w", DATABASE],
            log_path=self.log_path,
            cwd=self.root,
            env=self._env,
            run_as=None,  # a client: it may run as root
            timeout=timeout,
        )
        if returncode != 0 and "already exists" not in output:
            raise LocalPostgresError(f"createdb {DATABASE} failed (exit {returncode}); log {self.log_path}:\n{output}")
        self._database_marker.write_text(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")

    async def _install_index_companions(self, timeout: float) -> None:
        """GIN companions for FerretDB's btree indexes, so its pushed-down filters use an index
        (``acs.localpg_indexes``). Idempotent: run at every start, it also backfills."""
        script = self.root / "index-companions.sql"
        script.write_text(COMPANION_SQL)
        started = time.monotonic()
        returncode, output = await _run_tool(
            [
                str(self.bin_dir / "psql"),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                USER,
                "-w",
                "-d",
                DATABASE,
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-f",
                str(script),
            ],
            log_path=self.log_path,
            cwd=self.root,
            env=self._env,
            run_as=None,  # a client: it may run as root
            timeout=timeout,
        )
        if returncode != 0:
            raise LocalPostgresError(
                f"installing the index companions failed (exit {returncode}); log {self.log_path}:\n{output}"
            )
        logger.info("GIN index companions installed in %.2fs", time.monotonic() - started)

    @classmethod
    async def _adopt_or_clean(
        cls, bin_dir: Path, root: Path, run_as: RunAs | None, env: Mapping[str, str]
    ) -> LocalPostgres | None:
        data_path = root / "data"
        info = _PostmasterPid.read(data_path / "postmaster.pid")
        if info is None:
            return None
        if not runs_on(info.pid, data_path):
            if process_alive(info.pid):  # the pid now runs something else: PostgreSQL would refuse to start
                logger.info(
                    "removing stale %s (pid %d runs something else now)", data_path / "postmaster.pid", info.pid
                )
                (data_path / "postmaster.pid").unlink(missing_ok=True)
            # else: PostgreSQL checks and replaces a stale pid file itself (and its shared memory key in it)
            return None
        left = cls(bin_dir=bin_dir, root=root, port=info.port, pid=info.pid, process=None, run_as=run_as, env=env)
        if await left._accepting():
            logger.warning("reusing PostgreSQL left running by an earlier run: pid %d, port %d", left.pid, left.port)
            return left
        logger.warning("stopping PostgreSQL left running by an earlier run (pid %d, %s)", left.pid, info.status)
        await left.stop()
        return None

    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return runs_on(self.pid, self.data_path)

    async def stop(self, grace: float = 30.0) -> None:
        """``pg_ctl stop -m fast``; signals if that fails. Idempotent."""
        if not self.running():
            if self._process is not None:
                self._process.poll()
            return
        deadline = time.monotonic() + grace
        with contextlib.suppress(LocalPostgresError, OSError):
            returncode, output = await _run_tool(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_path),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    f"{grace:.0f}",
                ],
                log_path=self.log_path,
                cwd=self.root,
                env=self._env,
                run_as=self._run_as,
                timeout=grace + 5,
            )
            if returncode != 0:
                logger.warning(
                    "pg_ctl stop failed (exit %d): %s; signalling PostgreSQL (pid %d)", returncode, output, self.pid
                )
        if not await self._wait_exit(min(deadline, time.monotonic() + 5.0)):
            self._signal(signal.SIGINT)  # what pg_ctl -m fast sends
            if not await self._wait_exit(max(deadline, time.monotonic() + 5.0)):
                logger.warning("PostgreSQL (pid %d) did not stop within %.0fs; killing it", self.pid, grace)
                self._signal(signal.SIGKILL)
                if not await self._wait_exit(time.monotonic() + 5.0):
                    raise LocalPostgresError(f"PostgreSQL (pid {self.pid}) survived SIGKILL")
        logger.info("stopped PostgreSQL (pid %d)", self.pid)


def reachable(directory: Path, who: RunAs) -> bool:
    try:
        check_reachable(directory, who)
    except PostgresUnavailableError:
        return False
    return True


def cluster_root(root: Path, run_as: RunAs | None, env: Mapping[str, str] | None = None) -> Path:
    """Where the cluster asked for at ``root`` lives: ``root`` itself when PostgreSQL's user can
    reach it, else a directory of its own under ``ACS_PG_HOME`` (default ``/var/lib/acs/postgresql``).

    As root, PostgreSQL runs as ``postgres``, which cannot enter a checkout under a home of mode
    0700 (``/root/acs/.acs-data``): its cluster then lives outside that tree, one per data dir
    (named by a digest of the data dir's path), so the fast database is used from any directory.
    """
    root = root.resolve()
    parent = next((p for p in [root.parent, *root.parent.parents] if p.exists()), Path("/"))
    if run_as is None or reachable(parent, run_as):
        return root
    home = Path((env if env is not None else os.environ).get(PG_HOME_ENV) or DEFAULT_PG_HOME)
    return home / hashlib.sha256(str(root).encode()).hexdigest()[:16]


def _make_searchable(home: Path) -> None:
    """Create ``home`` and its missing parents searchable by all (0711), as /var/lib is."""
    for directory in [*reversed(home.parents), home]:
        if not directory.exists():
            directory.mkdir(mode=0o711)
            directory.chmod(0o711)  # the umask may have taken bits away


def prepare_root(root: Path, run_as: RunAs | None, env: Mapping[str, str] | None = None) -> Path:
    """Create the cluster's directory (owned by ``run_as`` when given, mode 0700), reachable by
    ``run_as``: ``root``, or its place under ``ACS_PG_HOME`` (:func:`cluster_root`)."""
    wanted = root.resolve()
    root = cluster_root(wanted, run_as, env)
    if root != wanted:
        _make_searchable(root.parent)
        logger.info("PostgreSQL's user cannot reach %s: its cluster lives in %s", wanted, root)
        wanted.parent.mkdir(parents=True, exist_ok=True)
        (wanted.parent / (wanted.name + ".location")).write_text(f"{root}\n")
    root.mkdir(parents=True, exist_ok=True)
    if run_as is not None:
        check_reachable(root.parent, run_as)
        st = root.stat()
        if (st.st_uid, st.st_gid) != (run_as.uid, run_as.gid):
            os.chown(root, run_as.uid, run_as.gid)
    root.chmod(0o700)  # PostgreSQL wants its socket directory and data private
    return root


async def stop_leftover(root: Path, env: Mapping[str, str] | None = None) -> None:
    """Stop a cluster that an earlier run left under ``root`` (resolved), if any: PostgreSQL is not wanted now."""
    env = os.environ if env is None else env
    bin_dir: Path | None = None
    run_as: RunAs | None = None
    with contextlib.suppress(LocalPostgresError):
        bin_dir = find_pg_bin_dir(env)
        run_as = run_as_for_postgres()
    root = cluster_root(root, run_as, env)
    data_path = root / "data"
    info = _PostmasterPid.read(data_path / "postmaster.pid")
    if info is None or not runs_on(info.pid, data_path):
        return
    left = LocalPostgres(
        bin_dir=bin_dir or Path("/nonexistent"),  # without pg_ctl, stop() signals the server itself
        root=root,
        port=info.port,
        pid=info.pid,
        process=None,
        run_as=run_as,
        env=env,
    )
    logger.warning("stopping PostgreSQL left running by an earlier run (pid %d): not used now", info.pid)
    await left.stop()
