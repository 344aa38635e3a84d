"""Every benchmark runs end to end in --quick mode, so none of them rots. Timings are not asserted.

Each one runs as `python bench/X.py --quick --no-record` on a database of its own on the test
server (``--mongodb-uri``), and must exit 0 having printed its figures table next to the baseline.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 240.0  # seconds; --quick aims at under 60 s each on a 2-core machine

# Each benchmark and the head of the figures table it prints beside its baseline.
BENCHMARKS = {
    "boot_storm": "| figure | ACS |",
    "boot_storm_profiles": "| figure | ACS with the profile |",
    "steady_state": "| figure | ACS |",
    "task_round_trip": "| figure | ACS |",
    "api_at_scale": "| request | ACS p50 (ms) | ACS p99 (ms) | baseline p99 (ms) |",
    "incident_detection": "| figure | ACS |",
    "jobs_at_scale": "| job | interval (s) |",
}


# Options a benchmark runs with beyond --quick, and a line its table must then have.
EXTRA: dict[str, tuple[list[str], str]] = {
    # The scheduled jobs' runs after the storm (the uvloop stall's symptom would show there).
    "boot_storm": (["--jobs-after", "3"], "| scheduled job runs finished, storm + 3 s after |"),
    # The sessions' own database figures, every job's lease held for the window.
    "steady_state": (["--hold-jobs"], "| scheduled jobs' leases held for the window |"),
    # The requests beside the jobs' steady state: the wait (bounded here), then the window's job runs.
    "api_at_scale": (["--steady", "--steady-timeout", "20", "--hold", "backfill_search"], "Sampling window "),
}


async def run_benchmark(name: str, uri: str | None, work_dir: Path, extra: list[str] | None = None) -> tuple[int, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACS_")}
    database = ["--mongodb-uri", uri] if uri else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "bench" / f"{name}.py"), "--quick", "--no-record", *database, *(extra or []),
        "--work-dir", str(work_dir), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), DEADLINE)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"bench/{name}.py --quick did not finish within {DEADLINE:.0f}s") from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
async def test_benchmark_runs_in_quick_mode(
    name: str,
    mongo_server: MongoServer,
    mongo_client: AsyncMongoClient[MongoDocument],
    tmp_path: Path,
) -> None:
    database = unique_db_name(f"bench_{name}")
    extra, expected = EXTRA.get(name, ([], ""))
    try:
        returncode, output = await run_benchmark(name, mongo_server.uri_for(database), tmp_path, extra)
    finally:
        await mongo_client.drop_database(database)
    assert returncode == 0, f"bench/{name}.py --quick exited {returncode}:\n{output[-4000:]}"
    assert BENCHMARKS[name] in output, output[-4000:]
    assert expected in output, output[-4000:]
    assert "raw figures (JSON)" in output


async def test_baseline_runs_alone_in_quick_mode(tmp_path: Path) -> None:
    returncode, output = await run_benchmark("baseline", None, tmp_path)
    assert returncode == 0, f"bench/baseline.py --quick exited {returncode}:\n{output[-4000:]}"
    assert "| figure | baseline |" in output, output[-4000:]
