"""Pure campaign arithmetic (issue 15): wave sizes and membership, maintenance windows in the
operator's time zone, the stop rules and the estimated end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.campaigns import plan
from tasks.campaigns.plan import Tally

RULES = {"max_failed_share": 0.2, "max_health_regression": 0.2, "min_devices": 3}


def test_waves_canary_then_cumulative_shares_then_the_rest() -> None:
    waves = [{"devices": 10}, {"percent": 1}, {"percent": 10}, {"percent": 50}, {"percent": 100}]
    assert plan.wave_sizes(waves, 2000) == [10, 10, 180, 800, 1000]
    assert plan.wave_sizes(waves, 300) == [10, 0, 20, 120, 150]  # 1 % of 300 is inside the canary
    assert plan.wave_sizes(waves, 4) == [4, 0, 0, 0, 0]
    assert plan.wave_sizes([{"devices": 10}, {"percent": 20}], 200) == [10, 190]  # the rest joins the last wave
    assert sum(plan.wave_sizes(waves, 12345)) == 12345


def test_wave_membership_is_stable_and_spread() -> None:
    devices = [f"00E0FC-HG8245H-{n:08X}" for n in range(200)]
    sizes = plan.wave_sizes([{"devices": 10}, {"percent": 100}], 200)
    first = plan.assign_waves("c1", devices, sizes)
    assert first == plan.assign_waves("c1", reversed(devices), sizes)
    canary = sorted(device for device, wave in first.items() if wave == 0)
    assert len(canary) == 10 and canary != devices[:10]
    assert sorted(d for d, w in plan.assign_waves("c2", devices, sizes).items() if w == 0) != canary


def test_windows_in_the_operator_time_zone() -> None:
    night = [{"start": "01:00", "end": "05:00"}]
    # 01:30 in Moscow (UTC+3) is 22:30 UTC the day before.
    assert plan.in_window(night, "Europe/Moscow", datetime(2026, 3, 1, 22, 30, tzinfo=UTC))
    assert plan.in_window(night, "Europe/Moscow", datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # 04:30
    assert not plan.in_window(night, "Europe/Moscow", datetime(2026, 3, 2, 2, 30, tzinfo=UTC))
    assert not plan.in_window(night, "Europe/Moscow", datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # 05:00: closed
    across = [{"start": "23:00", "end": "02:00"}]
    assert plan.in_window(across, "UTC", datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    assert plan.in_window(across, "UTC", datetime(2026, 3, 2, 1, 59, tzinfo=UTC))
    assert not plan.in_window(across, "UTC", datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    assert plan.in_window([], "UTC", datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    opens = plan.next_window_start(night, "Europe/Moscow", datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    assert opens == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)


def test_the_failed_share_rule() -> None:
    assert plan.check_stop_rules(Tally(upgraded=8, failed=2), RULES) is None  # 2 < min_devices
    assert plan.check_stop_rules(Tally(upgraded=20, failed=3), RULES) is None  # 13 % < 20 %
    trip = plan.check_stop_rules(Tally(upgraded=7, failed=3), RULES)
    assert trip is not None and trip.rule == plan.FAILED_SHARE
    assert trip.numbers["failed"] == 3 and trip.numbers["finished"] == 10 and "3 of 10" in trip.reason


def test_the_health_rule_compares_with_before_and_with_the_not_yet_upgraded() -> None:
    sick = Tally(upgraded=10, judged=10, critical_after=9, critical_before=0, control=500, control_critical=10)
    trip = plan.check_stop_rules(sick, RULES)
    assert trip is not None and trip.rule == plan.HEALTH_REGRESSION
    assert trip.numbers["share_after"] == 0.9 and trip.numbers["share_control"] == 0.02
    assert "9 of 10 upgraded devices" in trip.reason
    # Critical before the upgrade already: the firmware did not do it.
    assert plan.check_stop_rules(Tally(upgraded=10, judged=10, critical_after=9, critical_before=8), RULES) is None
    # The whole model is sick (an outage), upgraded or not: no regression of the upgrade.
    assert plan.check_stop_rules(Tally(upgraded=10, judged=10, critical_after=6, control=100,
                                       control_critical=50), RULES) is None
    assert plan.check_stop_rules(Tally(upgraded=10, judged=10, critical_after=2), RULES) is None  # too few


def test_estimated_end() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    assert plan.estimate_end(300, 100, now) == now + timedelta(hours=3)
    assert plan.estimate_end(300, 0, now) is None and plan.estimate_end(0, 50, now) is None
