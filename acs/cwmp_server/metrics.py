"""Counters of the CWMP endpoint, exposed on ``GET /metrics``."""

from __future__ import annotations

from dataclasses import dataclass

from acs.metrics import Counter, Metrics


@dataclass(frozen=True)
class CwmpMetrics:
    sessions: Counter  # ended sessions by outcome (ok, timeout, protocol_error, lease_lost)
    started: Counter  # started sessions
    events: Counter  # Inform event codes (0 BOOTSTRAP, 1 BOOT, 2 PERIODIC, ...)
    messages: Counter  # messages by direction and RPC name
    faults: Counter  # CWMP faults received from CPEs, by code
    rejected: Counter  # requests refused before a session: busy device, bad input, database down

    @classmethod
    def register(cls, metrics: Metrics) -> CwmpMetrics:
        return cls(
            sessions=metrics.counter("acs_cwmp_sessions_ended_total", "CWMP sessions ended", ("outcome",)),
            started=metrics.counter("acs_cwmp_sessions_started_total", "CWMP sessions started"),
            events=metrics.counter("acs_cwmp_inform_events_total", "Inform events received", ("event",)),
            messages=metrics.counter("acs_cwmp_messages_total", "CWMP messages", ("direction", "rpc")),
            faults=metrics.counter("acs_cwmp_faults_total", "CWMP faults received from devices", ("code",)),
            rejected=metrics.counter("acs_cwmp_rejected_total", "CWMP requests refused", ("reason",)),
        )
