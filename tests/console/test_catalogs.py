"""Every text of the console is in both catalogs (issue 16: every new text in English and Russian)."""

from __future__ import annotations

import json
import re
from importlib.resources import files

KEY = re.compile(r"""\bt\(\s*'([a-z0-9_]+)'\s*[,)]""")  # a whole key, not a prefix joined with ~


def _catalog(language: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(files("acs.console").joinpath("i18n", f"{language}.json").read_text("utf-8"))
    return loaded


def test_both_catalogs_have_the_same_keys() -> None:
    english, russian = _catalog("en"), _catalog("ru")
    assert sorted(set(english) - set(russian)) == [], "missing in ru.json"
    assert sorted(set(russian) - set(english)) == [], "missing in en.json"
    assert [key for key, text in russian.items() if not text.strip()] == []


def test_every_key_a_template_names_is_in_the_catalogs() -> None:
    english, russian = _catalog("en"), _catalog("ru")
    templates = files("acs.console").joinpath("templates")
    missing = []
    for template in templates.iterdir():
        if template.name.endswith(".html"):
            for key in KEY.findall(template.read_text("utf-8")):
                if key not in english or key not in russian:
                    missing.append((template.name, key))
    assert missing == []
