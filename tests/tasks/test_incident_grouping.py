"""Incident grouping as pure functions: one problem gives one incident, churn gives none."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tasks.health.evaluate import HealthResult, Level, Reason, summarize
from tasks.incidents import grouping
from tasks.incidents.grouping import Config, DeviceFacts
from tasks.incidents.service import trend

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
CONFIG = Config(window=timedelta(minutes=2), min_devices=5, min_share=0.3, resolve_share=0.1)


def fleet(size: int = 2000, per_pon: int = 100) -> list[dict[str, Any]]:
    devices = []
    for index in range(size):
        pon = index // per_pon
        devices.append({
            "_id": f"D{index:05d}", "olt_id": f"OLT-{pon // 16 + 1:04d}",
            "pon_port": f"0/{pon % 16 // 8 + 1}/{pon % 8}",
            "product_class": "HG8245H", "software_version": ["S115", "S120", "S125"][index % 3],
            "wan_ip": f"100.64.{index % 250}.{index // 250 + 1}", "remote_ip": "127.0.0.1",
            "presence": "online", "offline_after": NOW + timedelta(minutes=1), "tags": [],
        })
    return devices


def offline(device: dict[str, Any], ago: float = 30) -> None:
    device.update(presence="offline", offline_since=NOW - timedelta(seconds=ago),
                  offline_after=NOW - timedelta(seconds=ago))


def detect(devices: list[dict[str, Any]], baselines: dict[str, float] | None = None) -> list[grouping.Candidate]:
    facts = [grouping.facts_of(device, NOW, CONFIG.window, 0) for device in devices]
    return grouping.detect(grouping.group_stats(facts, baselines or {}), CONFIG)


def test_two_dark_pons_of_one_olt_make_one_incident_naming_the_olt() -> None:
    devices = fleet()
    for device in devices[:200]:
        offline(device)
    chosen = detect(devices)
    assert {candidate.incident_key for candidate in chosen} == {"olt:OLT-0001"}
    title, cause = grouping.describe(chosen[0])
    assert title.startswith("Outage on OLT OLT-0001") and "100 of 100 devices offline" in title
    assert "OLT-0001" in cause


def test_random_churn_opens_nothing() -> None:
    rng = random.Random(3)
    for _ in range(25):
        devices = fleet()
        for device in rng.sample(devices, 8):
            offline(device)
        assert detect(devices) == []


def test_old_outages_are_not_fresh_and_the_baseline_absorbs_a_chronic_share() -> None:
    devices = fleet()
    for device in devices[:200]:
        offline(device, ago=3600)
    assert detect(devices) == [], "offline for an hour: not a new problem"
    devices = fleet(per_pon=10)
    for device in devices[:6]:
        offline(device)
    assert [c.incident_key for c in detect(devices)] == ["olt:OLT-0001"]
    assert detect(devices, {"pon:OLT-0001 0/1/0": 0.5}) == [], "a PON that is usually this bad"


def test_a_bad_firmware_is_one_incident_by_software_version_not_per_subnet_or_pon() -> None:
    devices = fleet()
    for device in devices:
        if device["software_version"] == "S120":
            device["health"] = {"status": "critical", "since": NOW - timedelta(seconds=10)}
    chosen = detect(devices)
    assert [candidate.group_key for candidate in chosen] == ["software_version:HG8245H S120"]
    assert grouping.describe(chosen[0])[1] == "software version S120 of HG8245H (suspected bad firmware)"


def test_tags_give_region_and_topology_when_parameters_do_not() -> None:
    device = {"_id": "X", "tags": ["region:north", "olt:OLT-9", "pon:1/1", "watch"], "product_class": "P",
              "remote_ip": "192.0.2.7"}
    assert grouping.groups_of(device) == {"region": "north", "olt": "OLT-9", "pon": "OLT-9 1/1",
                                          "product_class": "P", "subnet": "192.0.2.0/24"}


def test_progress_grows_then_resolves_when_devices_recover() -> None:
    devices = fleet()
    for device in devices[:60]:
        offline(device)
    facts = {d["_id"]: grouping.facts_of(d, NOW, CONFIG.window, 0) for d in devices}
    groups = grouping.group_stats(facts.values(), {})
    step = grouping.progress([d["_id"] for d in devices[:50]], ["pon:OLT-0001 0/1/0"], facts, groups, 50, CONFIG)
    assert len(step.added) == 10 and step.affected_now == 60 and step.peak == 60 and not step.resolved
    recovered: dict[str, DeviceFacts] = {key: DeviceFacts(key, value.groups) for key, value in facts.items()}
    members = [d["_id"] for d in devices[:60]]
    assert grouping.progress(members, [], recovered, groups, 60, CONFIG).resolved


def test_baseline_moves_slowly() -> None:
    assert grouping.next_baseline(0.0, 1.0, 0.05) == 0.05
    assert grouping.next_baseline(0.05, 0.0, 0.05) == 0.0475


def bad_firmware_on_one_olt() -> list[dict[str, Any]]:
    """300 devices on one OLT; every S120 device (a third of them) critical."""
    devices = fleet(size=300, per_pon=100)
    for device in devices:
        if device["software_version"] == "S120":
            device["health"] = {"status": "critical", "since": NOW - timedelta(seconds=10)}
    return devices


def test_a_firmware_problem_filling_an_olt_is_named_by_software_version_not_by_the_olt() -> None:
    chosen = detect(bad_firmware_on_one_olt())  # S120: 100 of 100; OLT-0001: the same 100 of 300
    assert [candidate.group_key for candidate in chosen] == ["software_version:HG8245H S120"]


def test_devices_of_an_open_incident_open_no_second_one_for_a_wider_group() -> None:
    devices = bad_firmware_on_one_olt()
    devices[0]["health"] = {"status": "critical", "since": NOW - timedelta(seconds=10)}  # one more on the OLT
    facts = [grouping.facts_of(device, NOW, CONFIG.window, 0) for device in devices]
    groups = grouping.group_stats(facts, {})
    assert [c.group_key for c in grouping.detect(groups, CONFIG)] == ["olt:OLT-0001"], "101 of 300 beat 100 of 100"
    members = set(groups["software_version:HG8245H S120"].fresh)  # the firmware incident opened earlier
    assert grouping.detect(groups, CONFIG, explained=members) == []


# -- a failed health read is not a recovery ---------------------------------------------------------


def read(health: dict[str, Any], level: Level, ago: float) -> dict[str, Any]:
    """The device's ``health`` after one more read, as the health poll stores it."""
    reasons = {Level.CRITICAL: [Reason("optical", Level.CRITICAL, "optical RX power -29 dBm below -27 dBm")],
               Level.UNKNOWN: [Reason("device", Level.UNKNOWN, "health read expired: no session before expiry")]}
    return summarize(health, HealthResult(level, reasons.get(level, [])), NOW - timedelta(seconds=ago))


def firmware_incident_after(next_level: Level) -> tuple[list[dict[str, Any]], grouping.Progress]:
    """Every S120 device of one OLT read critical (a bad-firmware incident), then read once more."""
    devices = fleet(size=300, per_pon=100)
    sick = [device for device in devices if device["software_version"] == "S120"]
    for device in sick:
        device["health"] = read(read({}, Level.CRITICAL, ago=60), next_level, ago=5)
    facts = {d["_id"]: grouping.facts_of(d, NOW, CONFIG.window, 0) for d in devices}
    groups = grouping.group_stats(facts.values(), {})
    members = [device["_id"] for device in sick]
    return sick, grouping.progress(members, ["software_version:HG8245H S120"], facts, groups, len(members), CONFIG)


def test_a_critical_device_whose_next_health_read_failed_still_counts_as_affected() -> None:
    sick, step = firmware_incident_after(Level.UNKNOWN)
    assert sick[0]["health"]["status"] == "unknown", "the device page still says the last read failed"
    facts = grouping.facts_of(sick[0], NOW, CONFIG.window, 0)
    assert grouping.CRITICAL in facts.current and grouping.CRITICAL in facts.fresh
    assert step.affected_now == 100 and not step.resolved, "crash-looping devices did not recover"


def test_a_critical_device_whose_next_read_said_ok_counts_as_recovered() -> None:
    sick, step = firmware_incident_after(Level.OK)
    assert not grouping.facts_of(sick[0], NOW, CONFIG.window, 0).affected
    assert step.affected_now == 0 and step.resolved


def test_a_failed_read_between_two_critical_ones_is_one_critical_spell() -> None:
    health = read(read(read({}, Level.CRITICAL, ago=3600), Level.UNKNOWN, ago=60), Level.CRITICAL, ago=5)
    assert health["since"] == NOW - timedelta(seconds=5), "the read's own status changed"
    assert health["last_definite"]["since"] == NOW - timedelta(seconds=3600)
    facts = grouping.facts_of({"_id": "X", "health": health}, NOW, CONFIG.window, 0)
    assert facts.current == {grouping.CRITICAL} and not facts.fresh, "critical for an hour: not a new problem"


def test_summaries_written_before_last_definite_are_still_read() -> None:
    old_critical = {"_id": "X", "health": {"status": "critical", "since": NOW - timedelta(seconds=10)}}
    assert grouping.facts_of(old_critical, NOW, CONFIG.window, 0).fresh == {grouping.CRITICAL}
    old_unknown = {"_id": "Y", "health": {"status": "unknown", "since": NOW - timedelta(seconds=10)}}
    assert not grouping.facts_of(old_unknown, NOW, CONFIG.window, 0).affected, "nothing definite known"


# -- a census of the fleet and the affected devices judge as the whole fleet does ---------------------


def scenario(seed: int) -> list[dict[str, Any]]:
    """A fleet with random churn, and sometimes a dark PON or a sick firmware as well."""
    rng = random.Random(seed)
    devices = fleet(size=1200, per_pon=rng.choice([10, 40, 100]))
    for device in rng.sample(devices, rng.randint(0, 30)):
        offline(device, ago=rng.choice([30, 3600]))
    if seed % 3 == 0:
        for device in devices[:rng.randint(5, 120)]:
            offline(device)
    if seed % 3 == 1:
        for device in devices:
            if device["software_version"] == "S125" and rng.random() < 0.6:
                device["health"] = {"status": "critical", "since": NOW - timedelta(seconds=10)}
    return devices


def test_affected_devices_and_a_census_give_the_same_incidents_and_baselines_as_the_whole_fleet() -> None:
    for seed in range(30):
        devices = scenario(seed)
        rng = random.Random(seed)
        baselines = {f"olt:OLT-{n:04d}": rng.choice([0.0, 0.02, 0.4]) for n in range(1, 4)}
        baselines["subnet:203.0.113.0/24"] = 0.05  # a group no device is in any more: its baseline decays
        facts = [grouping.facts_of(device, NOW, CONFIG.window, 0) for device in devices]
        whole = grouping.group_stats(facts, baselines)
        partial = grouping.group_stats([fact for fact in facts if fact.affected], baselines, grouping.census(devices))
        chosen = [(c.group_key, c.size, sorted(c.fresh)) for c in grouping.detect(whole, CONFIG)]
        assert [(c.group_key, c.size, sorted(c.fresh)) for c in grouping.detect(partial, CONFIG)] == chosen, seed
        for key, group in whole.items():
            if group.fresh or key in baselines:
                assert (partial[key].size, partial[key].share) == (group.size, group.share), (seed, key)
        assert partial["subnet:203.0.113.0/24"].share == 0.0


def test_groups_missing_from_a_stale_census_or_near_a_decision_are_counted_again() -> None:
    devices = fleet(size=400, per_pon=100)
    sizes = grouping.census(devices)
    for device in devices[:40]:
        device["olt_id"] = "OLT-NEW"  # re-homed after the census was taken
        offline(device)
    for device in devices[100:116]:
        offline(device)  # 16 of the 100 of PON 0/1/1: under the share, but near it
    for device in devices[200:202]:
        offline(device)  # churn
    facts = [fact for fact in (grouping.facts_of(d, NOW, CONFIG.window, 0) for d in devices) if fact.affected]
    groups = grouping.group_stats(facts, {}, sizes)
    assert groups["olt:OLT-NEW"].size == 40, "never below what the affected devices show"
    near = {group.group_key for group in grouping.near_candidates(groups, CONFIG)}
    assert {"olt:OLT-NEW", "pon:OLT-NEW 0/1/0", "pon:OLT-0001 0/1/1"} <= near
    assert not any(key.startswith("pon:OLT-0001 0/1/2") for key in near), "two offline: nothing to decide"
    assert "product_class:HG8245H" not in near, "58 of 400 is under half the share"


def _timeline_incident(counts: list[tuple[int, int]], affected_now: int) -> dict[str, Any]:
    """An incident whose time line recorded ``(minutes after opening, affected)``."""
    opened = datetime(2025, 1, 1, 12, tzinfo=UTC)
    timeline = [{"at": opened + timedelta(minutes=minute), "event": "opened" if i == 0 else "grew",
                 "affected": affected} for i, (minute, affected) in enumerate(counts)]
    return {"timeline": timeline, "affected_now": affected_now, "opened_at": opened}


def test_trend_follows_recent_change_not_the_opening_count() -> None:
    opened = datetime(2025, 1, 1, 12, tzinfo=UTC)
    grew = _timeline_incident([(0, 7), (1, 44)], 44)
    assert trend(grew, opened + timedelta(minutes=2)) == "growing"
    # The same outage, stable for an hour: steady, not "growing" forever.
    assert trend(grew, opened + timedelta(hours=1)) == "steady"
    recovering = _timeline_incident([(0, 7), (1, 44), (58, 20)], 20)
    assert trend(recovering, opened + timedelta(hours=1)) == "shrinking"
    assert trend(_timeline_incident([(0, 7)], 7), opened + timedelta(seconds=10)) == "steady"
