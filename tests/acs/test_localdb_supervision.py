"""`acs serve` on its local database (issue 11, item 12): a database part that dies is restarted,
and a killed `acs serve` takes its database down with it. Real processes: `acs serve` with no
ACS_MONGODB_URI, FerretDB over PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from acs import localpg
from acs.localdb import PID_FILE_NAME, LocalDatabaseError, find_server_binary
from tests.support.mongo import database_temp_dir
from tests.support.processes import AcsProcess, start_serve, wait_until

try:
    USES_FERRETDB = find_server_binary().kind == "ferretdb"
except LocalDatabaseError as exc:  # pragma: no cover - only on a machine without scripts/setup run
    pytest.skip(f"no local database server: {exc}", allow_module_level=True)
pytestmark = pytest.mark.skipif(
    not USES_FERRETDB or localpg.find_pg_bin_dir() is None,
    reason="mongod is on PATH (it wins) or PostgreSQL is not installed (run scripts/setup)",
)
RECOVERY = 90.0  # a fresh PostgreSQL and FerretDB on a busy machine; the point is that it comes back


@pytest.fixture
async def serve_on_local_db() -> AsyncIterator[tuple[AcsProcess, Path]]:
    with database_temp_dir("acs-test-supervision-") as data_dir:
        proc = await start_serve(mongodb_uri="", data_dir=data_dir, ready_path="/readyz", ready_timeout=120)
        try:
            yield proc, data_dir
        finally:
            if proc.running():
                await proc.stop(grace=60)
            await proc.kill()


def ferretdb_pid(data_dir: Path) -> int:
    return int(json.loads((data_dir / PID_FILE_NAME).read_text())["pid"])


def postgres_pid(data_dir: Path) -> int:
    return int((data_dir / localpg.SUBDIR / "data" / "postmaster.pid").read_text().split()[0])


async def ready(proc: AcsProcess) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(proc.api_url + "/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_a_dead_database_part_is_restarted(serve_on_local_db: tuple[AcsProcess, Path]) -> None:
    proc, data_dir = serve_on_local_db
    for restarts, (part, pid_of) in enumerate((("FerretDB", ferretdb_pid), ("PostgreSQL", postgres_pid)), 1):
        old = pid_of(data_dir)
        os.kill(old, signal.SIGKILL)

        async def back(pid_of: Callable[[Path], int] = pid_of, old: int = old) -> bool:
            try:
                restarted = pid_of(data_dir) != old
            except (OSError, ValueError, KeyError):
                return False  # being rewritten
            return restarted and await ready(proc)

        await wait_until(back, timeout=RECOVERY, interval=0.5, message=f"{part} restarted and /readyz answers 200")
        assert not localpg.process_alive(old)
        # The ACS's pooled client can see the new FerretDB answer before the supervisor's own
        # readiness check (a fresh client per attempt) does and logs it: wait for the line.
        await wait_until(
            lambda restarts=restarts: restart_lines(proc) >= restarts,
            timeout=RECOVERY,
            interval=0.2,
            message=f"the log says the local database runs again after {part} died",
        )
    log = proc.log_path.read_text(errors="replace")
    assert log.count("the local database stopped:") >= 2, proc.log_tail(400)
    assert proc.running()


def restart_lines(proc: AcsProcess) -> int:
    return proc.log_path.read_text(errors="replace").count("the local database runs again")


async def test_a_killed_acs_serve_takes_its_database_down(serve_on_local_db: tuple[AcsProcess, Path]) -> None:
    proc, data_dir = serve_on_local_db
    children = [ferretdb_pid(data_dir), postgres_pid(data_dir)]
    assert all(localpg.process_alive(pid) for pid in children)
    proc.popen.send_signal(signal.SIGKILL)
    await proc.wait_exit(30)
    await wait_until(
        lambda: not any(localpg.process_alive(pid) for pid in children),
        timeout=30,
        interval=0.1,
        message="FerretDB and PostgreSQL exit with the killed acs serve",
    )
