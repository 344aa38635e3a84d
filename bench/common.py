"""What every benchmark shares: processes, sampling, percentiles, the machine, the record.

A benchmark starts what it needs as real processes (``acs serve`` with its own data directory and
local database, or on ``--mongodb-uri``; the fleet runner; the bare baseline), samples CPU and
memory of the ACS and of the database through /proc, prints its figures with the ratio to the
baseline measured in the same run, and appends them to docs/performance.md.

Every wait polls with a deadline; nothing sleeps a fixed time to "let things settle".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RECORD = REPO / "docs" / "performance.md"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
DB_PROGRAMS = ("ferretdb", "postgres", "mongod")
LOG_TAIL_LINES = 40


# -- command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Full and --quick defaults of a benchmark's knobs."""

    devices: int
    quick_devices: int
    duration: float
    quick_duration: float


def parser(description: str, sizes: Sizes) -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(description=description)
    parsed.add_argument("--quick", action="store_true", help="small and short (CI: proves the benchmark runs)")
    parsed.add_argument("--devices", type=int, default=None, help=f"fleet size (default {sizes.devices}, "
                        f"--quick {sizes.quick_devices})")
    parsed.add_argument("--duration", type=float, default=None, help=f"seconds of measurement (default "
                        f"{sizes.duration:g}, --quick {sizes.quick_duration:g})")
    parsed.add_argument("--no-record", action="store_true", help="do not append the result to docs/performance.md")
    parsed.add_argument("--mongodb-uri", default=None,
                        help="use this database (a fresh database name is best) instead of a local one per run")
    parsed.add_argument("--workers", type=int, default=1, help="acs serve --workers (default 1)")
    parsed.add_argument("--work-dir", type=Path, default=None, help="keep data and logs here (default: a temp dir)")
    return parsed


def add_event_loop_option(parsed: argparse.ArgumentParser) -> None:
    """``--event-loop``, for the benchmarks that pass ``acs_env(args)`` to ``start_acs``."""
    parsed.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default=None,
                        help="acs serve's ACS_EVENT_LOOP (default: its own default, auto)")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (``uptime``'s figures), for the record."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def acs_env(args: argparse.Namespace) -> dict[str, str]:
    """The ``acs serve`` settings the common options ask for (``--event-loop``)."""
    return {"ACS_EVENT_LOOP": args.event_loop} if getattr(args, "event_loop", None) else {}


_EVENT_LOOP = re.compile(r"serving CWMP on \S+ and the API on \S+[^(]* \(event loop: (\w+)\)")


def event_loop_from_log(text: str) -> str | None:
    """The event loop ``acs serve`` said it runs on (its last start's, as for the database)."""
    found = _EVENT_LOOP.findall(text)
    return found[-1] if found else None


_SKIPPED_RUN = re.compile(r'Execution of job "[^"]*" skipped: maximum number of running instances')


async def scheduled_job_runs(db_uri: str, since: datetime, log_text: str) -> dict[str, Any]:
    """The scheduled jobs' runs recorded since ``since`` (``job_runs``: a run is recorded when it
    ends), per job, and the ticks APScheduler skipped because the job's previous run was still going
    (its log line): a job whose runs stall shows skipped ticks and no recorded runs."""
    from tasks.store.db import connect

    database = connect(db_uri, app_name="bench")
    try:
        runs = [run async for run in database.db["job_runs"].find({"started_at": {"$gte": since}})]
    finally:
        await database.client.close()
    per_job: dict[str, dict[str, Any]] = {}
    for run in runs:
        job = per_job.setdefault(run["job"], {"runs": 0, "errors": 0, "max_ms": 0})
        job["runs"] += 1
        job["errors"] += run.get("outcome") != "ok"
        job["max_ms"] = max(job["max_ms"], int(run.get("duration_ms", 0)))
    return {"jobs": dict(sorted(per_job.items())), "runs": len(runs),
            "skipped_ticks": len(_SKIPPED_RUN.findall(log_text))}


def sized(args: argparse.Namespace, sizes: Sizes) -> tuple[int, float]:
    devices = args.devices if args.devices is not None else (sizes.quick_devices if args.quick else sizes.devices)
    duration = args.duration if args.duration is not None else (
        sizes.quick_duration if args.quick else sizes.duration)
    return devices, duration


@contextlib.contextmanager
def work_dir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        yield args.work_dir
        return
    with tempfile.TemporaryDirectory(prefix=f"acs-bench-{name}-") as path:
        yield Path(path)


def command_line() -> str:
    return " ".join(shlex.quote(part) for part in [Path(sys.executable).name, *sys.argv])


# -- waiting -----------------------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], Awaitable[Any]] | Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll ``predicate`` (sync or async) until it is truthy; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as response,
        ):
            return response.status < 300
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


# -- child processes ---------------------------------------------------------------------------


def _child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(overrides)
    return env


def acs_command() -> list[str]:
    script = Path(sys.executable).with_name("acs")
    return [str(script)] if script.exists() else [sys.executable, "-m", "acs.cli"]


@dataclass
class Child:
    """A process we started, its output in ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"<no log: {exc}>"

    def check_alive(self) -> None:
        if not self.running():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; log {self.log_path}:\n"
                               f"{self.log_tail()}")

    async def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)
        return self.popen.returncode

    async def stop(self, grace: float = 30.0) -> int | None:
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
        code = await self.wait_exit(grace)
        if code is None:
            self.popen.kill()
            code = await self.wait_exit(10.0)
        return code


def start_child(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
                stdout_path: Path | None = None) -> Child:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        out = stdout_path.open("wb") if stdout_path is not None else log
        try:
            popen = subprocess.Popen(list(argv), env=_child_env(env or {}), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=log, cwd=REPO)
        finally:
            if stdout_path is not None:
                out.close()
    return Child(name, list(argv), log_path, popen)


# -- acs serve ---------------------------------------------------------------------------------


@dataclass
class AcsServer:
    child: Child
    data_dir: Path
    api_url: str
    cwmp_url: str
    db_uri: str
    backend: str

    @property
    def pid(self) -> int:
        return self.child.pid


_LOCAL_DB = re.compile(r"using the local development (\S+) at (mongodb://\S+?/?)(?:\s|$)")
_LOCAL_DETAIL = re.compile(r"local database: (.+?) at mongodb://")


def backend_from_log(text: str) -> tuple[str, str] | None:
    """(backend description, database URI) from what ``acs serve`` logged about its local database.

    The last start's: a kept ``--work-dir`` appends each run's log to the same file, and an earlier
    run's port may now be another server's (a reused database's run wrote its token and console user
    there, and its login was refused)."""
    starts = list(_LOCAL_DB.finditer(text))
    if not starts:
        return None
    found = starts[-1]
    kind, uri = found.group(1), found.group(2)
    details = list(_LOCAL_DETAIL.finditer(text))
    words = details[-1].group(1).split() if details else []
    description = f"local {kind}" + (f" ({words[0]})" if words and words[0] != kind else "")
    if "postgres" in text.lower() and "postgres" not in description:
        description += " on PostgreSQL"
    elif kind == "ferretdb" and "sqlite" in text.lower():
        description += " on SQLite"
    return description, uri.rstrip("/") + "/acs"


async def describe_database(uri: str) -> str:
    """What a configured URI points at: MongoDB or FerretDB and its version (``buildInfo``)."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        info = await client.admin.command("buildInfo")
    finally:
        await client.close()
    if "ferretdbVersion" in info or "ferretdb" in json.dumps(info, default=str).lower():
        backend = info.get("ferretdbFeatures", {}).get("backend") if isinstance(info.get("ferretdbFeatures"),
                                                                                  dict) else None
        return f"FerretDB {info.get('ferretdbVersion', info.get('version'))} at --mongodb-uri" + (
            f" on {backend}" if backend else "")
    return f"MongoDB {info.get('version')} at --mongodb-uri"


async def start_acs(
    directory: Path,
    *,
    mongodb_uri: str | None = None,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 120.0,
) -> AcsServer:
    """``acs serve`` on free loopback ports; without ``mongodb_uri`` it starts its local database."""
    data_dir = directory / "acs-data"
    cwmp_port, api_port = free_port(), free_port()
    settings = {
        "ACS_DATA_DIR": str(data_dir),
        "ACS_CWMP_LISTEN": f"127.0.0.1:{cwmp_port}",
        "ACS_API_LISTEN": f"127.0.0.1:{api_port}",
        "ACS_WORKERS": str(workers),
        "ACS_LOG_LEVEL": "WARNING" if mongodb_uri else "INFO",  # INFO: the local database says what it is
        **({"ACS_MONGODB_URI": mongodb_uri} if mongodb_uri else {}),
        **(env or {}),
    }
    child = start_child("acs serve", [*acs_command(), "serve"], directory / "acs-serve.log", settings)
    api_url = f"http://127.0.0.1:{api_port}"

    async def ready() -> bool:
        child.check_alive()
        return await http_ok(api_url + "/healthz")

    try:
        await wait_until(ready, ready_timeout, "acs serve answers /healthz", interval=0.2)
    except BaseException:
        await child.stop(10)
        raise
    if mongodb_uri:
        backend, db_uri = await describe_database(mongodb_uri), mongodb_uri
    else:
        found = backend_from_log(child.log_path.read_text(errors="replace"))
        if found is None:
            await child.stop(10)
            raise RuntimeError(f"acs serve did not log its local database; log:\n{child.log_tail()}")
        backend, db_uri = found
    return AcsServer(child, data_dir, api_url, f"http://127.0.0.1:{cwmp_port}/", db_uri, backend)


async def create_token(server: AcsServer, role: str = "operator", name: str = "bench") -> str:
    """``acs token create`` against the server's own database; returns the token text."""
    process = await asyncio.create_subprocess_exec(
        *acs_command(), "token", "create", "--name", name, "--role", role,
        env=_child_env({"ACS_MONGODB_URI": server.db_uri, "ACS_DATA_DIR": str(server.data_dir)}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    if process.returncode != 0:
        raise RuntimeError(f"acs token create failed ({process.returncode}): {err.decode(errors='replace')}")
    return out.decode().strip().splitlines()[-1]


# -- the fleet runner and the baseline as processes --------------------------------------------


@dataclass
class FleetProcess:
    child: Child
    status_path: Path
    report_path: Path

    def status(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    async def wait_status(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                          what: str) -> dict[str, Any]:
        """Until the runner's status satisfies ``predicate``; returns that status."""

        def done() -> dict[str, Any] | None:
            self.child.check_alive()
            status = self.status()
            return status if status and predicate(status) else None

        result: dict[str, Any] = await wait_until(done, timeout, what, interval=0.25)
        return result

    async def wait_bootstrapped(self, devices: int, timeout: float) -> bool:
        """Until ``devices`` devices finished their BOOTSTRAP session; False at the deadline."""
        try:
            await self.wait_status(lambda s: s.get("bootstrap_ok", 0) >= devices, timeout,
                                   f"{devices} devices bootstrapped")
        except TimeoutError:
            return False
        return True

    def mark_window(self) -> None:
        """Sessions started from now on are also summarised apart (the report's ``window``)."""
        self.child.popen.send_signal(signal.SIGUSR1)

    async def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop the runner (SIGTERM) and read its final report ({} and a warning if it left none)."""
        await self.child.stop(timeout)
        try:
            report: dict[str, Any] = json.loads(self.report_path.read_text())
        except (OSError, ValueError) as exc:
            print(f"warning: {self.child.name} left no report ({exc}); log:\n{self.child.log_tail()}",
                  file=sys.stderr)
            return {}
        return report


def start_fleet(directory: Path, name: str, url: str, devices: int, *, ramp: float = 1e9, max_sessions: int = 100,
                interval: int = 300, boot_seconds: float = 0.0, cr_port: int | None = None,
                seed: int = 1) -> FleetProcess:
    """bench/fleet_runner.py in its own process (the simulator must not share the ACS's core)."""
    status, report = directory / f"{name}.status.json", directory / f"{name}.report.json"
    argv = [sys.executable, str(BENCH / "fleet_runner.py"), "--url", url, "--devices", str(devices),
            "--ramp", str(ramp), "--max-sessions", str(max_sessions), "--interval", str(interval),
            "--boot-seconds", str(boot_seconds), "--seed", str(seed),
            "--status-file", str(status), "--report-file", str(report)]
    if cr_port is not None:
        argv += ["--cr-port", str(cr_port)]
    return FleetProcess(start_child(f"fleet {name}", argv, directory / f"{name}.log"), status, report)


@dataclass
class BaselineServer:
    child: Child
    cwmp_url: str
    api_url: str

    @property
    def pid(self) -> int:
        return self.child.pid


async def start_baseline(directory: Path, periodic_interval: int = 300) -> BaselineServer:
    """bench/baseline.py --serve: the bare aiohttp + lxml handler, on free ports."""
    cwmp_port, api_port = free_port(), free_port()
    argv = [sys.executable, str(BENCH / "baseline.py"), "--serve", "--cwmp-port", str(cwmp_port), "--api-port",
            str(api_port), "--periodic-interval", str(periodic_interval)]
    child = start_child("baseline", argv, directory / "baseline.log")
    api_url = f"http://127.0.0.1:{api_port}"

    async def ready() -> bool:
        child.check_alive()
        return await http_ok(api_url + "/healthz")

    await wait_until(ready, 30, "baseline answers /healthz", interval=0.1)
    return BaselineServer(child, f"http://127.0.0.1:{cwmp_port}/", api_url)


# -- measuring ---------------------------------------------------------------------------------


SESSION_ENDED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \S+ \S+ \[(\d+)\] session \S+ for .* ended after "
                           r"([\d.]+) s")


def session_seconds_by_process(log_text: str, start: float, end: float) -> dict[str, dict[str, float]]:
    """Per ACS process (pid), the sessions its log says ended between ``start`` and ``end`` (epoch
    seconds; the log's times are local) and how long the ACS held them: p50/p99 in ms."""
    held: dict[str, list[float]] = {}
    for line in log_text.splitlines():
        found = SESSION_ENDED.match(line)
        if found is None:
            continue
        at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        if start <= at <= end:
            held.setdefault(found.group(2), []).append(float(found.group(3)))
    return {pid: {"sessions": len(values), **{k: v for k, v in percentiles(values).items() if k in ("p50", "p99")}}
            for pid, values in sorted(held.items())}


def percentiles(values: Iterable[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p95/p99/max of ``values`` (seconds), times ``scale`` (default: milliseconds)."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * scale, 1)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1] * scale, 1)}


def _read_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime+stime ticks, rss pages) of ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def process_tree(root: int) -> dict[int, tuple[int, int]]:
    """{pid: (cpu ticks, rss pages)} of ``root`` and all its descendants."""
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _read_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, tuple[int, int]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[pid] = stats[pid][1], stats[pid][2]
            todo.extend(children.get(pid, []))
    return found


def is_database(pid: int) -> bool:
    command = _cmdline(pid).lower()
    return any(program in command.split(" ")[0] for program in DB_PROGRAMS)


@dataclass
class Usage:
    """CPU (in cores, 1.0 = one core busy) and resident memory of a group of processes."""

    cpu_cores: float = 0.0
    rss_mb_max: float = 0.0
    rss_mb_last: float = 0.0
    rss_mb_max_per_process: float = 0.0
    seconds: float = 0.0  # the span sampled: cpu_cores x seconds is the CPU time spent

    def as_dict(self) -> dict[str, float]:
        return {"cpu_cores": round(self.cpu_cores, 3), "seconds": round(self.seconds, 2),
                "cpu_seconds": round(self.cpu_cores * self.seconds, 2),
                "rss_mb_max": round(self.rss_mb_max, 1),
                "rss_mb_last": round(self.rss_mb_last, 1),
                "rss_mb_max_per_process": round(self.rss_mb_max_per_process, 1)}


@dataclass
class Sampler:
    """Samples named process trees every ``period`` seconds: the ACS apart from its database."""

    roots: dict[str, int]
    period: float = 0.5
    _start: dict[str, tuple[float, int]] = field(default_factory=dict)
    _usage: dict[str, Usage] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def _groups(self) -> dict[str, dict[int, tuple[int, int]]]:
        groups: dict[str, dict[int, tuple[int, int]]] = {}
        for name, root in self.roots.items():
            tree = process_tree(root)
            database = {pid: value for pid, value in tree.items() if pid != root and is_database(pid)}
            groups[name] = {pid: value for pid, value in tree.items() if pid not in database}
            if database:
                groups[f"{name} database"] = database
        return groups

    def _sample(self, now: float) -> None:
        for name, tree in self._groups().items():
            ticks = sum(cpu for cpu, _ in tree.values())
            rss = sum(pages for _, pages in tree.values()) * PAGE_SIZE / 2**20
            per_process = max((pages for _, pages in tree.values()), default=0) * PAGE_SIZE / 2**20
            start = self._start.setdefault(name, (now, ticks))
            usage = self._usage.setdefault(name, Usage())
            elapsed = now - start[0]
            usage.cpu_cores = (ticks - start[1]) / CLOCK_TICKS / elapsed if elapsed > 0 else 0.0
            usage.seconds = elapsed
            usage.rss_mb_max = max(usage.rss_mb_max, rss)
            usage.rss_mb_last = rss
            usage.rss_mb_max_per_process = max(usage.rss_mb_max_per_process, per_process)

    async def _run(self) -> None:
        while True:
            self._sample(time.monotonic())
            await asyncio.sleep(self.period)

    def start(self) -> Sampler:
        self._sample(time.monotonic())
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> dict[str, dict[str, float]]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample(time.monotonic())
        return {name: usage.as_dict() for name, usage in self._usage.items()}


# -- database counters -------------------------------------------------------------------------

# Not the ACS's work: the driver's handshakes and monitoring, and this module's own reads.
UNCOUNTED_COMMANDS = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo",
                                "serverStatus", "saslStart", "saslContinue"})


@dataclass
class DatabaseCounters:
    """Commands the database server counted (``serverStatus``) and, on the local PostgreSQL
    cluster, committed PostgreSQL transactions (``pg_stat_database.xact_commit``, all databases).

    PostgreSQL 15 publishes a backend's counts at most once a second while busy: a reading can lag
    by about a second of transactions, small against a run of a minute or more.
    """

    db_uri: str
    data_dir: Path | None = None

    def _pg_port(self) -> int | None:
        if self.data_dir is None:
            return None
        from acs import localpg

        # As root the cluster may live under ACS_PG_HOME, not in the data dir (``cluster_root``).
        root = localpg.cluster_root(self.data_dir / "postgresql", localpg.run_as_for_postgres())
        pid_file = root / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, IndexError, ValueError):
            return int(pid_file.read_text().splitlines()[3])
        return None

    async def _xact_commit(self) -> int | None:
        port = self._pg_port()
        if port is None:
            return None
        process = await asyncio.create_subprocess_exec(
            "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "acs", "-d", "postgres", "-Atc",
            "SELECT sum(xact_commit) FROM pg_stat_database", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _ = await process.communicate()
        text = out.decode().strip()
        return int(text) if process.returncode == 0 and text.isdigit() else None

    async def read(self) -> dict[str, int | None]:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.db_uri, serverSelectionTimeoutMS=5000)
        try:
            status = await client.admin.command("serverStatus")
        finally:
            await client.close()
        counted = (status.get("metrics") or {}).get("commands") or {}
        by_name = {f"command {name}": int(value.get("total", 0)) for name, value in counted.items()
                   if name not in UNCOUNTED_COMMANDS and isinstance(value, dict)}
        return {"commands": sum(by_name.values()), **by_name, "xact_commit": await self._xact_commit()}


def per_session(before: Mapping[str, int | None], after: Mapping[str, int | None],
                usage: Mapping[str, Mapping[str, float]], sessions: int) -> dict[str, Any]:
    """Database commands (also by command name), PostgreSQL transactions and CPU milliseconds per
    session over a run."""
    def delta(key: str) -> float | None:
        first, last = before.get(key), after.get(key)
        if first is None or last is None or sessions <= 0:
            return None
        return round((last - first) / sessions, 1)

    def cpu_ms(group: str) -> float | None:
        spent = usage.get(group, {}).get("cpu_seconds")
        return None if spent is None or sessions <= 0 else round(spent * 1000 / sessions, 2)

    # Which commands: the server's counts by command name (``serverStatus``), those that moved.
    by_name = {key.removeprefix("command "): round(((after[key] or 0) - (before.get(key) or 0)) / sessions, 2)
               for key in after if key.startswith("command ") and sessions > 0}
    return {"db_commands": delta("commands"), "pg_transactions": delta("xact_commit"),
            "acs_cpu_ms": cpu_ms("server"), "db_cpu_ms": cpu_ms("server database"),
            "simulator_cpu_ms": cpu_ms("simulator"),
            "db_commands_by_name": {name: value for name, value in sorted(by_name.items()) if value}}


def per_session_rows(acs: Mapping[str, Any], floor: Mapping[str, Any]) -> list[list[object]]:
    """Table rows of ``per_session`` figures, the ACS's beside the baseline's."""
    labels = [("db_commands", "database commands / session"), ("pg_transactions", "PostgreSQL transactions / session"),
              ("acs_cpu_ms", "server CPU ms / session"), ("db_cpu_ms", "database CPU ms / session")]
    a, b = acs.get("per_session") or {}, floor.get("per_session") or {}
    rows: list[list[object]] = []
    for key, label in labels:
        mine, bare = a.get(key), b.get(key)
        rows.append([label, "-" if mine is None else mine, "-" if bare is None else bare,
                     ratio(mine, bare) if mine is not None and bare else ""])
    named = a.get("db_commands_by_name") or {}
    if named:
        rows.append(["database commands / session by name",
                     ", ".join(f"{name} {value}" for name, value in named.items()), "-", ""])
    return rows


def storm_rows(storm: Mapping[str, Any], other: Mapping[str, Any]) -> list[list[object]]:
    """Table rows of two boot storms side by side (``bench/boot_storm.py``'s figures): rate and
    latency with their ratio, failures, completion, per-session costs, CPU and memory by process group."""
    def row(label: str, a: float, b: float) -> list[object]:
        return [label, a, b, ratio(a, b)]

    rows: list[list[object]] = [
        row("bootstrap sessions/s", storm["sessions_per_second"], other["sessions_per_second"]),
        *(row(f"latency {q} (ms)", storm["latency_ms"].get(q, 0), other["latency_ms"].get(q, 0))
          for q in ("p50", "p95", "p99")),
        ["failed sessions", storm["failed_sessions"], other["failed_sessions"], ""],
        ["devices bootstrapped", f"{storm['bootstrapped']}/{storm['devices']}",
         f"{other['bootstrapped']}/{other['devices']}", ""],
        *per_session_rows(storm, other),
    ]
    for group in ("server", "server database", "simulator"):
        a, b = storm["usage"].get(group), other["usage"].get(group)
        if a or b:
            rows.append([f"{group} CPU (cores) / max RSS (MB)",
                         f"{a['cpu_cores']} / {a['rss_mb_max']}" if a else "-",
                         f"{b['cpu_cores']} / {b['rss_mb_max']}" if b else "-", ""])
    return rows


# -- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    return {
        "uname": " ".join(platform.uname()),
        "cpu": model or platform.processor(),
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
    }


def ratio(value: float, floor: float) -> str:
    """``value`` as a fraction of the baseline ``floor`` (same unit)."""
    return f"{value / floor:.2f}x" if floor else "n/a"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def record(args: argparse.Namespace, title: str, backend: str, body: str, figures: Mapping[str, Any]) -> None:
    """Print the result; unless --no-record, append it to docs/performance.md."""
    info = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if args.quick else "full"
    section = "\n".join([
        f"### {title} ({mode}, {when})",
        "",
        f"- command: `{command_line()}`",
        f"- database: {backend}",
        f"- machine: {info['cpu']}, {info['nproc']} CPUs, {info['memory']}, Python {info['python']}",
        f"- uname: `{info['uname']}`",
        "",
        body.strip(),
        "",
        "<details><summary>raw figures (JSON)</summary>",
        "",
        "```json",
        json.dumps(figures, indent=1, sort_keys=True, default=str),
        "```",
        "",
        "</details>",
        "",
    ])
    print(section)
    if args.no_record:
        return
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    existing = RECORD.read_text() if RECORD.exists() else "# Performance\n"
    marker = "\n## Results\n"
    if marker not in existing:
        existing = existing.rstrip("\n") + "\n" + marker
    RECORD.write_text(existing.rstrip("\n") + "\n\n" + section)
    print(f"recorded in {RECORD.relative_to(REPO)}", file=sys.stderr)
