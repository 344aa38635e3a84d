"""A running session's live state as one BSON binary value in its lease and its steps.

The releases of a group-commit batch leave as one delete whose ``$or`` names each lease, and
FerretDB 1.24 pushes no ``$or`` down: it reads and decodes every lease in ``session_locks`` to
evaluate that filter (the same for the steps' merged delete in ``session_steps``). Decoding a
document costs FerretDB per value: the live state as a nested document (events, RPC list,
snapshot: about 40 values, 1 KB) made the lease releases 43% of FerretDB's CPU in a saturated
5,000-device steady state (docs/performance.md, 2026-12-06). As one binary value the state is one
value to decode; it is read back here, by key, only when a session continues or is reaped.

A lease or step stored as a nested document (by a version before this one, during a rolling
upgrade) is read as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson
from bson.binary import Binary
from bson.codec_options import CodecOptions

# As the driver decodes documents (``tasks/store/db.py``: ``tz_aware=True``, UTC).
CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


def pack(state: Mapping[str, Any]) -> Binary:
    return Binary(bson.encode(state, codec_options=CODEC))


def unpack(stored: bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(stored, Mapping):  # stored by a version before the packed state
        return dict(stored)
    return bson.decode(bytes(stored), codec_options=CODEC)
