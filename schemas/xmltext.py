"""Text a CWMP envelope can carry: the XML 1.0 ``Char`` production (XML 1.0 section 2.2).

Every string of a task request ends up in a SOAP envelope sent to a device; a character outside
``#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`` (an ESC, NUL, U+FFFE)
cannot be serialized, so such a request is refused when it is made, not when it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_problem(text: str) -> str | None:
    """Why XML cannot carry ``text``, or None."""
    found = _NOT_XML_CHAR.search(text)
    if found is None:
        return None
    return f"contains U+{ord(found.group()):04X} at offset {found.start()}, which XML cannot carry"


def first_xml_problem(value: Any, path: str) -> str | None:
    """The first string inside ``value`` (lists, tuples, mappings walked) that XML cannot carry."""
    if isinstance(value, str):
        problem = xml_problem(value)
        return f"{path} {problem}" if problem else None
    if isinstance(value, Mapping):
        items: list[tuple[str, Any]] = [(f"{path}.{key}", item) for key, item in value.items()]
        items += [(f"{path} key", key) for key in value]
    elif isinstance(value, list | tuple):
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return None  # numbers, booleans, None; nested models check themselves
    for item_path, item in items:
        problem = first_xml_problem(item, item_path)
        if problem:
            return problem
    return None
