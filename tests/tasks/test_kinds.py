"""Every task kind has one home in tasks/kinds/, and the rest of the code finds it there."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta

import pytest

from schemas.tasks import TASK_KINDS, TaskRequest
from tasks.kinds import KINDS, kind_of
from tasks.kinds.outcome import InformEvents, Proof
from tasks.rpc import TaskProtocolError, build_request

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_each_kind_the_api_accepts_has_exactly_one_home() -> None:
    union = typing.get_args(typing.get_args(TaskRequest)[0])
    assert set(KINDS) == set(TASK_KINDS)
    assert {kind.request for kind in KINDS.values()} == set(union)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert typing.get_args(kind.request.model_fields["kind"].annotation) == (name,)


def test_flags() -> None:
    def having(flag: str) -> set[str]:
        return {name for name, kind in KINDS.items() if getattr(kind, flag)}

    assert having("read") == {
        "get_rpc_methods",
        "get_parameter_values",
        "get_parameter_attributes",
        "get_parameter_names",
        "refresh",
        "get_queued_transfers",
        "get_all_queued_transfers",
    }
    assert having("proven_by_parameter_key") == {"set_parameter_values", "add_object", "delete_object"}
    assert having("transfer") == {"download", "upload", "schedule_download"}
    assert having("ends_session") == {"reboot", "factory_reset"}
    assert having("needs_cached_types") == {"diagnostic"}
    assert having("prove_by_inform") == {"reboot", "factory_reset"}
    assert having("in_acs") == {"reprovision"}
    assert not having("read") & (having("proven_by_parameter_key") | having("transfer") | having("ends_session"))


def test_reboot_and_reset_are_proven_by_the_next_inform() -> None:
    task = {"kind": "reboot", "command_key": "K", "dispatched_at": T0}
    reboot = kind_of("reboot").prove_by_inform
    assert reboot is not None
    later = T0 + timedelta(seconds=12.5)
    assert reboot(task, InformEvents(frozenset({("1 BOOT", ""), ("M Reboot", "K")}), None), later) == Proof(
        done=True, result={"rebooted_after_seconds": 12.5}
    )
    booted_otherwise = reboot(task, InformEvents(frozenset({("1 BOOT", ""), ("M Reboot", "other")}), None), later)
    assert booted_otherwise is not None and not booted_otherwise.done
    assert reboot(task, InformEvents(frozenset({("2 PERIODIC", "")}), None), later) is None
    reset = kind_of("factory_reset").prove_by_inform
    assert reset is not None
    assert reset(task, InformEvents(frozenset({("0 BOOTSTRAP", "")}), None), later) == Proof(
        done=True, result={"bootstrapped": True}
    )
    assert reset(task, InformEvents(frozenset({("1 BOOT", "")}), None), later) is None


def test_a_stored_task_of_no_known_kind_cannot_be_built() -> None:
    unknown = kind_of("frobnicate")
    assert not (unknown.read or unknown.transfer or unknown.ends_session or unknown.proven_by_parameter_key)
    with pytest.raises(TaskProtocolError, match="no task kind 'frobnicate'"):
        build_request({"kind": "frobnicate", "params": {}, "command_key": "K"}, {}, {})
