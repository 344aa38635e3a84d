"""Which parameter values are secrets: passwords, Wi-Fi keys, and passwords inside URLs.

TR-069 A.3.2.2 makes passwords read back empty, but many CPEs return Wi-Fi keys in clear, and the
ACS itself sets connection-request passwords. A value is secret when the last segment of its
parameter name ends like a credential (``...Password``, ``KeyPassphrase``, ``PreSharedKey``,
``WEPKey``, ``...Secret``, ``...PSK``; case-insensitive), or when it is a URL carrying
``user:password@``. Secrets are sealed wherever they are stored and shown as ``***``.
"""

from __future__ import annotations

import re

REDACTED = "***"
SECRET_ENDINGS = ("password", "passphrase", "presharedkey", "wepkey", "secret", "psk")
# scheme://user:password@host... (RFC 3986 3.2.1 userinfo; the password part is deprecated but used)
URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)(?P<password>[^/?#@]*)(?P<tail>@.*)$", re.S)


def is_secret_name(name: str) -> bool:
    last = name.rstrip(".").rpartition(".")[2].lower()
    return last.endswith(SECRET_ENDINGS)


def url_has_password(value: object) -> bool:
    return isinstance(value, str) and URL_PASSWORD.match(value) is not None


def mask_url(value: str) -> str:
    """The URL with its password shown as ``***`` (the rest is useful to read)."""
    return URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + m.group("tail"), value)


def is_secret(name: str, value: object) -> bool:
    return is_secret_name(name) or url_has_password(value)


def shown(name: str, value: object) -> object:
    """How a secret value is shown to every role: ``***``, or the URL with ``***`` for its password."""
    if is_secret_name(name):
        return REDACTED
    if isinstance(value, str) and url_has_password(value):
        return mask_url(value)
    return value
