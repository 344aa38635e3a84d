"""Literal secrets inside a profile (a Wi-Fi passphrase written in the file): sealed at rest,
``***`` in views and diffs (issue 11). Template values (``{{ subscriber.pppoe_password }}``) are
not secrets themselves: the subscriber record holds the sealed value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tasks.profiles.templates import is_template
from tasks.records import Document
from tasks.secret_values import REDACTED, is_secret_name
from tasks.secretbox import SecretBox

SEALED = "sealed"


def map_secrets(spec: Mapping[str, Any], change: Callable[[Any], Any]) -> Document:
    """A copy of the spec with ``change`` applied to each literal secret value."""
    copied: Document = {**spec, "parameters": dict(spec.get("parameters") or {})}
    for name, value in copied["parameters"].items():
        if is_secret_name(name) and not is_template(value if not isinstance(value, dict) else ""):
            copied["parameters"][name] = change(value)
    objects = []
    for spec_object in spec.get("objects") or []:
        values = dict(spec_object.get("values") or {})
        for name, value in values.items():
            if is_secret_name(name) and not is_template(value if not isinstance(value, dict) else ""):
                values[name] = change(value)
        objects.append({**spec_object, "values": values})
    copied["objects"] = objects
    return copied


def _pairs(mapping: Mapping[str, Any], key: str) -> list[Document]:
    return [{"name": name, key: value} for name, value in mapping.items()]


def _mapping(items: Any, key: str) -> Any:
    if isinstance(items, list):
        return {str(item["name"]): item[key] for item in items}
    return items or {}


def stored_form(spec: Mapping[str, Any]) -> Document:
    """Parameter names hold dots, which MongoDB field names may not: name/value lists at rest."""
    return {
        **spec,
        "parameters": _pairs(spec.get("parameters") or {}, "value"),
        "watch": _pairs(spec.get("watch") or {}, "notification"),
        "objects": [{**o, "values": _pairs(o.get("values") or {}, "value")} for o in spec.get("objects") or []],
    }


def dict_form(stored: Mapping[str, Any]) -> Document:
    """The spec as the operator writes it (mappings), from either form."""
    return {
        **stored,
        "parameters": _mapping(stored.get("parameters"), "value"),
        "watch": _mapping(stored.get("watch"), "notification"),
        "objects": [{**o, "values": _mapping(o.get("values"), "value")} for o in stored.get("objects") or []],
    }


def seal_spec(spec: Mapping[str, Any], box: SecretBox) -> Document:
    return stored_form(map_secrets(spec, lambda v: v if isinstance(v, dict) else {SEALED: box.encrypt(str(v))}))


def open_spec(stored: Mapping[str, Any], box: SecretBox) -> Document:
    opened = map_secrets(
        dict_form(stored), lambda v: box.decrypt(v[SEALED]) if isinstance(v, dict) and SEALED in v else v
    )
    return opened


def shown_spec(stored: Mapping[str, Any]) -> Document:
    return map_secrets(dict_form(stored), lambda _value: REDACTED)
