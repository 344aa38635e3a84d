"""The event loop ``acs serve`` runs on: uvloop when installed (the default, ``auto``), else asyncio's.

Every database command of a CWMP session goes through several event-loop turns in PyMongo (a
write, a read task and a cancellation watcher, timers); the loop's own Python code (selector
registration, timer handles, callbacks) was about a quarter of the ACS's CPU per session in the
boot storm profile (docs/performance.md). uvloop runs the same loop in C and takes about a fifth
off the ACS's CPU per session. It is a dependency on Linux and macOS (it has no Windows build);
``event_loop = "asyncio"`` (``ACS_EVENT_LOOP=asyncio``) is the way back to asyncio's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]


class EventLoopUnavailable(RuntimeError):
    pass


def loop_name(choice: EventLoopChoice) -> str:
    """The loop ``choice`` gives on this machine: "uvloop" or "asyncio"."""
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401 - only whether it imports
    except ImportError:
        if choice == "uvloop":
            raise EventLoopUnavailable("event_loop is uvloop, but uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def run(coroutine: Coroutine[Any, Any, T], choice: EventLoopChoice) -> T:
    """``asyncio.run`` on the loop ``choice`` names."""
    if loop_name(choice) == "uvloop":
        import uvloop

        result: T = uvloop.run(coroutine)
        return result
    return asyncio.run(coroutine)
