"""Profile management shared by the API, the CLI and the console: save (versioned, with a diff),
delete, roll back, preview on devices, and a device's effective configuration for display.

A literal secret in a profile (a Wi-Fi passphrase written in the file) is sealed before it is
stored and shown as ``***`` in views and diffs (issue 11: no secret at rest in clear).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from schemas.profiles import ProfileSpec
from tasks.profiles.engine import STATE, Evaluation, ProfileEngine, memory_of
from tasks.profiles.layering import StoredProfile
from tasks.profiles.sealing import open_spec, seal_spec, shown_spec
from tasks.records import Document
from tasks.secret_values import REDACTED, is_secret_name
from tasks.secretbox import SecretBox
from tasks.store.devices import DeviceFilter, DeviceRepository
from tasks.store.profiles import ProfileRepository, VersionConflict


class ProfileError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def diff_specs(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Document]:
    """What changed between two versions, field by field (secrets as ``***``)."""
    before = _flatten(shown_spec(old) if old else {})
    after = _flatten(shown_spec(new) if new else {})
    return [
        {"field": field, "from": before.get(field), "to": after.get(field)}
        for field in sorted(set(before) | set(after))
        if before.get(field) != after.get(field)
    ]


def _flatten(spec: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("parameters", "watch") and isinstance(value, dict):
            flat.update({f"{key}[{name}]": item for name, item in value.items()})
        elif key == "objects" and isinstance(value, list):
            for item in value:
                head = f"objects[{item.get('path')}]"
                flat.update({f"{head}.{field}": item.get(field) for field in ("count", "exact")})
                flat.update({f"{head}.values[{n}]": v for n, v in (item.get("values") or {}).items()})
        else:
            flat[key] = value
    return flat


class ProfileService:
    def __init__(
        self,
        repository: ProfileRepository,
        engine: ProfileEngine,
        devices: DeviceRepository,
        box: SecretBox,
        clock: Callable[[], datetime],
    ) -> None:
        self.repository = repository
        self.engine = engine
        self.devices = devices
        self.box = box
        self.clock = clock

    def sealed(self, spec: ProfileSpec) -> Document:
        return seal_spec(spec.model_dump(mode="json"), self.box)

    def opened(self, stored: Mapping[str, Any]) -> Document:
        return open_spec(stored, self.box)

    async def save(self, spec: ProfileSpec, by: str, comment: str | None = None, action: str | None = None) -> Document:
        """Store ``spec`` as the profile's next version; unchanged: the current version, no new one."""
        current = await self.repository.get(spec.name)
        if current is not None and self.opened(current["spec"]) == spec.model_dump(mode="json"):
            return current
        expected = int(current["version"]) if current else await self.repository.latest_version(spec.name)
        kind = action or ("update" if current else "create")
        diff = diff_specs(current["spec"] if current else None, spec.model_dump(mode="json"))
        try:
            await self.repository.save(spec.name, self.sealed(spec), expected, by, self.clock(), kind, comment, diff)
        except VersionConflict:
            raise ProfileError(
                "conflict", f"profile {spec.name} was changed meanwhile; read it and try again"
            ) from None
        self.engine.catalog.invalidate()
        saved = await self.repository.get(spec.name)
        assert saved is not None
        return saved

    async def delete(self, name: str, by: str) -> int:
        current = await self.repository.get(name)
        if current is None:
            raise ProfileError("not_found", f"no profile {name}")
        diff = diff_specs(current["spec"], None)
        try:
            version = await self.repository.save(
                name, None, int(current["version"]), by, self.clock(), "delete", None, diff
            )
        except VersionConflict:
            raise ProfileError("conflict", f"profile {name} was changed meanwhile") from None
        self.engine.catalog.invalidate()
        return version

    async def rollback(self, name: str, version: int, by: str, comment: str | None) -> Document:
        old = await self.repository.version(name, version)
        if old is None or old.get("spec") is None:
            raise ProfileError("not_found", f"profile {name} has no version {version}")
        spec = ProfileSpec.model_validate(self.opened(old["spec"]))
        return await self.save(spec, by, comment or f"rollback to version {version}", action="rollback")

    async def stored(self, name: str) -> StoredProfile:
        current = await self.repository.get(name)
        if current is None:
            raise ProfileError("not_found", f"no profile {name}")
        return StoredProfile(name, int(current["version"]), ProfileSpec.model_validate(self.opened(current["spec"])))

    async def preview(
        self, name: str, spec: ProfileSpec | None, device_ids: list[str], sample: int
    ) -> tuple[StoredProfile, list[Document]]:
        """What ``spec`` (else the stored profile) would change on these devices, or on a sample of
        the devices its selector names by OUI / product class. Nothing is written."""
        if spec is not None and spec.name != name:
            raise ProfileError("invalid", f"the spec names profile {spec.name}, not {name}")
        if spec is None:
            candidate = await self.stored(name)
        else:
            current = await self.repository.get(name)
            candidate = StoredProfile(name, (int(current["version"]) if current else 0) + 1, spec)
        others = [p for p in await self.engine.catalog.current() if p.name != name]
        ids = device_ids or await self._sample(candidate.spec, sample)
        results = []
        for device_id in ids:
            device = await self.devices.get(device_id)
            if device is None:
                results.append({"device_id": device_id, "found": False})
                continue
            evaluation = await self.engine.evaluate(device, [*others, candidate])
            selected = any(p.name == name for p in evaluation.profiles)
            results.append({"device_id": device_id, "found": True, "selected": selected, **describe(evaluation)})
        return candidate, results

    async def _sample(self, spec: ProfileSpec, limit: int) -> list[str]:
        selector = spec.selector
        device_filter = DeviceFilter(
            oui=selector.oui[0].upper() if selector.oui else None,
            product_class=selector.product_class[0] if selector.product_class else None,
            tag=selector.tags[0] if selector.tags else None,
        )
        return await self.devices.ids(device_filter, self.clock(), limit)

    async def configuration(self, device: Mapping[str, Any]) -> Document:
        """``GET /devices/{id}/configuration``: effective values, where each comes from, in sync or not."""
        evaluation = await self.engine.evaluate(device)
        state = dict(device.get(STATE) or {})
        memory = memory_of(state)
        return {
            "device_id": device["_id"],
            "state": {
                key: state.get(key)
                for key in (
                    "status",
                    "key",
                    "profiles",
                    "failures",
                    "last_fault",
                    "checked_at",
                    "finished_at",
                    "subscriber",
                    "invalid",
                )
            }
            | {"refused": [{k: r.get(k) for k in ("name", "code", "string")} for r in state.get("refused") or []]},
            "reprovision_requested": await self.engine.reprovision_requested(device),
            "overrides": [
                {"name": o.get("name"), "value": _shown(str(o.get("name")), o.get("value"))}
                for o in device.get("configuration_overrides") or []
            ],
            "watch_applied": memory.watch_key is not None,
            **describe(evaluation),
        }


def _shown(name: str, value: Any) -> Any:
    return REDACTED if is_secret_name(name) else value


def describe(evaluation: Evaluation) -> Document:
    """An evaluation as JSON: every desired value with its source and the device's value."""
    config, result, cache = evaluation.configuration, evaluation.drift, evaluation.cache
    differing = {change.name for change in result.changes} | {change.name for change in result.refused}
    refused = {change.name for change in result.refused}
    parameters = []
    for name, desired in sorted(config.parameters.items()):
        cached = cache.get(name)
        parameters.append(
            {
                "name": name,
                "alias": desired.alias,
                "desired": _shown(name, desired.value),
                "actual": None if cached is None else _shown(name, cached.value),
                "source": desired.source.label,
                "in_sync": name not in differing,
                "refused": name in refused,
            }
        )
    objects = [
        {
            "table": table,
            "alias": wanted.alias,
            "count": wanted.count,
            "exact": wanted.exact,
            "source": wanted.source.label,
            "values": {n: _shown(n, d.value) for n, d in wanted.values.items()},
            "instances": [{n: _shown(n, d.value) for n, d in values.items()} for values in wanted.instances],
        }
        for table, wanted in sorted(config.objects.items())
    ]
    return {
        "in_sync": result.in_sync and not result.refused,
        "key": config.key,
        "profiles": list(config.profiles),
        "subscriber": None if evaluation.subscriber is None else evaluation.subscriber.get("account"),
        "parameters": parameters,
        "objects": objects,
        "watch": [
            {"name": w.name, "notification": w.notification, "source": w.source.label} for w in config.watch.values()
        ],
        "changes": [
            {
                "name": c.name,
                "from": _shown(c.name, c.actual),
                "to": _shown(c.name, c.desired.value),
                "source": c.desired.source.label,
            }
            for c in result.changes
        ],
        "add": [
            {"table": table, "values": {n: _shown(n, d.value) for n, d in values.items()}}
            for table, values in result.adds
        ],
        "delete": list(result.deletes),
        "refresh": list(result.refresh),
        "problems": [{"name": p.name, "source": p.source.label, "reason": p.reason} for p in config.problems],
    }
