"""The shapes of what the store hands out: the one ``Document`` alias of the code base, and typed
records for the collections the session path reads (``TaskRecord``, ``SessionRecord``).

A record is typed where it leaves the store (``tasks/store/tasks.py``, ``tasks/store/sessions.py``):
the driver's decoded dict is the record itself, with its keys and their types checked by mypy
wherever it travels (queue, dispatcher, task kinds, API views); nothing is copied or converted.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

Document = dict[str, Any]  # a document as the driver reads and writes it
