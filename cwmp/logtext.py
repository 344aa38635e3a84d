"""Device-supplied text made safe for one log line.

Everything a CPE sends (event codes, cwmp:IDs, file types, usernames, parser complaints quoting
its XML) is attacker-controlled: a newline in an EventCode would start a forged log line, and an
ESC sequence would rewrite the operator's terminal. Every log call that carries device text
passes it through :func:`loggable`, which keeps printable characters and writes every other one
as a Python-style escape (``\\n``, ``\\x1b``, ``\\u2028``), so one record stays one line.
"""

from __future__ import annotations

MAX_LOGGED_CHARS = 256  # a 1 MB SerialNumber must not become a 1 MB log line


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():  # False for C0/C1 controls, line/paragraph separators, unassigned code points
        return char
    return char.encode("unicode_escape").decode("ascii")


def loggable(text: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` as one printable line, at most about ``limit`` characters (``...`` marks a cut)."""
    raw = str(text)
    cut = len(raw) > limit
    escaped = "".join(_escape(char) for char in raw[:limit])
    return escaped + "..." if cut else escaped
