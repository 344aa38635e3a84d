"""Run `acs serve` / `acs sim` as real processes in tests, the way an operator runs them.

Every wait polls with a deadline (no fixed sleeps); every failure shows the tail of the process log.

    proc = await start_serve(mongodb_uri=mongo_server.uri_for("e2e_x"), data_dir=tmp_path)
    ... talk to proc.api_url / proc.cwmp_url ...
    await proc.stop()          # SIGTERM, asserts exit code 0 within the grace period

or use the `acs_serve` fixture from tests/conftest.py, which stops what it started.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

import aiohttp

from acs.localdb import free_port

__all__ = [
    "AcsProcess",
    "acs_command",
    "free_port",
    "http_get_ok",
    "start_process",
    "start_serve",
    "start_sim",
    "wait_until",
]

T = TypeVar("T")

LOG_TAIL_LINES = 80


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T]], timeout: float = ..., interval: float = ..., message: str = ...
) -> T: ...
@overload
async def wait_until(
    predicate: Callable[[], T], timeout: float = ..., interval: float = ..., message: str = ...
) -> T: ...
async def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that value.

    Raises ``TimeoutError`` after ``timeout`` seconds, with ``message`` (or the predicate's name).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"condition not met within {timeout:.1f}s: {what}")
        await asyncio.sleep(interval)


async def http_get_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET ``url`` answers 2xx; False on any connection error or other status."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as response,
        ):
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def acs_command() -> list[str]:
    """argv prefix that runs the `acs` console script of this virtualenv."""
    script = Path(sys.executable).with_name("acs")
    if script.exists():
        return [str(script)]
    on_path = shutil.which("acs")
    if on_path:
        return [on_path]
    return [sys.executable, "-c", "import sys; from acs.cli import main; sys.exit(main())"]


def _child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    # The developer's own ACS_* settings must not leak into a test's server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


@dataclass
class AcsProcess:
    """A child process with its output in ``log_path``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def api_url(self) -> str:
        return self.urls["api"]

    @property
    def cwmp_url(self) -> str:
        return self.urls["cwmp"]

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self, headline: str) -> str:
        return (
            f"{headline}\n  command: {' '.join(self.argv)}\n  log: {self.log_path}\n"
            f"--- last {LOG_TAIL_LINES} lines of the log ---\n{self.log_tail()}\n--- end of log ---"
        )

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)
        return self.popen.returncode

    async def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until GET ``url`` answers 2xx; fail early, with the log, if the process exits."""

        async def ready() -> bool:
            if not self.running():
                raise AssertionError(self.describe(f"{self.name} exited with code {self.popen.returncode}"))
            return await http_get_ok(url)

        try:
            await wait_until(ready, timeout=timeout, interval=0.1, message=f"GET {url} answers 2xx")
        except TimeoutError as exc:
            await self.kill()
            raise AssertionError(self.describe(f"{self.name} not ready: {exc}")) from None

    async def stop(self, grace: float = 20.0, expect_returncode: int | None = 0) -> int:
        """SIGTERM and wait; assert it exits within ``grace`` seconds with ``expect_returncode``."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
        returncode = await self.wait_exit(grace)
        if returncode is None:
            await self.kill()
            raise AssertionError(self.describe(f"{self.name} did not exit within {grace:.0f}s of SIGTERM"))
        if expect_returncode is not None and returncode != expect_returncode:
            raise AssertionError(
                self.describe(f"{self.name} exited with code {returncode}, expected {expect_returncode}")
            )
        return returncode

    async def kill(self) -> None:
        if self.running():
            self.popen.kill()
            await self.wait_exit(10.0)


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
) -> AcsProcess:
    """Start ``argv`` with ``env`` (on top of os.environ less ACS_*), output to ``log_path``."""
    full_env = _child_env(env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv), env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
    return AcsProcess(name=name, argv=list(argv), env=full_env, log_path=log_path, popen=popen)


async def start_serve(
    *,
    mongodb_uri: str,
    data_dir: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ready_path: str = "/healthz",
    ready_timeout: float = 30.0,
) -> AcsProcess:
    """Start `acs serve` on free loopback ports and wait until ``GET <api>/healthz`` answers.

    ``env`` adds or overrides variables (e.g. ``{"ACS_CWMP_AUTH": "digest"}``); the defaults are
    ACS_MONGODB_URI, ACS_CWMP_LISTEN, ACS_API_LISTEN and ACS_DATA_DIR.
    """
    cwmp_port, api_port = free_port(), free_port()
    while api_port == cwmp_port:
        api_port = free_port()
    base = {
        "ACS_MONGODB_URI": mongodb_uri,
        "ACS_CWMP_LISTEN": f"127.0.0.1:{cwmp_port}",
        "ACS_API_LISTEN": f"127.0.0.1:{api_port}",
        "ACS_DATA_DIR": str(data_dir),
    }
    proc = start_process(
        "acs serve",
        [*acs_command(), "serve", *args],
        env={**base, **(env or {})},
        log_path=data_dir / "acs-serve.log",
    )
    proc.urls.update(api=f"http://127.0.0.1:{api_port}", cwmp=f"http://127.0.0.1:{cwmp_port}/")
    await proc.wait_http(proc.api_url + ready_path, timeout=ready_timeout)
    return proc


def huawei_sim_args(acs_url: str, devices: int, seed: int, *extra: str) -> list[str]:
    """`acs sim` arguments for a fleet of Huawei HG8245H ONTs that answer connection requests, quiet."""
    return ["--url", acs_url, "--devices", str(devices), "--profile", "huawei-hg8245", "--seed", str(seed),
            "--cr-listen", f"127.0.0.1:{free_port()}", "--summary-every", "0", *extra]


def start_sim(
    *,
    args: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> AcsProcess:
    """Start `acs sim ARGS...` (its flags are the simulator's own, e.g. the ACS URL and fleet size).

    Readiness depends on what the test checks (devices in the ACS, the simulator's exit code), so
    the caller waits with :func:`wait_until` or :meth:`AcsProcess.wait_exit`.
    """
    return start_process("acs sim", [*acs_command(), "sim", *args], env=dict(env or {}), log_path=log_path)
