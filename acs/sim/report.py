"""Fleet statistics: what happened, as a live one-liner and a final report (text or JSON)."""

from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from acs.sim.session import SessionOutcome


@dataclass
class FleetStats:
    started_at: float = 0.0
    sessions_ok: int = 0
    sessions_failed: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))  # seconds per successful session
    errors: Counter[str] = field(default_factory=Counter)
    faults: Counter[int] = field(default_factory=Counter)  # CWMP faults the CPEs answered with
    requests: Counter[str] = field(default_factory=Counter)  # ACS RPCs answered
    events: Counter[str] = field(default_factory=Counter)  # event codes in delivered Informs
    transfers: Counter[str] = field(default_factory=Counter)

    def record(self, outcome: SessionOutcome) -> None:
        if outcome.ok:
            self.sessions_ok += 1
            self.latencies.append(outcome.duration)
            self.events.update(outcome.events)
        else:
            self.sessions_failed += 1
            self.errors[outcome.error] += 1
        self.requests.update(outcome.requests)
        self.faults.update(outcome.faults)

    @property
    def sessions(self) -> int:
        return self.sessions_ok + self.sessions_failed


def percentile(values: array[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Snapshot:
    """The fleet at one moment, for the live line (rates are since the previous snapshot)."""

    elapsed: float
    devices: int
    online: int
    in_session: int
    sessions: int
    sessions_per_second: float


def live_line(stats: FleetStats, snapshot: Snapshot) -> str:
    faults = sum(stats.faults.values())
    errors = ",".join(f"{k}={v}" for k, v in stats.errors.most_common(4)) or "none"
    return (
        f"[sim {snapshot.elapsed:7.1f}s] online {snapshot.online}/{snapshot.devices} "
        f"in-session {snapshot.in_session} sessions {stats.sessions_ok} ok/{stats.sessions_failed} failed "
        f"({snapshot.sessions_per_second:.1f}/s) faults {faults} errors {errors} "
        f"p50 {percentile(stats.latencies, 0.5) * 1000:.0f}ms p95 {percentile(stats.latencies, 0.95) * 1000:.0f}ms"
    )


def final_report(stats: FleetStats, snapshot: Snapshot, extra: dict[str, Any]) -> dict[str, Any]:
    elapsed = max(snapshot.elapsed, 1e-9)
    return {
        "elapsed_seconds": round(snapshot.elapsed, 3),
        "devices": snapshot.devices,
        "online": snapshot.online,
        "sessions": {
            "ok": stats.sessions_ok,
            "failed": stats.sessions_failed,
            "per_second": round(stats.sessions / elapsed, 2),
        },
        "latency_ms": {
            name: round(percentile(stats.latencies, q) * 1000, 1)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "errors": dict(stats.errors),
        "faults_sent": {str(k): v for k, v in sorted(stats.faults.items())},
        "rpcs_answered": dict(stats.requests.most_common()),
        "events_delivered": dict(stats.events.most_common()),
        "transfers": dict(stats.transfers),
        **extra,
    }


def render_text(report: dict[str, Any]) -> str:
    lines = ["acs sim: final report"]
    for key, value in report.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
            lines.append(f"  {key:18} {inner}")
        else:
            lines.append(f"  {key:18} {value}")
    return "\n".join(lines)


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)
