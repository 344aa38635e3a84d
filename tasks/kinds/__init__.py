"""Every task kind, one home each: the request model, the RPC, the answer, the proof, the flags.

    reads.py      get_parameter_values, get_parameter_attributes, get_parameter_names,
                  get_rpc_methods, get_queued_transfers, get_all_queued_transfers
    refresh.py    refresh (names, then values; chunked after 9002/9004)
    writes.py     set_parameter_values, set_parameter_attributes, add_object, delete_object
    device.py     reboot, factory_reset, schedule_inform
    transfers.py  download, upload, schedule_download, cancel_transfer
    diagnostic.py diagnostic
    configuration.py reprovision (done by the ACS in the session: no RPC)

Pure: no I/O. Everything else looks a kind up with :func:`kind_of`.
"""

from __future__ import annotations

from pydantic import BaseModel

from cwmp import Message
from tasks.kinds import configuration, device, diagnostic, reads, refresh, transfers, writes
from tasks.kinds.base import TaskKind
from tasks.kinds.outcome import Document, Outcome, TaskProtocolError
from tasks.records import TaskRecord

KINDS: dict[str, TaskKind] = {
    kind.name: kind for family in (reads, refresh, writes, device, transfers, diagnostic, configuration)
    for kind in family.KINDS
}


def kind_of(name: str) -> TaskKind:
    """The kind of a stored task. A name no kind has (a task stored by hand or by an older
    version) gets a kind with no flags whose RPC cannot be built: the task fails when sent."""
    found = KINDS.get(name)
    return found if found is not None else _unknown(name)


def _unknown(name: str) -> TaskKind:
    def refuse(*_args: TaskRecord | Document | Message | dict[str, str]) -> Message:
        raise TaskProtocolError(f"no task kind {name!r}")

    def refuse_answer(*_args: TaskRecord | Document | Message) -> Outcome:
        raise TaskProtocolError(f"no task kind {name!r}")

    return TaskKind(name, BaseModel, refuse, refuse_answer)


__all__ = ["KINDS", "TaskKind", "kind_of"]
