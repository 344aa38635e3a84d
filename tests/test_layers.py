"""The layers in ARCHITECTURE.md, checked on the source: imports point downwards only.

Every module's AST is walked (``import x`` and ``from x import y`` at any depth: imports inside
functions and ``TYPE_CHECKING`` blocks count too), so a shortcut through a late import is caught.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# cwmp/ is sans-IO: no sockets, database, web framework or event loop, and nothing of ours.
CWMP_FORBIDDEN = frozenset(
    {"aiohttp", "pymongo", "motor", "bson", "gridfs", "socket", "asyncio", "acs", "tasks", "schemas"}
)
TASKS_FORBIDDEN = frozenset({"acs", "aiohttp"})
SCHEMAS_FORBIDDEN = frozenset({"acs", "tasks", "cwmp", "aiohttp", "pymongo"})


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import; relative imports resolved against ``package``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module] if node.module else base)
            elif node.module is not None:
                yield node.lineno, node.module


def violations(root: Path, package: str, forbidden: frozenset[str]) -> list[str]:
    found = []
    modules = sorted((root / package).rglob("*.py"))
    assert modules, f"no modules under {root / package}"
    for path in modules:
        dotted = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
        for line, module in imports_in(path.read_text(encoding="utf-8"), dotted):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_cwmp_imports_no_io_library_and_nothing_of_ours() -> None:
    assert violations(ROOT, "cwmp", CWMP_FORBIDDEN) == []


def test_tasks_never_imports_acs() -> None:
    assert violations(ROOT, "tasks", TASKS_FORBIDDEN) == []


def test_schemas_imports_no_package_above_it() -> None:
    assert violations(ROOT, "schemas", SCHEMAS_FORBIDDEN) == []


def test_the_check_catches_late_relative_and_type_checking_imports(tmp_path: Path) -> None:
    (tmp_path / "tasks" / "store").mkdir(parents=True)
    (tmp_path / "tasks" / "store" / "probe.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from acs.services import Services\n"
        "def late():\n"
        "    import acs.app\n"
        "from ..dispatch import Dispatcher\n"
    )
    assert violations(tmp_path, "tasks", TASKS_FORBIDDEN) == [
        "tasks/store/probe.py:3 imports acs.services",
        "tasks/store/probe.py:5 imports acs.app",
    ]
    (tmp_path / "cwmp").mkdir()
    (tmp_path / "cwmp" / "probe.py").write_text("from . import session\nfrom pymongo import errors\n")
    assert violations(tmp_path, "cwmp", CWMP_FORBIDDEN) == ["cwmp/probe.py:2 imports pymongo"]



RECORD_TYPES = frozenset({"Document", "TaskRecord", "SessionRecord"})


def top_level_names(source: str) -> Iterator[str]:
    """Names bound at module level by an assignment or a class statement."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            yield node.name
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        yield from (target.id for target in targets if isinstance(target, ast.Name))


def test_stored_record_types_are_defined_once() -> None:
    """``Document`` and the typed records live in tasks/records.py; every other module imports them."""
    defined = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for package in ("acs", "tasks", "schemas", "cwmp")
        for path in (ROOT / package).rglob("*.py")
        for name in top_level_names(path.read_text(encoding="utf-8"))
        if name in RECORD_TYPES
    )
    assert defined == ["tasks/records.py: Document", "tasks/records.py: SessionRecord", "tasks/records.py: TaskRecord"]
