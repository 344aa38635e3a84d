"""Server-side rendering: Jinja2 templates from the package, message catalogs, the user's time zone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from acs.console.accounts import LANGUAGES, ConsoleUser

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


class Translator:
    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else "en"
        self.messages = catalog(self.language)
        self.fallback = catalog("en")

    def __call__(self, key: str, **values: Any) -> str:
        text = self.messages.get(key) or self.fallback.get(key) or key
        return text.format(**values) if values else text


class Renderer:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("acs.console", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def page(self, template: str, user: ConsoleUser | None, status: int = 200, **context: Any) -> web.Response:
        language = user.language if user is not None else context.pop("language", "en")
        zone = ZoneInfo(user.time_zone if user is not None and valid_time_zone(user.time_zone) else "UTC")
        t = Translator(language)
        text = self.env.get_template(template).render(
            user=user, t=t, lang=t.language, when=lambda moment: format_time(moment, zone),
            ago=lambda moment: ago(moment, t), **context,
        )
        return web.Response(text=text, content_type="text/html", status=status, headers=SECURITY_HEADERS)


def format_time(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def ago(moment: datetime | None, t: Translator, now: datetime | None = None) -> str:
    if moment is None:
        return t("never")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return t("ago_seconds", n=max(seconds, 0))
    if seconds < 3600:
        return t("ago_minutes", n=seconds // 60)
    if seconds < 86400:
        return t("ago_hours", n=seconds // 3600)
    return t("ago_days", n=seconds // 86400)
