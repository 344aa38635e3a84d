"""scripts/find-python: the interpreter scripts/setup builds .venv on. PYTHON wins when it is usable
and is refused with a reason when it is not; otherwise a distribution's own interpreter (built with
profile-guided and link-time optimisation) comes before one found on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "find-python"
USABLE = "import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))"


def find_python(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if key != "PYTHON"}
    return subprocess.run(["bash", str(SCRIPT)], env={**environ, **env}, capture_output=True, text=True, timeout=60)


def usable(path: str) -> bool:
    return Path(path).exists() and subprocess.run([path, "-c", USABLE], capture_output=True, timeout=60).returncode == 0


def test_a_usable_python_named_by_the_environment_is_the_choice() -> None:
    base = os.path.realpath(sys._base_executable)  # the venv's own interpreter has no ensurepip of its own
    result = find_python(PYTHON=base)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == base


def test_an_unusable_python_named_by_the_environment_is_refused_with_the_reason() -> None:
    result = find_python(PYTHON="/nonexistent/python3.11")
    assert result.returncode == 1 and result.stdout == ""
    assert "PYTHON=/nonexistent/python3.11 is not a Python 3.11+" in result.stderr


def test_the_distribution_s_interpreter_comes_before_one_on_path() -> None:
    result = find_python()
    assert result.returncode == 0, result.stderr
    chosen = result.stdout.strip()
    assert usable(chosen)
    system = [f"/usr/bin/python3.{minor}" for minor in (11, 12, 13)] + ["/usr/bin/python3"]
    first_usable = next((path for path in system if usable(path)), None)
    if first_usable is not None:
        assert chosen == first_usable
