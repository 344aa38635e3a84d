"""Secrets at rest (CPE and connection-request passwords): Fernet from ``cryptography``.

The key comes from ``ACS_SECRET_KEY`` or, when unset, from ``<data_dir>/secret.key``, which is
generated on first run with mode 0600. Losing that file makes stored secrets unreadable, so
the log says where it is.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger("acs.secrets")
KEY_FILE = "secret.key"


class SecretError(Exception):
    """A stored secret cannot be decrypted with the configured key."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive_key(self, label: bytes) -> bytes:
        """A key for another purpose (e.g. digest nonces), the same in every process sharing this key."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretError("stored secret does not decrypt with the configured ACS_SECRET_KEY") from exc


def load_or_create_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        key = configured.encode()
        Fernet(key)  # raises ValueError on a malformed key, before anything is encrypted with it
        return key
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this ACS created it first
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key + b"\n")
    log.warning("generated a new secret key in %s; back it up: stored device passwords need it", path)
    return key
