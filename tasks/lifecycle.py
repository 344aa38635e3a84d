"""The life of a dispatched task as a pure state machine: its phase, and the only legal moves.

    queued --claim--> SENT --answered: another step--> STEP --send--> SENT ...
                      SENT --answered: wait for an Inform event--> AWAIT_EVENT --event--> RESUME
                                                                   RESUME --resumed--> STEP
                      SENT --answered: proven by the next Inform--> AWAIT_INFORM      (Reboot, FactoryReset)
                      SENT --answered: TransferComplete to come--> AWAIT_TRANSFER    (Download status 1, ...)
                      SENT --session broke, a read--> queued (re-sent, bounded attempts)
                      SENT --session broke, a write--> UNCONFIRMED | AWAIT_INFORM | AWAIT_TRANSFER
    any phase --finish--> final (done, failed, cancelled, expired; ``status`` says which)

The phase is stored in the task's ``phase`` field while it is ``dispatched`` (None while queued
and once final). Every change of phase goes through :func:`advance`; a move the table does not
hold raises :class:`IllegalTaskMove` (a bug in the dispatcher, never the device's doing).
"""

from __future__ import annotations

from enum import StrEnum


class TaskPhase(StrEnum):
    SENT = "sent"  # its RPC is out (or about to be) in the session that holds the task
    STEP = "step"  # answered; its next RPC is due in the same session
    AWAIT_EVENT = "await_event"  # detached until an Inform carries the event in state["await_event"]
    RESUME = "resume"  # that event came: the next session of the device sends the next step first
    AWAIT_INFORM = "await_inform"  # done when the next Inform proves it (M Reboot, 0 BOOTSTRAP)
    AWAIT_TRANSFER = "await_transfer"  # done by TransferComplete with its CommandKey
    UNCONFIRMED = "unconfirmed"  # a write whose session broke: the next Inform's ParameterKey decides


class TaskMove(StrEnum):
    CLAIM = "claim it in a session"
    SEND = "send its next step"
    NEXT_STEP = "apply an answer that asks for another step"
    WAIT_EVENT = "apply an answer that waits for an Inform event"
    WAIT_INFORM = "apply an answer proven only by the next Inform"
    WAIT_TRANSFER = "apply an answer settled by TransferComplete"
    EVENT_ARRIVED = "release it on the awaited Inform event"
    RESUME = "take it up again in a session"
    BROKEN_UNCONFIRMED = "leave an unanswered write to the next Inform"
    BROKEN_AWAIT_INFORM = "leave an unanswered reboot or reset to the next Inform"
    BROKEN_AWAIT_TRANSFER = "leave an unanswered transfer to TransferComplete"
    REQUEUE = "re-queue an unanswered read"
    FINISH = "finish it"


# None stands for "no phase": a queued task before, a final one after.
Phase = TaskPhase | None

TRANSITIONS: dict[tuple[Phase, TaskMove], Phase] = {
    (None, TaskMove.CLAIM): TaskPhase.SENT,
    (TaskPhase.SENT, TaskMove.SEND): TaskPhase.SENT,  # a claim marks the task sent already
    (TaskPhase.STEP, TaskMove.SEND): TaskPhase.SENT,
    (TaskPhase.SENT, TaskMove.NEXT_STEP): TaskPhase.STEP,
    (TaskPhase.SENT, TaskMove.WAIT_EVENT): TaskPhase.AWAIT_EVENT,
    (TaskPhase.SENT, TaskMove.WAIT_INFORM): TaskPhase.AWAIT_INFORM,
    (TaskPhase.SENT, TaskMove.WAIT_TRANSFER): TaskPhase.AWAIT_TRANSFER,
    (TaskPhase.AWAIT_EVENT, TaskMove.EVENT_ARRIVED): TaskPhase.RESUME,
    (TaskPhase.RESUME, TaskMove.RESUME): TaskPhase.STEP,
    (TaskPhase.SENT, TaskMove.BROKEN_UNCONFIRMED): TaskPhase.UNCONFIRMED,
    (TaskPhase.SENT, TaskMove.BROKEN_AWAIT_INFORM): TaskPhase.AWAIT_INFORM,
    (TaskPhase.SENT, TaskMove.BROKEN_AWAIT_TRANSFER): TaskPhase.AWAIT_TRANSFER,
    (TaskPhase.SENT, TaskMove.REQUEUE): None,
    # Any open task may end: answered, failed, proven, cancelled or expired in whatever phase.
    **{(phase, TaskMove.FINISH): None for phase in [None, *TaskPhase]},
}


class IllegalTaskMove(Exception):
    """The dispatcher tried a move the lifecycle does not allow from the task's phase."""

    def __init__(self, phase: Phase, move: TaskMove) -> None:
        where = "queued" if phase is None else f"in phase {phase.value!r}"
        super().__init__(f"a task {where} cannot {move.value}")
        self.phase = phase
        self.move = move


def phase_of(stored: str | None) -> Phase:
    """The phase as stored in a task document (None while queued or final)."""
    return None if stored is None else TaskPhase(stored)


def stored(phase: Phase) -> str | None:
    """The phase as a task document stores it."""
    return None if phase is None else phase.value


def advance(phase: Phase, move: TaskMove) -> Phase:
    """The phase after ``move``; :class:`IllegalTaskMove` when the table does not allow it."""
    try:
        return TRANSITIONS[(phase, move)]
    except KeyError:
        raise IllegalTaskMove(phase, move) from None
