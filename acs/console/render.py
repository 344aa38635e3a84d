"""Server-side rendering: Jinja2 templates from the package, message catalogs, the user's time zone."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from acs.console.accounts import LANGUAGES, ConsoleUser
from acs.console.words import Translator, Words

SECURITY_HEADERS = {
    # Everything is served from this origin; no inline script or style, no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def catalog(language: str) -> dict[str, str]:
    text = files("acs.console").joinpath("i18n", f"{language}.json").read_text(encoding="utf-8")
    messages: dict[str, str] = json.loads(text)
    return messages


@cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zone for zone in available_timezones() if "/" in zone and not zone.startswith("Etc/")))


def valid_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def translator(language: str) -> Translator:
    chosen = language if language in LANGUAGES else "en"
    return Translator(chosen, catalog(chosen), catalog("en"))


def user_zone(user: ConsoleUser | None) -> ZoneInfo:
    return ZoneInfo(user.time_zone if user is not None and valid_time_zone(user.time_zone) else "UTC")


def words_for(user: ConsoleUser | None, language: str = "en", now: datetime | None = None) -> Words:
    """The user's language and time zone (a page before login: ``language``, UTC)."""
    return Words(translator(user.language if user is not None else language), user_zone(user), now)


class Renderer:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("acs.console", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def page(self, template: str, user: ConsoleUser | None, status: int = 200, **context: Any) -> web.Response:
        text = self.render(template, user, **context)
        return web.Response(text=text, content_type="text/html", status=status, headers=SECURITY_HEADERS)

    def render(self, template: str, user: ConsoleUser | None, **context: Any) -> str:
        words = words_for(user, context.pop("language", "en"), context.get("now"))
        return self.env.get_template(template).render(
            user=user, t=words.t, lang=words.t.language, words=words, when=words.when, ago=words.ago,
            when_ago=words.when_ago, **context,
        )
