"""SetParameterValues values given without a type, checked against the type the device reported.

The request model checks a value against the ``type`` it names (``schemas.values``); a value
with no type goes out with the device's own type from the parameter cache, so it is checked
against that one before the task is stored (TR-069 A.3.2.1: otherwise the device answers 9007).
A parameter the cache does not know (or knows only by name) is left to the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.tasks import ParameterSetting
from schemas.values import InvalidValue, checked_value
from tasks.store.parameters import ParameterRepository


@dataclass(frozen=True)
class ValueProblem:
    index: int  # position in the request's ``values``
    name: str
    reason: str


async def untyped_value_problems(
    parameters: ParameterRepository, device_id: str, settings: Sequence[ParameterSetting]
) -> list[ValueProblem]:
    untyped = [(index, setting) for index, setting in enumerate(settings) if setting.type is None]
    if not untyped:
        return []
    cached = await parameters.get_many(device_id, [setting.name for _, setting in untyped])
    problems = []
    for index, setting in untyped:
        parameter = cached.get(setting.name)
        if parameter is None or parameter.type is None or parameter.type == "object":
            continue
        try:
            checked_value(setting.value, parameter.type)
        except InvalidValue as exc:
            problems.append(ValueProblem(index, setting.name, str(exc)))
    return problems
