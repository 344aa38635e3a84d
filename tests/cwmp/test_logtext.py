"""Device text in logs (issue 11 item 10) and DeviceId limits (TR-069 Table 35), pure."""

from __future__ import annotations

import pytest

from cwmp.device_id import identity_problem
from cwmp.logtext import MAX_LOGGED_CHARS, loggable


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("1 BOOT", "1 BOOT"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x1b[2J", "\\x1b[2J"),
        ("x\u2028y\x85z", "x\\u2028y\\x85z"),
        ("back\\n", "back\\\\n"),  # a literal backslash-n cannot pass for an escaped newline
        ("Ünïcödé 日本", "Ünïcödé 日本"),
    ],
)
def test_loggable_keeps_one_line(raw: str, logged: str) -> None:
    assert loggable(raw) == logged
    assert len(loggable(raw).splitlines()) == 1


def test_loggable_cuts_long_text() -> None:
    assert loggable("S" * 1_000_000) == "S" * MAX_LOGGED_CHARS + "..."


@pytest.mark.parametrize(
    ("oui", "product_class", "serial", "problem"),
    [
        ("00E0FC", "", "S1", None),
        ("00E0FC", "P" * 64, "S" * 64, None),
        ("00E0FC1", "", "S1", "OUI is 7 characters long"),
        ("00E0FC", "P" * 65, "S1", "ProductClass is 65 characters long"),
        ("00E0FC", "", "S" * 65, "SerialNumber is 65 characters long"),
        ("", "", "S1", "OUI is empty"),
        ("00E0FC", "", " ", "SerialNumber is empty"),
    ],
)
def test_identity_limits(oui: str, product_class: str, serial: str, problem: str | None) -> None:
    found = identity_problem(oui, product_class, serial)
    assert found == problem if problem is None else problem in str(found)
