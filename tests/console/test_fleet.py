"""Console, issue 16 items 1 and 2, over real HTTP and the test's database: the fleet overview (every
number links to the list it counts), OLT -> PON -> ONT, and the device list (columns, sort, pages with
a total, saved filters per user, the whole result as CSV)."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import unquote

import pytest

from acs.console import devices_list
from tasks.fleet import FleetCensus, FleetCount, level_status
from tasks.store.fleet import FleetSummaryRepository
from tests.console.conftest import ConsoleHarness, LoggedIn
from tests.console.test_incidents import _incident

COUNT = re.compile(r'id="search-count">\s*(About )?(\d+) devices match')


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str]:
    async with session.http.get(console.url(path)) as response:
        return response.status, await response.text()


async def _post(session: LoggedIn, console: ConsoleHarness, path: str, data: dict[str, str]) -> tuple[int, str]:
    async with session.http.post(console.url(path), data={"csrf": session.csrf, **data},
                                 allow_redirects=False) as response:
        return response.status, response.headers.get("Location", "") or await response.text()


async def _fleet(console: ConsoleHarness) -> None:
    """OLT-A: PON 0/1/1 lit (3 online, one critical), PON 0/1/2 dark (2 offline); OLT-B: 2 online;
    2 devices without an OLT (one of another model and version); regions north and south."""
    devices = console.services.repositories.devices
    for n in range(3):
        health = "critical" if n == 0 else "ok"
        found = await console.device(f"A1-{n}", olt_id="OLT-A", pon_port="0/1/1", health_definite=health,
                                     health={"status": health})
        await devices.add_tags(found, ["region:north"])
    for n in range(2):
        found = await console.device(f"A2-{n}", online=False, olt_id="OLT-A", pon_port="0/1/2")
        await devices.add_tags(found, ["region:north"])
    for n in range(2):
        found = await console.device(f"B1-{n}", olt_id="OLT-B", pon_port="0/0/1", health_definite="warn")
        await devices.add_tags(found, ["region:south"])
    await console.device("LOOSE-0", software_version="V2")
    await console.device("LOOSE-1")


async def _census(console: ConsoleHarness) -> None:
    services = console.services
    await FleetCensus(services.repositories.devices, FleetSummaryRepository(services.database), services.clock).run()


def _listed(page: str) -> int:
    match = COUNT.search(page)
    if match is None:
        return 0 if "No device matches." in page else -1
    return int(match.group(2))


def test_counting_is_pure_and_levels_say_down_degraded_ok() -> None:
    counting = FleetCount()
    for device in [
        {"presence": "online", "health_definite": "critical", "product_class": "X", "software_version": "1",
         "olt_id": "O", "pon_port": "1", "tags": ["region:r"]},
        {"presence": "offline", "product_class": "X", "software_version": "2", "olt_id": "O", "pon_port": "2"},
        {"presence": "online", "product_class": "Y"},
    ]:
        counting.add(device)
    summary = counting.summary()
    assert (summary["total"], summary["online"], summary["offline"], summary["critical"]) == (3, 2, 1, 1)
    assert summary["by_model"][0] == {"model": "X", "total": 2, "online": 1, "offline": 1, "ok": 0, "warn": 0,
                                      "critical": 1}
    pons = {row["pon"]: level_status(row) for row in counting.pons_by_olt()["O"]}
    assert pons == {"1": "degraded", "2": "down"}
    assert (summary["by_olt"][0]["pon_count"], summary["by_olt"][0]["pons_down"]) == (2, 1)
    assert "pons" not in summary["by_olt"][0], "the landing page's document holds no PON rows"
    assert level_status(summary["by_olt"][0]) == "degraded"
    assert level_status({"online": 3, "offline": 0}) == "ok" and level_status({}) == "unknown"


async def test_overview_numbers_link_to_the_lists_they_count(console: ConsoleHarness) -> None:
    viewer = await console.login("viewer")
    status, page = await _get(viewer, console, "/")
    assert status == 200 and 'id="census-pending"' in page and 'id="q"' in page, "the search box stays on /"
    await _fleet(console)
    await _census(console)
    _, page = await _get(viewer, console, "/")
    assert "9 devices, counted" in page
    tiles = {name: (href, int(number)) for href, name, number in
             re.findall(r'<a class="tile[^"]*" href="([^"]+)" id="tile-(\w+)"><b>(\d+)</b>', page)}
    assert tiles["online"][1] == 7 and tiles["offline"][1] == 2 and tiles["critical"][1] == 1
    assert tiles["warn"][1] == 2 and tiles["total"][1] == 9
    for name in ("total", "online", "offline", "critical", "warn"):
        href, number = tiles[name]
        _, listed = await _get(viewer, console, href.replace("&amp;", "&"))
        assert _listed(listed) == number, (name, href)
    # Every number of the breakdowns (model, version, OLT, region) is the size of the list it links to.
    links = re.findall(r'<td><a href="(/\?[^"]+)"[^>]*>(\d+)</a></td>', page)
    assert len(links) >= 4 * 6
    for href, number in links:
        _, listed = await _get(viewer, console, href.replace("&amp;", "&"))
        assert _listed(listed) == int(number), href
    assert "region:south" in unquote(page) or "region%3Asouth" in page


async def test_olt_pon_ont_view_with_the_status_of_each_level(console: ConsoleHarness) -> None:
    viewer = await console.login("viewer")
    await _fleet(console)
    await _census(console)
    _, page = await _get(viewer, console, "/fleet/olts")
    rows = re.findall(r'olt=(OLT-\w)">OLT-\w</a></td><td><span class="lvl lvl-(\w+)">', page)
    assert dict(rows) == {"OLT-A": "degraded", "OLT-B": "ok"}
    assert "1 PON down" in page
    _, page = await _get(viewer, console, "/fleet/olts?olt=OLT-A")
    pons = re.findall(r'pon=([^"]+)">[^<]+</a></td><td><span class="lvl lvl-(\w+)">', page)
    levels = {unquote(pon): level for pon, level in pons}
    assert levels == {"0/1/1": "degraded", "0/1/2": "down"}, "a critical ONT degrades its PON"
    # The PON's ONTs, each with its state (online, health).
    _, page = await _get(viewer, console, "/?olt=OLT-A&pon=0/1/2")
    assert _listed(page) == 2 and page.count('class="badge off"') == 2
    _, page = await _get(viewer, console, "/?olt=OLT-A&pon=0/1/1")
    assert _listed(page) == 3 and 'class="st-critical"' in page
    status, _ = await _get(viewer, console, "/fleet/olts?olt=NOPE")
    assert status == 404


async def test_device_list_columns_sort_pages_and_total(console: ConsoleHarness,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    viewer = await console.login("viewer")
    for n in range(60):
        await console.device(f"LIST{n:03d}", olt_id="OLT-L", pon_port=f"0/0/{n % 3}")
    _, page = await _get(viewer, console, "/?olt=OLT-L&col=version&col=olt_pon")
    assert "60 devices match; showing 1–50." in page
    headers = re.findall(r'data-sort="(\w+)"', page)
    assert headers == ["serial", "olt_pon", "version"], "only the chosen columns, in their order"
    _, page = await _get(viewer, console, "/?olt=OLT-L&sort=-serial")
    serials = re.findall(r'class="result" href="[^"]+">(LIST\d+)<', page)
    assert serials[:2] == ["LIST059", "LIST058"] and len(serials) == 50
    following = re.search(r'href="/\?([^"]+)" id="next-page"', page)
    assert following is not None
    _, page = await _get(viewer, console, "/?" + following.group(1).replace("&amp;", "&"))
    assert "60 devices match; showing 51–60." in page
    assert re.findall(r'class="result" href="[^"]+">(LIST\d+)<', page)[-1] == "LIST000"
    # A result larger than a sort may read: said, and listed in its usual order.
    monkeypatch.setattr(devices_list, "SORT_MAX", 10)
    _, page = await _get(viewer, console, "/?olt=OLT-L&sort=-serial")
    assert 'id="sort-refused"' in page and "60 devices match" in page


async def test_saved_filters_belong_to_their_user(console: ConsoleHarness) -> None:
    olga = await console.login("operator")
    other = await console.login("viewer")
    await console.device("SAVED1", olt_id="OLT-S")
    status, location = await _post(olga, console, "/saved-filters",
                                   {"name": "OLT-S offline", "query": "olt=OLT-S&online=no&cols=health&cursor=x"})
    assert status == 303 and location == "/?olt=OLT-S&online=no&cols=health", "the page position is not saved"
    _, page = await _get(olga, console, "/?all=1")
    saved = re.search(r'<a href="/\?([^"]+)" class="saved-filter">OLT-S offline</a>', page)
    assert saved is not None
    _, page = await _get(other, console, "/?all=1")
    assert "OLT-S offline" not in page
    status, _ = await _post(olga, console, "/saved-filters", {"name": "", "query": "olt=OLT-S"})
    assert status == 422
    filter_id = re.search(r'action="/saved-filters/([^/]+)/delete"', (await _get(olga, console, "/?all=1"))[1])
    assert filter_id is not None
    status, _ = await _post(other, console, f"/saved-filters/{filter_id.group(1)}/delete", {})
    assert status == 404, "another user cannot delete it"
    status, _ = await _post(olga, console, f"/saved-filters/{filter_id.group(1)}/delete", {})
    assert status == 303
    assert "OLT-S offline" not in (await _get(olga, console, "/?all=1"))[1]


async def test_csv_export_holds_the_whole_result(console: ConsoleHarness) -> None:
    viewer = await console.login("viewer")
    for n in range(70):
        found = await console.device(f"CSV{n:03d}", olt_id="OLT-C")
        if n == 0:
            await console.services.repositories.devices.add_tags(found, ["=cmd|calc"])
    await console.device("OTHER1", olt_id="OLT-D")
    wanted = {"olt": "OLT-C", "cols": "olt_pon,tags"}
    async with viewer.http.get(console.url("/devices.csv"), params=wanted) as response:
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["Device ID", "Serial", "OLT / PON", "Tags"]
    assert len(rows) == 71 and {row[1] for row in rows[1:]} == {f"CSV{n:03d}" for n in range(70)}
    assert [row[3] for row in rows[1:] if row[1] == "CSV000"] == ["'=cmd|calc"], "no formula in a spreadsheet"
    anonymous = console.client()
    async with anonymous.get(console.url("/devices.csv"), allow_redirects=False) as response:
        assert response.status == 303


async def test_list_on_incident_members_and_health(console: ConsoleHarness) -> None:
    viewer = await console.login("viewer")
    ids = [await console.device(f"INC{n}", health_definite="critical" if n < 2 else "ok") for n in range(4)]
    number = await _incident(console, ids[:3])
    _, page = await _get(viewer, console, f"/?incident={number}&health=critical")
    assert _listed(page) == 2 and f'href="/incidents/{number}">#{number}<' in page
    await _census(console)
    _, page = await _get(viewer, console, "/")
    assert re.search(r'id="tile-incident"><b>3</b>', page), "devices in an open incident"
