"""`acs serve` stops cleanly (issue 11, item 12): no error logged for the scheduler's jobs."""

from __future__ import annotations

from tests.conftest import AcsServeFactory


async def test_stop_logs_no_error(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve()
    await proc.stop()
    log = proc.log_tail(400)
    assert "CancelledError" not in log and " ERROR " not in log, log
