"""Secrets inside task parameters and results: sealed at rest, unsealed only to build the RPC,
hidden from the API.

A value is secret when its field is a password (Download/Upload credentials), a URL with
``user:password@`` in it, or it sets or reads a parameter that ``tasks.secret_values`` calls
secret (passwords, Wi-Fi keys: TR-069 A.3.2.2 passwords read back empty, so the value sent is
the only copy and must not be readable from the database or the API).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.records import Document
from tasks.secret_values import REDACTED, is_secret, mask_url, url_has_password
from tasks.secretbox import SecretBox

SEALED = "sealed"
URL_FIELDS = ("url",)
VALUE_LISTS = ("values", "other_values")  # settings lists: SetParameterValues, AddObject's (its instance, beside it)


def _secret_setting(setting: Document) -> bool:
    return is_secret(str(setting.get("name", "")), setting.get("value"))


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and SEALED in value


def _map_secrets(params: Document, change: Callable[[str, Any], Any]) -> Document:
    """A copy of ``params`` with ``change(field, value)`` applied to every secret value.

    Copied where it changes (the top level, the ``values`` and ``other_values`` lists, each changed
    setting); what is left as it was is shared with ``params``, which is never modified: a read's
    answer of tens of thousands of values is not deep-copied to seal one Wi-Fi key.
    """
    mapped = dict(params)
    for field in ("password",):
        if mapped.get(field):
            mapped[field] = change(field, mapped[field])
    for field in URL_FIELDS:
        if url_has_password(mapped.get(field)) or _is_sealed(mapped.get(field)):
            mapped[field] = change(field, mapped[field])
    for field in VALUE_LISTS:
        values = mapped.get(field)
        if isinstance(values, list):
            mapped[field] = [
                {**setting, "value": change(str(setting.get("name", "")), setting["value"])}
                if isinstance(setting, dict) and (_secret_setting(setting) or _is_sealed(setting.get("value")))
                else setting
                for setting in values
            ]
    return mapped


def seal(params: Document, box: SecretBox) -> Document:
    return _map_secrets(params, lambda _field, value: value if _is_sealed(value) else {SEALED: box.encrypt(str(value))})


def unseal(params: Document, box: SecretBox) -> Document:
    def opened(_field: str, value: Any) -> Any:
        return box.decrypt(value[SEALED]) if _is_sealed(value) else value

    return _map_secrets(params, opened)


def redact(params: Document, box: SecretBox | None = None) -> Document:
    """``***`` for every secret; a URL keeps all but its password (opened with ``box`` to show it)."""

    def hidden(field: str, value: Any) -> Any:
        if field in URL_FIELDS:
            if _is_sealed(value):
                return mask_url(box.decrypt(value[SEALED])) if box is not None else REDACTED
            return mask_url(str(value))
        return REDACTED

    return _map_secrets(params, hidden)


def seal_result(result: Document, box: SecretBox) -> Document:
    """A task result with secret values (a GetParameterValues answer's Wi-Fi key) sealed."""
    return seal(result, box) if isinstance(result.get("values"), list) else result


def redact_result(result: Any) -> Any:
    if not isinstance(result, dict) or not isinstance(result.get("values"), list):
        return result
    return redact(result)
