"""The task lifecycle table, walked with plain calls (no database)."""

from __future__ import annotations

import pytest

from tasks.lifecycle import TRANSITIONS, IllegalTaskMove, TaskMove, TaskPhase, advance, phase_of, stored


def walk(start: TaskPhase | None, *moves: TaskMove) -> list[TaskPhase | None]:
    phases = [start]
    for move in moves:
        phases.append(advance(phases[-1], move))
    return phases


def test_a_multi_step_task_that_waits_for_an_inform_event() -> None:
    # diagnostic: SetParameterValues, wait for 8 DIAGNOSTICS COMPLETE, read the results
    assert walk(
        None,
        TaskMove.CLAIM,
        TaskMove.WAIT_EVENT,
        TaskMove.EVENT_ARRIVED,
        TaskMove.RESUME,
        TaskMove.SEND,
        TaskMove.FINISH,
    ) == [
        None,
        TaskPhase.SENT,
        TaskPhase.AWAIT_EVENT,
        TaskPhase.RESUME,
        TaskPhase.STEP,
        TaskPhase.SENT,
        None,
    ]


def test_refresh_steps_stay_in_the_session() -> None:
    phases = walk(None, TaskMove.CLAIM, TaskMove.NEXT_STEP, TaskMove.SEND, TaskMove.NEXT_STEP, TaskMove.SEND)
    assert phases[-1] is TaskPhase.SENT
    assert advance(TaskPhase.SENT, TaskMove.SEND) is TaskPhase.SENT  # the claim marked it sent


@pytest.mark.parametrize(
    ("move", "phase"),
    [
        (TaskMove.BROKEN_UNCONFIRMED, TaskPhase.UNCONFIRMED),
        (TaskMove.BROKEN_AWAIT_INFORM, TaskPhase.AWAIT_INFORM),
        (TaskMove.BROKEN_AWAIT_TRANSFER, TaskPhase.AWAIT_TRANSFER),
        (TaskMove.REQUEUE, None),
    ],
)
def test_a_broken_session_leaves_a_sent_task_to_its_proof_or_the_queue(move: TaskMove, phase: TaskPhase | None) -> None:
    assert advance(TaskPhase.SENT, move) is phase


@pytest.mark.parametrize(
    ("phase", "move"),
    [
        (None, TaskMove.SEND),  # a queued task is claimed first
        (TaskPhase.STEP, TaskMove.REQUEUE),  # answered once: re-sending would repeat a write
        (TaskPhase.AWAIT_INFORM, TaskMove.NEXT_STEP),  # no answer is outstanding
        (TaskPhase.AWAIT_EVENT, TaskMove.RESUME),  # not before the event came
        (TaskPhase.UNCONFIRMED, TaskMove.SEND),  # an unconfirmed write is never re-sent
        (TaskPhase.RESUME, TaskMove.CLAIM),
    ],
)
def test_illegal_moves_raise_a_typed_error_that_names_them(phase: TaskPhase | None, move: TaskMove) -> None:
    with pytest.raises(IllegalTaskMove) as raised:
        advance(phase, move)
    assert raised.value.phase is phase and raised.value.move is move
    assert move.value in str(raised.value)


def test_every_phase_can_finish_and_is_reachable() -> None:
    assert all(advance(phase, TaskMove.FINISH) is None for phase in [None, *TaskPhase])
    reached = set(TRANSITIONS.values())
    assert reached >= set(TaskPhase)


def test_stored_form_round_trips() -> None:
    for phase in [None, *TaskPhase]:
        assert phase_of(stored(phase)) is phase
    assert stored(TaskPhase.AWAIT_TRANSFER) == "await_transfer"
