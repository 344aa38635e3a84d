"""Trends: charts of a device's, a PON's or an OLT's health over days (tasks/trends.py keeps the hours).

Charts are SVG drawn on the server by pygal and shown as ``<img>``: no script, nothing from a
CDN. An SVG is a document of its own, so it is served with a CSP of its own that allows its
inline style and nothing else (no script runs from an image anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pygal
from aiohttp import web
from pygal.style import Style

from acs.console.render import SECURITY_HEADERS, words_for
from acs.console.web import console_of, guard, refuse, user_of
from acs.console.words import Words
from schemas.api import Role
from tasks.store.db import Document
from tasks.trends import RANK_STATUS, TREND_DAYS, Point, boots_by_day, days_back, hourly_points

RANGES = (1, 7, 30)  # days a chart covers; 30 is what is kept (tasks.trends.TREND_DAYS)
DEVICE_CHARTS = ("optical", "temperature", "health", "reboots")
GROUP_CHARTS = ("optical", "temperature", "health", "reboots")
GROUP_DOCS = 20_000  # device-days read for one OLT/PON chart at most; the chart says when it was cut
SVG_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
STYLE = Style(background="#ffffff", plot_background="#ffffff", foreground="#1d2430",
              foreground_strong="#1d2430", foreground_subtle="#6b7280",
              colors=("#0b5cad", "#b42318", "#13795b", "#b7791f", "#6b7280"),
              font_family="system-ui, sans-serif")

STATUS_STYLE = Style(**{**STYLE.to_dict(), "colors": ("#b42318", "#b7791f", "#13795b", "#6b7280")})


class BadRange(ValueError):
    pass


def days_of(query: Any) -> int:
    text = query.get("days", "7")
    if not (text.isascii() and text.isdigit()) or int(text) not in RANGES:
        raise BadRange(text)
    return int(text)


def _chart(kind: type[Any], words: Words, title: str, **config: Any) -> Any:
    zone = words.zone

    def label(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%m-%d %H:%M")

    options: dict[str, Any] = {"x_value_formatter": label, "style": STYLE, **config}
    return kind(js=[], title=title, width=900, height=320, show_dots=True, dots_size=2,
                x_label_rotation=20, truncate_legend=40, legend_at_bottom=True,
                no_data_text=words.t("trend_no_data"), **options)


def _series(points: list[Point], value: Callable[[Point], float | None]) -> list[tuple[datetime, float]]:
    return [(point.at, shown) for point in points if (shown := value(point)) is not None]


def optical_chart(points: list[Point], words: Words, group: bool) -> Any:
    chart = _chart(pygal.DateTimeLine, words, words.t("trend_optical"))
    if group:
        chart.add(words.t("trend_rx_min"), _series(points, lambda p: p.low.get("rx_power")))
        chart.add(words.t("trend_rx_mean"), _series(points, lambda p: p.mean("rx_power")))
        chart.add(words.t("trend_rx_max"), _series(points, lambda p: p.high.get("rx_power")))
    else:
        chart.add(words.t("trend_rx"), _series(points, lambda p: p.mean("rx_power")))
        # TX sits near +2 dBm and RX near -20: TX on the right-hand axis keeps RX's changes visible.
        chart.add(words.t("trend_tx"), _series(points, lambda p: p.mean("tx_power")), secondary=True)
    return chart


def temperature_chart(points: list[Point], words: Words, group: bool) -> Any:
    chart = _chart(pygal.DateTimeLine, words, words.t("trend_temperature"))
    chart.add(words.t("trend_temperature_mean"), _series(points, lambda p: p.mean("temperature")))
    if group:
        chart.add(words.t("trend_temperature_max"), _series(points, lambda p: p.high.get("temperature")))
    return chart


def health_chart(points: list[Point], words: Words, group: bool) -> Any:
    if group:  # devices of the group by their worst status in each hour
        top = max([sum(point.statuses.values()) for point in points] + [1])
        chart = _chart(pygal.DateTimeLine, words, words.t("trend_health_group"), style=STATUS_STYLE, range=(0, top),
                       y_labels=list(range(0, top + 1, max(1, top // 6))))
        for status in ("critical", "warn", "ok", "unknown"):
            counted = [(point.at, float(point.statuses.get(status, 0))) for point in points]
            chart.add(words.t("health_" + status), counted)
        return chart
    labels = {rank: words.t("health_" + status) for rank, status in RANK_STATUS.items()}

    def rank_label(rank: float) -> str:
        return labels.get(int(rank), str(rank))

    chart = _chart(pygal.DateTimeLine, words, words.t("trend_health"), range=(0, 3), y_labels=[0, 1, 2, 3],
                   value_formatter=rank_label)
    chart.add(words.t("trend_health_worst"), _series(points, lambda p: float(p.status) if p.statuses else None))
    return chart


def reboots_chart(points: list[Point], words: Words, days: list[str]) -> Any:
    per_day = dict(boots_by_day(points))
    top = max([*per_day.values(), 1])
    chart = _chart(pygal.Bar, words, words.t("trend_reboots"), x_value_formatter=str, range=(0, top),
                   y_labels=list(range(0, top + 1, max(1, top // 5))))
    chart.x_labels = [day[5:] for day in days]
    chart.add(words.t("trend_reboots_day"), [per_day.get(day, 0) for day in days])
    return chart


def draw(chart_name: str, points: list[Point], words: Words, days: list[str], group: bool, cut: bool = False) -> bytes:
    match chart_name:
        case "optical":
            chart = optical_chart(points, words, group)
        case "temperature":
            chart = temperature_chart(points, words, group)
        case "health":
            chart = health_chart(points, words, group)
        case _:
            chart = reboots_chart(points, words, days)
    if cut:
        chart.title = f"{chart.title} ({words.t('trend_cut', n=GROUP_DOCS)})"
    rendered: bytes = chart.render()
    return rendered


def _svg(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="image/svg+xml", headers=SVG_HEADERS)


@guard(Role.VIEWER)
async def device_trends_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    device = await console.api.services.repositories.devices.get(request.match_info["device_id"])
    if device is None:
        return refuse(request, 404, "device_not_found")
    try:
        days = days_of(request.query)
    except BadRange:
        return refuse(request, 400, "trend_bad_range", ranges=", ".join(map(str, RANGES)))
    return console.renderer.page("trends.html", user_of(request), device=device, days=days, ranges=RANGES,
                                 charts=DEVICE_CHARTS, group=None, kept=TREND_DAYS)


@guard(Role.VIEWER)
async def device_chart(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    chart_name = request.match_info["chart"]
    if chart_name not in DEVICE_CHARTS:
        return refuse(request, 404, "page_not_found")
    device = await services.repositories.devices.get(request.match_info["device_id"])
    if device is None:
        return refuse(request, 404, "device_not_found")
    try:
        days = days_back(services.clock(), days_of(request.query))
    except BadRange:
        return refuse(request, 400, "trend_bad_range", ranges=", ".join(map(str, RANGES)))
    docs = await services.repositories.trends.for_device(device["_id"], days)
    words = words_for(user_of(request))
    return _svg(draw(chart_name, hourly_points(docs), words, days, group=False))


def group_of(query: Any) -> tuple[str, str] | None:
    """(field, key) of the OLT or PON asked for: ``olt`` alone, or ``olt`` and ``pon``."""
    olt, pon = query.get("olt", "").strip(), query.get("pon", "").strip()
    if not olt or len(olt) > 200 or len(pon) > 200 or "#" in olt + pon:
        return None
    return ("pon_day", f"{olt}/{pon}") if pon else ("olt_day", olt)


@guard(Role.VIEWER)
async def group_trends_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    group = group_of(request.query)
    if group is None:
        return refuse(request, 400, "trend_bad_group")
    try:
        days = days_of(request.query)
    except BadRange:
        return refuse(request, 400, "trend_bad_range", ranges=", ".join(map(str, RANGES)))
    olt, pon = request.query["olt"].strip(), request.query.get("pon", "").strip()
    return console.renderer.page("trends.html", user_of(request), device=None, days=days, ranges=RANGES,
                                 charts=GROUP_CHARTS, group={"olt": olt, "pon": pon}, kept=TREND_DAYS,
                                 group_query=urlencode({"olt": olt, **({"pon": pon} if pon else {})}))


@guard(Role.VIEWER)
async def group_chart(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    chart_name = request.match_info["chart"]
    group = group_of(request.query)
    if chart_name not in GROUP_CHARTS:
        return refuse(request, 404, "page_not_found")
    if group is None:
        return refuse(request, 400, "trend_bad_group")
    try:
        days = days_back(services.clock(), days_of(request.query))
    except BadRange:
        return refuse(request, 400, "trend_bad_range", ranges=", ".join(map(str, RANGES)))
    field, key = group
    docs: list[Document] = await services.repositories.trends.for_group(field, key, days, GROUP_DOCS)
    words = words_for(user_of(request))
    return _svg(draw(chart_name, hourly_points(docs), words, days, group=True, cut=len(docs) >= GROUP_DOCS))


ROUTES = [
    web.get("/devices/{device_id}/trends", device_trends_page),
    web.get("/devices/{device_id}/trends/{chart}.svg", device_chart),
    web.get("/trends", group_trends_page),
    web.get("/trends/{chart}.svg", group_chart),
]
