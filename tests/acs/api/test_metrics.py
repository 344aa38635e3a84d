"""acs.metrics: counters and gauges with labels, rendered in the Prometheus text format."""

from __future__ import annotations

import pytest

from acs.metrics import Metrics


def test_render_counters_gauges_and_uptime() -> None:
    ticks = iter([100.0, 112.5])
    metrics = Metrics(clock=lambda: next(ticks))
    sessions = metrics.counter("acs_cwmp_sessions_total", "CWMP sessions", ("outcome",))
    sessions.inc(outcome="ok")
    sessions.inc(2, outcome="ok")
    sessions.inc(outcome='we"ird\n')
    live = metrics.gauge("acs_cwmp_sessions_live", "Sessions in progress")
    live.inc()
    live.inc()
    live.dec()
    assert metrics.counter("acs_cwmp_sessions_total", "CWMP sessions", ("outcome",)) is sessions
    assert sessions.value(outcome="ok") == 3
    text = metrics.render()
    assert text.splitlines() == [
        "# HELP process_uptime_seconds Seconds since this ACS process started",
        "# TYPE process_uptime_seconds gauge",
        "process_uptime_seconds 12.5",
        "# HELP acs_cwmp_sessions_total CWMP sessions",
        "# TYPE acs_cwmp_sessions_total counter",
        'acs_cwmp_sessions_total{outcome="ok"} 3',
        'acs_cwmp_sessions_total{outcome="we\\"ird\\n"} 1',
        "# HELP acs_cwmp_sessions_live Sessions in progress",
        "# TYPE acs_cwmp_sessions_live gauge",
        "acs_cwmp_sessions_live 1",
    ]


def test_misuse_is_refused() -> None:
    metrics = Metrics()
    counter = metrics.counter("x_total", "x", ("a",))
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, a="1")
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(b="1")
    with pytest.raises(ValueError, match="registered differently"):
        metrics.gauge("x_total", "x", ("a",))


def test_a_tracked_gauge_is_read_when_scraped() -> None:
    """The listeners' open connections and requests in flight: counts kept by the listener, read
    at each scrape rather than copied into the gauge at every change."""
    metrics = Metrics()
    connections = {"cwmp": 0, "api": 0}
    gauge = metrics.gauge("acs_listener_connections", "Open connections of a listener", ("listener",))
    for name in connections:
        gauge.track(lambda name=name: connections[name], listener=name)
    connections["cwmp"] = 7
    assert gauge.value(listener="cwmp") == 7
    connections["api"] = 2
    connections["cwmp"] = 3
    lines = [line for line in metrics.render().splitlines() if line.startswith("acs_listener_connections")]
    assert lines == ['acs_listener_connections{listener="api"} 2', 'acs_listener_connections{listener="cwmp"} 3']
    with pytest.raises(ValueError):
        gauge.track(lambda: 0, port="7547")
