"""A CWMP session's id (the ``acs_session`` cookie) names its device, so any worker finds the
session's live state by the device's lease (``session_locks``, keyed by the device id) and its
steps (``session_steps``, keyed by the device id) with the shard key, without a lookup by session.

The id is 24 random URL-safe characters (144 bits) followed by the device id in unpadded base64url;
only the random part makes it unguessable: a forged id naming a device finds no session, as the
device's lease names the full id. Pure.
"""

from __future__ import annotations

import base64
import binascii
import secrets

RANDOM_CHARS = 24  # secrets.token_urlsafe(18)


def new_session_id(device_id: str) -> str:
    encoded = base64.urlsafe_b64encode(device_id.encode()).rstrip(b"=").decode()
    return secrets.token_urlsafe(18) + encoded


def device_of(session_id: str) -> str | None:
    """The device a session id names; None for an id of another shape."""
    encoded = session_id[RANDOM_CHARS:]
    if not encoded:
        return None
    try:
        device_id = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return device_id or None
