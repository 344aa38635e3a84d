"""The event loop of ``acs serve``: uvloop by default where it is installed, asyncio on request, and
what runs on it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from acs import localpg
from acs.config import Settings, load_settings
from acs.eventloop import EventLoopUnavailable, loop_name, run


async def running_loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_acs_serve_runs_on_uvloop_unless_told_otherwise(tmp_path: Path) -> None:
    # uvloop takes about a fifth off the ACS's CPU per session (docs/performance.md); it is a
    # dependency wherever it has a build (pyproject.toml), so "auto" means uvloop there.
    assert Settings(data_dir=tmp_path).event_loop == "auto"
    if sys.platform in ("linux", "darwin"):
        assert loop_name("auto") == "uvloop"


def test_acs_event_loop_asyncio_is_the_way_back(tmp_path: Path) -> None:
    settings = load_settings(environ={"ACS_EVENT_LOOP": "asyncio", "ACS_DATA_DIR": str(tmp_path)})
    assert loop_name(settings.event_loop) == "asyncio"


def test_asyncio_is_used_when_asked_for() -> None:
    assert loop_name("asyncio") == "asyncio"
    assert run(running_loop_module(), "asyncio").startswith("asyncio")


def test_auto_runs_on_uvloop_when_it_is_installed() -> None:
    pytest.importorskip("uvloop")
    assert loop_name("auto") == "uvloop"
    assert run(running_loop_module(), "auto").startswith("uvloop")


def test_without_uvloop_auto_falls_back_and_uvloop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert loop_name("auto") == "asyncio"
    with pytest.raises(EventLoopUnavailable, match="uvloop is not installed"):
        loop_name("uvloop")


def test_postgresql_tools_run_as_their_user_on_uvloop(tmp_path: Path) -> None:
    """As root, PostgreSQL's tools run as the postgres user: uvloop's subprocess support cannot
    start a child as another user, so the local database must not depend on it. What the tool
    printed is what comes back (its log's tail, for error messages), not our header line."""
    pytest.importorskip("uvloop")
    who = localpg.run_as_for_postgres()
    directory = tmp_path / "tool"
    directory.mkdir()
    directory.chmod(0o777)
    if who is not None:
        tmp_path.chmod(0o711)  # pytest's tmp_path is 0700: the tool's user must reach its cwd

    async def tool() -> tuple[int, str]:
        return await localpg._run_tool(
            ["id", "-u"], log_path=directory / "tool.log", cwd=directory, env=dict(os.environ), run_as=who, timeout=30
        )

    returncode, output = run(tool(), "auto")
    assert returncode == 0
    assert output.strip().splitlines()[-1] == str(who.uid if who is not None else os.getuid())
