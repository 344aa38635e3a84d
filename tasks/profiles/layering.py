"""A device's effective configuration: every matching profile merged by priority, then the device's
own overrides; each value remembers where it came from. Pure.

Profiles are applied in ascending ``priority`` (ties by name), so a higher priority wins a
setting both name; the device's overrides win over every profile. Names are resolved through the
alias table for the device's data model and vendor, values through the templates.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from schemas.profiles import ApplyEvent, ProfileSpec, Value
from tasks.profiles.aliases import AliasTable, NotMapped, Resolved
from tasks.profiles.selector import DeviceFacts, matches
from tasks.profiles.templates import TemplateContext, Unresolved, render, uses_ordinal
from tasks.secret_values import is_secret

OVERRIDE = "override"


@dataclass(frozen=True)
class StoredProfile:
    name: str
    version: int
    spec: ProfileSpec

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Source:
    """Where a desired value comes from: a profile version, or the device's own override."""

    profile: str | None
    version: int | None

    @property
    def label(self) -> str:
        return OVERRIDE if self.profile is None else f"{self.profile}@{self.version}"


@dataclass(frozen=True)
class Desired:
    name: str  # full path (relative to the instance inside a DesiredObject)
    value: Value
    type: str | None
    source: Source
    alias: str | None = None

    @property
    def secret(self) -> bool:
        return is_secret(self.name, self.value)


@dataclass(frozen=True)
class DesiredObject:
    table: str  # ends with "."
    count: int
    exact: bool
    values: dict[str, Desired]  # relative name -> value, the same for every instance
    source: Source
    alias: str | None = None
    # When a value names the instance's ordinal (``{{ subscriber.voip.#.number }}``): every value of
    # instance 1, 2, ... (``count`` of them); empty: every instance takes ``values``.
    instances: tuple[dict[str, Desired], ...] = ()

    def values_of(self, ordinal: int) -> dict[str, Desired]:
        """The values of the table's ``ordinal``-th instance (1-based, in instance-number order)."""
        if self.instances and 1 <= ordinal <= len(self.instances):
            return self.instances[ordinal - 1]
        return self.values


@dataclass(frozen=True)
class Watched:
    name: str
    notification: int  # TR-069 A.3.2.4: 1 passive, 2 active
    source: Source


@dataclass(frozen=True)
class Problem:
    """A setting left out for this device: not mapped for its data model, or a template unresolved."""

    name: str
    source: Source
    reason: str


@dataclass(frozen=True)
class Configuration:
    parameters: dict[str, Desired] = field(default_factory=dict)
    objects: dict[str, DesiredObject] = field(default_factory=dict)
    watch: dict[str, Watched] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    profiles: tuple[str, ...] = ()  # labels, lowest priority first

    @property
    def empty(self) -> bool:
        return not (self.parameters or self.objects or self.watch)

    @property
    def key(self) -> str:
        """The ParameterKey this configuration is applied with (TR-069 A.3.2.1, string(32)): the
        profile versions and the values themselves, so a changed override or subscriber record
        is a new key too."""
        digest = hashlib.sha256(json.dumps(self.fingerprint(), sort_keys=True).encode()).hexdigest()
        return f"cfg-{digest[:20]}"

    def fingerprint(self) -> Any:
        return {
            "profiles": list(self.profiles),
            "parameters": {name: [_wire(d.value), d.type] for name, d in self.parameters.items()},
            "objects": {table: _object_fingerprint(o) for table, o in self.objects.items()},
            "watch": {name: w.notification for name, w in self.watch.items()},
        }


def _object_fingerprint(wanted: DesiredObject) -> list[Any]:
    fingerprint: list[Any] = [wanted.count, wanted.exact, {n: _wire(d.value) for n, d in wanted.values.items()}]
    if wanted.instances:  # only then: the keys of configurations without per-instance values stay as they were
        fingerprint.append([{n: _wire(d.value) for n, d in values.items()} for values in wanted.instances])
    return fingerprint


def _wire(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ordered(profiles: Iterable[StoredProfile]) -> list[StoredProfile]:
    return sorted(profiles, key=lambda profile: (profile.spec.priority, profile.name))


def matching(
    profiles: Iterable[StoredProfile], device: DeviceFacts, subscriber: Mapping[str, Any] | None
) -> list[StoredProfile]:
    return ordered(p for p in profiles if p.spec.enabled and matches(p.spec.selector, device, subscriber))


def triggered(profiles: Iterable[StoredProfile], events: set[ApplyEvent]) -> bool:
    return any(events & set(profile.spec.events) for profile in profiles)


class _Builder:
    def __init__(self, aliases: AliasTable, device: DeviceFacts, context: TemplateContext) -> None:
        self.aliases, self.device, self.context = aliases, device, context
        self.parameters: dict[str, Desired] = {}
        self.objects: dict[str, DesiredObject] = {}
        self.watch: dict[str, Watched] = {}
        self.problems: dict[str, Problem] = {}

    def _resolve(self, name: str, source: Source) -> Resolved | None:
        try:
            return self.aliases.resolve(name, self.device.root, self.device.oui)
        except NotMapped as exc:
            self.problems[name] = Problem(name, source, str(exc))
            return None

    def _value(self, name: str, value: Value, source: Source, ordinal: int | None = None) -> Value | None:
        try:
            return render(value, replace(self.context, ordinal=ordinal) if ordinal else self.context)
        except Unresolved as exc:
            self.problems[name] = Problem(name, source, str(exc))
            return None

    def parameter(self, name: str, value: Value, source: Source) -> None:
        resolved = self._resolve(name, source)
        if resolved is None:
            return
        rendered = self._value(name, value, source)
        if rendered is None:
            self.parameters.pop(resolved.path, None)  # a lower layer's value is not applied either
            return
        self.problems.pop(name, None)
        self.parameters[resolved.path] = Desired(resolved.path, rendered, resolved.type, source, resolved.alias)

    def add_object(self, path: str, count: int, exact: bool, values: Mapping[str, Value], source: Source) -> None:
        resolved = self._resolve(path, source)
        if resolved is None:
            return
        common = {name: value for name, value in values.items() if not uses_ordinal(value)}
        shared = self._object_values(resolved, path, common, source)
        instances: tuple[dict[str, Desired], ...] = ()
        if len(common) < len(values):
            instances = tuple(
                {**shared, **self._object_values(resolved, f"{path}{ordinal}.", values, source, ordinal)}
                for ordinal in range(1, count + 1)
            )
        self.objects[resolved.path] = DesiredObject(
            resolved.path, count, exact, shared, source, resolved.alias, instances
        )

    def _object_values(
        self, resolved: Resolved, prefix: str, values: Mapping[str, Value], source: Source, ordinal: int | None = None
    ) -> dict[str, Desired]:
        """``prefix`` names the setting in a problem: ``voip.line.number``, or ``voip.line.2.number``
        for the second instance's own value."""
        desired: dict[str, Desired] = {}
        for name, value in values.items():
            if ordinal is not None and not uses_ordinal(value):
                continue  # the shared values are rendered once
            known = resolved.fields.get(name)
            relative, kind = (known.path, known.type) if known else (name, None)
            rendered = self._value(f"{prefix}{name}", value, source, ordinal)
            if rendered is not None:
                desired[relative] = Desired(relative, rendered, kind, source, name if known else None)
        return desired

    def watched(self, name: str, notification: int, source: Source) -> None:
        resolved = self._resolve(name, source)
        if resolved is not None:
            self.watch[resolved.path] = Watched(resolved.path, notification, source)


def effective(
    profiles: Iterable[StoredProfile],
    overrides: Iterable[tuple[str, Value]],
    device: DeviceFacts,
    subscriber: Mapping[str, Any] | None,
    cached: Mapping[str, str],
    aliases: AliasTable,
) -> Configuration:
    """The merge of ``profiles`` (already the matching ones) by priority, then the overrides."""
    builder = _Builder(aliases, device, TemplateContext(device, subscriber, cached))
    layers = ordered(profiles)
    for profile in layers:
        source = Source(profile.name, profile.version)
        for name, value in profile.spec.parameters.items():
            builder.parameter(name, value, source)
        for spec in profile.spec.objects:
            builder.add_object(spec.path, spec.count, spec.exact, spec.values, source)
        for name, notification in profile.spec.watch.items():
            builder.watched(name, notification.code, source)
    for name, value in overrides:
        builder.parameter(name, value, Source(None, None))
    return Configuration(
        builder.parameters,
        builder.objects,
        builder.watch,
        list(builder.problems.values()),
        tuple(profile.label for profile in layers),
    )


def wanted_prefixes(
    profiles: Iterable[StoredProfile], overrides: Iterable[tuple[str, Value]], device: DeviceFacts, aliases: AliasTable
) -> list[str]:
    """Every cache path the configuration reads (values, object tables, template references), so
    one projection of the parameters document brings them all."""
    from tasks.profiles.templates import referenced_parameters

    names: set[str] = set()

    def add(name: str) -> None:
        with contextlib.suppress(NotMapped):
            names.add(aliases.resolve(name, device.root, device.oui).path)

    for profile in profiles:
        for name, value in profile.spec.parameters.items():
            add(name)
            names.update(referenced_parameters(value))
        for spec in profile.spec.objects:
            add(spec.path)
        for name in profile.spec.watch:
            add(name)
    for name, _ in overrides:
        add(name)
    return sorted(n for n in names if n.startswith(device.root))
