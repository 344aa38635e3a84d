"""The device list (``/`` with a search or filter): chosen columns, sort, pages with a total,
filters saved per user, and the whole result as CSV.

Every filter is a top-level equality (``DeviceFilter``: ``search`` tokens, ``presence``,
``health_definite``, ``product_class``, ``software_version``, ``olt_id``/``pon_port``, tags; an
open incident's members by the marks the incident job writes on them, a page in one read, the rest by
``_id``: tasks/store/incident_members.py), so FerretDB 1.24 serves it from an index at any fleet size:

- unsorted (the default), pages come from ``DeviceRepository.search_page`` (a small result read
  whole in device-id order with an exact total; a large one read one ``page_group``/``page_bucket``
  partition at a time, its total estimated from the partitions its first page read);
- sorted by a column: only a result of at most ``SORT_MAX`` devices (read whole, sorted here): a
  sort over a larger one would read and sort every match on each page, so the page says to narrow
  the filter first; except by last inform, newest first, once every device has its last inform's
  slices: read slice by slice until the page is filled (``DeviceRepository.newest_informed``), any
  size, its total estimated;
- CSV: every match, streamed partition by partition (``stream_partitions``), never held whole.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from aiohttp import web

from acs.api.errors import ApiError
from acs.api.pagination import decode_cursor, encode_cursor
from acs.console.render import words_for
from acs.console.web import console_of, form_of, guard, refuse, user_of
from schemas.api import Role
from tasks.search import normal_mac
from tasks.store.db import Document
from tasks.store.devices import DeviceFilter, is_online
from tasks.store.saved_filters import SavedFilterRepository

PAGE_SIZE = 50
SORT_MAX = 1000
# The list's query-string names: filters, then the list's own.
FILTERS = ("q", "model", "version", "tag", "online", "health", "olt", "pon", "incident")
HEALTH_LEVELS = ("ok", "warn", "critical")
# Columns (besides the serial number, always first), in the order they are offered.
COLUMNS = ("online", "health", "olt_pon", "model", "version", "last_inform", "ip", "tags", "incident")
DEFAULT_COLUMNS = ("online", "health", "olt_pon", "model", "version", "last_inform", "ip", "tags", "incident")
SORTABLE = ("serial", *COLUMNS)
MAX_FILTER_NAME = 60
CISCO_MAC = re.compile(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")


def label_mac(text: str) -> str | None:
    """A MAC in any spelling line 2 copies off a box or a switch: AA-BB-.., aabb.., AA:BB:.., Cisco's aabb.ccdd.eeff."""
    if CISCO_MAC.fullmatch(text):
        text = text.replace(".", "")
    return normal_mac(text)


def search_filter(query: Mapping[str, str], members: Document | None = None) -> DeviceFilter:
    """The list's filters as a device filter; ``members``: only this incident's devices (the incident
    filter; an open incident's first ``marked`` members read by their mark: tasks/store/incident_members.py)."""
    online = {"yes": True, "no": False}.get(query.get("online", ""))
    text = query.get("q", "").strip()
    mac = label_mac(text)
    if mac is not None:
        text = mac  # stored as AA:BB:CC:DD:EE:FF
    health = query.get("health") or None
    return DeviceFilter(
        q=text or None,
        product_class=query.get("model") or None,
        software_version=query.get("version") or None,
        tag=query.get("tag") or None,
        online=online,
        device_ids=tuple(members.get("members") or []) if members is not None else None,
        incident=members.get("_id") if members is not None else None,
        marked=int(members.get("marked") or 0) if members is not None and members.get("status") == "open" else 0,
        olt_id=query.get("olt") or None,
        pon_port=(query.get("pon") or None) if query.get("olt") else None,  # a PON port means nothing alone
        health=health if health in HEALTH_LEVELS else None,
    )


def is_search(query: Mapping[str, str]) -> bool:
    """Whether ``/`` shows the list (a filter, or ``all``) rather than the fleet overview."""
    return any(query.get(key) for key in (*FILTERS, "all"))


def chosen_columns(query: Mapping[str, str]) -> list[str]:
    text = query.get("cols")
    if text is None:
        return list(DEFAULT_COLUMNS)
    wanted = {name for name in text.split(",") if name}
    return [name for name in COLUMNS if name in wanted]


def _sort_of(query: Mapping[str, str]) -> tuple[str, bool] | None:
    text = query.get("sort", "")
    descending = text.startswith("-")
    name = text.removeprefix("-")
    return (name, descending) if name in SORTABLE else None


def sort_key(name: str, incident_of: Mapping[str, int]) -> Any:
    def key(device: Mapping[str, Any]) -> Any:
        match name:
            case "serial":
                value: Any = device.get("serial_number") or ""
            case "online":
                value = device.get("presence") or ""
            case "health":
                value = ((device.get("health") or {}).get("status")) or ""
            case "olt_pon":
                value = (str(device.get("olt_id") or ""), str(device.get("pon_port") or ""))
            case "model":
                value = device.get("model_name") or device.get("product_class") or ""
            case "version":
                value = device.get("software_version") or ""
            case "last_inform":
                value = device.get("last_inform") or datetime.min.replace(tzinfo=UTC)
            case "ip":
                value = device.get("remote_ip") or ""
            case "tags":
                value = ",".join(device.get("tags") or [])
            case _:
                value = incident_of.get(device["_id"], 0)
        return value, device["_id"]

    return key


async def _members(request: web.Request, query: Mapping[str, str]) -> tuple[Document | None, list[Document]]:
    """The chosen incident (None: no incident filter; no members: no such incident), and the open incidents."""
    console = console_of(request)
    if "incidents" not in console.panels:
        return None, []
    incidents = console.api.services.repositories.incidents
    open_incidents = sorted(await incidents.open_incidents(), key=lambda i: -i["_id"])
    if not query.get("incident"):
        return None, open_incidents
    text = query["incident"]
    number = int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
    incident = next((one for one in open_incidents if one["_id"] == number), None)  # read already
    if incident is None and number is not None:
        incident = await incidents.get(number)
    return incident or {"members": []}, open_incidents


def _incident_of(open_incidents: list[Document]) -> dict[str, int]:
    found: dict[str, int] = {}
    for incident in open_incidents:
        for member in incident.get("members") or []:
            found.setdefault(member, incident["_id"])
    return found


def _position(cursor: str | None) -> dict[str, Any] | None:
    try:
        return decode_cursor(cursor)
    except ApiError:
        return None  # not a cursor this page made: the first page


def _number(text: str | None, default: int) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 10 else default


def query_of(request: web.Request) -> dict[str, str]:
    """The query string as one value per name; the column check boxes (``col``, repeated) as ``cols``."""
    query = {key: value for key, value in request.query.items() if isinstance(value, str) and key != "col"}
    picked = request.query.getall("col", [])
    if picked:
        query["cols"] = ",".join(picked)
    return query


def plain_query(query: Mapping[str, str]) -> dict[str, str]:
    """Filters, columns and sort: what a saved filter and the page links keep (no page position)."""
    return {key: value for key, value in query.items() if key in (*FILTERS, "all", "cols", "sort") and value}


async def device_list(request: web.Request) -> web.StreamResponse:
    """The list page; the caller (``pages.search``) checked the login."""
    console = console_of(request)
    services = console.api.services
    user = user_of(request)
    query = query_of(request)
    members, open_incidents = await _members(request, query)
    device_filter = search_filter(query, members)
    devices = services.repositories.devices
    incident_of = _incident_of(open_incidents)
    plain = plain_query(query)
    sort = _sort_of(query)
    sort_refused = False
    first = _number(query.get("from"), 1)
    next_query: str | None = None
    newest = None
    if sort == ("last_inform", True) and first - 1 + PAGE_SIZE <= SORT_MAX:  # as deep as a sort read whole
        newest = await devices.newest_informed(device_filter, first + PAGE_SIZE, services.clock())
    if newest is not None:
        found, total, exact = newest.devices[first - 1:first - 1 + PAGE_SIZE], newest.total, newest.total_exact
        if len(newest.devices) > first - 1 + PAGE_SIZE and first - 1 + 2 * PAGE_SIZE <= SORT_MAX:
            next_query = urlencode({**plain, "from": first + PAGE_SIZE})
    elif sort is not None:
        matched = await devices.read_whole(device_filter, None, SORT_MAX)
        if matched is None:
            sort, sort_refused = None, True
        else:
            matched.sort(key=sort_key(sort[0], incident_of), reverse=sort[1])
            first = max(1, min(first, len(matched) or 1))
            found = matched[first - 1:first - 1 + PAGE_SIZE]
            total, exact = len(matched), True
            if first - 1 + PAGE_SIZE < len(matched):
                next_query = urlencode({**plain, "from": first + PAGE_SIZE})
    if sort is None:
        position = _position(query.get("cursor"))
        page = await devices.search_page(device_filter, position, PAGE_SIZE)
        found, total, exact = page.devices, page.total, page.total_exact
        if query.get("q") and position is None and len(found) == 1 and page.next_position is None:
            raise web.HTTPSeeOther(f"/devices/{quote(found[0]['_id'], safe='')}")  # one match: open it directly
        if position is None:
            first = 1
        if page.next_position is not None:
            next_query = urlencode({**{k: v for k, v in plain.items() if k != "sort"},
                                    "cursor": encode_cursor(page.next_position), "from": first + len(found)})
    now = services.clock()
    rows = [{"device": device, "online": is_online(device, now), "incident": incident_of.get(device["_id"])}
            for device in found]
    saved = await SavedFilterRepository(services.database).for_user(user.username)
    return console.renderer.page(
        "search.html", user, query=query, rows=rows, searched=True, total=total, total_exact=exact,
        first=first, last=first + len(found) - 1, next_query=next_query,
        first_query=urlencode(plain) if first > 1 else None, quote=quote, open_incidents=open_incidents,
        columns=chosen_columns(query), all_columns=COLUMNS, sort=sort, sort_refused=sort_refused,
        sort_max=SORT_MAX, plain=plain, urlencode=urlencode, saved=saved, health_levels=HEALTH_LEVELS,
        filters_only=urlencode({k: v for k, v in plain.items() if k in (*FILTERS, "all")}),
    )


@guard(Role.VIEWER)
async def export_csv(request: web.Request) -> web.StreamResponse:
    """Every device of the list's filters as CSV (its chosen columns), streamed."""
    console = console_of(request)
    services = console.api.services
    user = user_of(request)
    query = query_of(request)
    members, open_incidents = await _members(request, query)
    device_filter = search_filter(query, members)
    incident_of = _incident_of(open_incidents)
    columns = chosen_columns(query)
    words = words_for(user)
    t = words.t
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="devices.csv"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })
    await response.prepare(request)
    header = [t("device_id"), t("serial"), *[t("col_" + name) for name in columns]]
    await response.write(_csv_line(header))
    now = services.clock()
    lines: list[str] = []
    async for device in services.repositories.devices.stream_partitions(device_filter, None):
        lines.append(_csv_line([device["_id"], device.get("serial_number") or "",
                                *[_cell(name, device, now, incident_of, words) for name in columns]]).decode())
        if len(lines) >= 500:
            await response.write("".join(lines).encode())
            lines = []
    if lines:
        await response.write("".join(lines).encode())
    await response.write_eof()
    return response


def _csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    # A cell starting with = + - @ would be a formula in a spreadsheet: quoted with a leading '.
    csv.writer(out).writerow(["'" + cell if cell[:1] in ("=", "+", "-", "@") else cell for cell in cells])
    return out.getvalue().encode()


def _cell(name: str, device: Mapping[str, Any], now: datetime, incident_of: Mapping[str, int], words: Any) -> str:
    t = words.t
    match name:
        case "online":
            return str(t("online") if is_online(dict(device), now) else t("offline"))
        case "health":
            status = (device.get("health") or {}).get("status")
            return str(t(f"health_{status}")) if status else ""
        case "olt_pon":
            return " ".join(str(part) for part in (device.get("olt_id"), device.get("pon_port")) if part)
        case "model":
            return str(device.get("model_name") or device.get("product_class") or "")
        case "version":
            return str(device.get("software_version") or "")
        case "last_inform":
            return str(words.when(device.get("last_inform")))
        case "ip":
            return str(device.get("remote_ip") or "")
        case "tags":
            return " ".join(device.get("tags") or [])
        case _:
            number = incident_of.get(device["_id"])
            return f"#{number}" if number is not None else ""


@guard(Role.VIEWER)
async def save_filter(request: web.Request) -> web.StreamResponse:
    """Save the list's filters, columns and sort under a name, for this user only."""
    console = console_of(request)
    form = await form_of(request)
    name = form.get("name", "").strip()
    query = plain_query(dict(parse_qsl(form.get("query", ""))))
    if not name or len(name) > MAX_FILTER_NAME or not query:
        return refuse(request, 422, "filter_invalid")
    repository = SavedFilterRepository(console.api.services.database)
    if not await repository.save(user_of(request).username, name, urlencode(query), console.api.services.clock()):
        return refuse(request, 409, "filter_too_many")
    raise web.HTTPSeeOther("/?" + urlencode(query))


@guard(Role.VIEWER)
async def delete_filter(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    repository = SavedFilterRepository(console.api.services.database)
    if not await repository.delete(user_of(request).username, request.match_info["filter_id"]):
        return refuse(request, 404, "not_found")
    raise web.HTTPSeeOther("/")


ROUTES = [
    web.get("/devices.csv", export_csv),
    web.post("/saved-filters", save_filter),
    web.post("/saved-filters/{filter_id}/delete", delete_filter),
]
