"""Secrets inside task parameters: sealed at rest, unsealed only to build the RPC, hidden from the API.

A value is secret when its field is a password (Download/Upload credentials) or it sets a
parameter whose name ends in ``Password`` (TR-069 A.3.2.2: passwords read back empty, so the
value sent is the only copy and must not be readable from the database or the API).
"""

from __future__ import annotations

import copy
from typing import Any

from tasks.secretbox import SecretBox

Document = dict[str, Any]
SEALED = "sealed"
REDACTED = "***"


def _secret_setting(setting: Document) -> bool:
    return str(setting.get("name", "")).endswith("Password")


def _map_secrets(params: Document, change: Any) -> Document:
    mapped = copy.deepcopy(params)
    for field in ("password",):
        if mapped.get(field):
            mapped[field] = change(mapped[field])
    for setting in mapped.get("values") or []:
        if _secret_setting(setting):
            setting["value"] = change(setting["value"])
    return mapped


def seal(params: Document, box: SecretBox) -> Document:
    return _map_secrets(params, lambda value: {SEALED: box.encrypt(str(value))})


def unseal(params: Document, box: SecretBox) -> Document:
    def opened(value: Any) -> Any:
        return box.decrypt(value[SEALED]) if isinstance(value, dict) and SEALED in value else value

    return _map_secrets(params, opened)


def redact(params: Document) -> Document:
    return _map_secrets(params, lambda _value: REDACTED)
