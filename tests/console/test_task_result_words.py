"""The sentence the device page shows for a finished re-provisioning (``Words.task_result``): what
the support engineer reads to know whether the device was already in its configuration."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from acs.console.render import translator
from acs.console.words import Words


def _result(language: str, tasks_queued: int | None, status: str = "done") -> str | None:
    words = Words(translator(language), ZoneInfo("UTC"))
    return words.task_result({"kind": "reprovision", "status": status, "result": {"tasks_queued": tasks_queued}})


def test_reprovision_says_how_many_tasks_bring_the_device_to_its_configuration() -> None:
    assert _result("en", 3) == "Configuration applied again: 3 task(s) queued to bring the device to it."
    assert _result("en", 0) == "Configuration applied again: the device already had it."
    assert _result("en", None) == (
        "Configuration applied again: the device's tables are read first, then the changes are queued."
    )


@pytest.mark.parametrize("queued", [3, 0, None])
def test_every_reprovision_sentence_is_translated(queued: int | None) -> None:
    english, russian = _result("en", queued), _result("ru", queued)
    assert russian and english and russian != english
    if queued:
        assert str(queued) in russian


def test_a_cancelled_reprovision_says_so_whatever_its_result() -> None:
    assert _result("en", 2, status="cancelled") == "Cancelled before it was sent."
