"""The device list sorted by last inform, newest first, read slice by slice (issue 13 item 3;
``tasks/store/newest_informs.py``), over real HTTP and the test's database: every page lists the
same devices in the same order as the list read whole and sorted, the next page too, on a fleet
spread over hours, ten-minute slices and minutes, with ties, devices informed days ago (past the
walk: read whole) and devices that never informed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cwmp.device_id import make_device_id
from tasks import search
from tasks.store import devices as devices_module
from tasks.store import newest_informs
from tasks.store.devices import SEARCH_BACKFILL, DeviceRepository
from tests.console.conftest import ConsoleHarness, LoggedIn

SERIAL = re.compile(r'class="result" href="[^"]+">(W\d+)<')
NEXT = re.compile(r'href="/\?([^"]+)" id="next-page"')
COUNT = re.compile(r'id="search-count">\s*(About )?(\d+) devices match')


async def _fleet(console: ConsoleHarness) -> int:
    """OLT-W: 120 devices 7 s apart from now (about 14 minutes: two or three ten-minute slices, 8-9 a
    minute), 40 at four instants two hours back (ties of 10), 200 five hours back, 15 three days
    back, 5 that never informed (written as an import would); 10 of another OLT among the newest."""
    now = datetime.now(UTC).replace(microsecond=0)
    repository = console.services.repositories.devices
    when = [now - timedelta(seconds=7 * n) for n in range(120)]
    when += [now - timedelta(hours=2, seconds=n // 10) for n in range(40)]
    when += [now - timedelta(hours=5, seconds=17 * n) for n in range(200)]
    when += [now - timedelta(days=3, minutes=n) for n in range(15)]
    for n, moment in enumerate(when):
        await _inform(repository, f"W{n:04d}", moment, "OLT-W")
    for n in range(10):
        await _inform(repository, f"X{n:04d}", now - timedelta(seconds=n), "OLT-X")
    for n in range(375, 380):
        device_id = make_device_id("00E0FC", "HG8245H", f"W{n:04d}")
        facts = {"serial_number": f"W{n:04d}", "tags": []}
        await console.services.database.collection("devices").insert_one(
            {"_id": device_id, "oui": "00E0FC", "product_class": "HG8245H", "olt_id": "OLT-W", **facts,
             **search.search_fields(device_id, facts)})
    return 380


async def _inform(repository: Any, serial: str, moment: datetime, olt: str) -> None:
    identity = {"oui": "00E0FC", "product_class": "HG8245H", "serial_number": serial, "manufacturer": "Huawei"}
    state = {"software_version": "V1", "remote_ip": "10.1.2.3", "last_events": ["2 PERIODIC"], "olt_id": olt,
             "offline_after": moment + timedelta(minutes=10), "presence": "online"}
    await repository.record_inform(make_device_id("00E0FC", "HG8245H", serial), identity, state, moment)


async def _pages(viewer: LoggedIn, console: ConsoleHarness) -> list[tuple[list[str], str]]:
    """Each page of ``/?olt=OLT-W&sort=-last_inform``, following its next-page links: (serials, its
    total as the page says it: "180" exact, "about 192" estimated)."""
    pages: list[tuple[list[str], str]] = []
    path: str | None = "/?olt=OLT-W&sort=-last_inform"
    while path is not None:
        async with viewer.http.get(console.url(path)) as response:
            assert response.status == 200
            page = await response.text()
        assert 'id="sort-refused"' not in page
        count = COUNT.search(page)
        assert count is not None
        pages.append((SERIAL.findall(page), ("about " if count.group(1) else "") + count.group(2)))
        following = NEXT.search(page)
        path = "/?" + following.group(1).replace("&amp;", "&") if following else None
    return pages


def _counted_walks(
    monkeypatch: pytest.MonkeyPatch, queries: list[dict[str, Any]] | None = None
) -> list[list[int]]:
    """Per page: the documents each of its walk's reads returned, -1 if it gave up; ``queries``
    gets each read's query."""
    walks: list[list[int]] = []
    walked = newest_informs.newest_first

    async def counted(read_slice: newest_informs.Read, query: dict[str, Any], want: int,
                      now: datetime, **options: Any) -> list[dict[str, Any]] | None:
        walks.append([])

        async def counting(slice_query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
            found = await read_slice(slice_query, limit)
            walks[-1].append(len(found))
            if queries is not None:
                queries.append(slice_query)
            return found

        result = await walked(counting, query, want, now, **options)
        if result is None:
            walks[-1].append(-1)  # the walk gave up (read whole instead)
        return result

    monkeypatch.setattr(newest_informs, "newest_first", counted)
    return walks


async def test_newest_first_by_slices_lists_what_the_whole_read_lists(
    console: ConsoleHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = await _fleet(console)
    viewer = await console.login("viewer")
    whole = await _pages(viewer, console)  # the search fields' pass not complete: read whole and sorted
    assert [len(serials) for serials, _ in whole] == [50] * 7 + [30]
    assert whole[0][1] == str(fleet), "read whole: exact"
    listed = [serial for serials, _ in whole for serial in serials]
    assert listed[:120] == [f"W{n:04d}" for n in range(120)] and set(listed[-5:]) == {f"W{n:04d}" for n in
                                                                                       range(375, 380)}

    await console.services.database.collection("job_state").update_one(
        {"_id": SEARCH_BACKFILL}, {"$set": {"version": search.VERSION}}, upsert=True)
    monkeypatch.setattr(console.services.repositories.devices, "_version_checked", -1e18)
    queries: list[dict[str, Any]] = []
    walks = _counted_walks(monkeypatch, queries)
    monkeypatch.setattr(devices_module, "NEWEST_WHOLE_MAX", -1)  # the fleet is small: walk it anyway
    by_slices = await _pages(viewer, console)
    assert [serials for serials, _ in by_slices] == [serials for serials, _ in whole], "same devices, same order"
    # What the first page decodes (FerretDB decodes what a read returns, up to its limit): the 51 it
    # needs, whole minutes, and probes of at most PROBE_MAX (8) + 1, never a slice's first 52 again and
    # again (164 before the samples: the hour's probe, a ten-minute slice's, then minutes).
    first = walks[0]
    assert -1 not in first and sum(first) <= 51 + 4 * 9, f"the first page read {first}"
    assert by_slices[0][1].startswith("about "), "the total estimated, and said so"
    gave_up = [-1 in reads for reads in walks]
    assert gave_up.count(True) == 1 and gave_up[-1], "only the last page (devices three days back) is read whole"
    assert by_slices[-1][1] == str(fleet)
    # Each read names the OLT's slice in one token (one posting list), never the OLT and a slice
    # apart (PostgreSQL chose between their two indexes by the day's statistics) nor the group.
    assert queries and all(set(query) == {search.OLT_SLICES_FIELD} and query[search.OLT_SLICES_FIELD].startswith(
        "OLT-W|") for query in queries), queries[:3]


async def test_the_olt_named_slices_wait_for_their_backfill_and_a_moved_device_reads_whole(
    console: ConsoleHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the search fields' pass of version 5 completes, a list of one OLT walks the slices
    without the OLT's name (version 4's reads: devices stored before keep being listed); after it,
    a device whose tokens name an OLT it left is not listed there: the list is read whole."""
    await _fleet(console)
    viewer = await console.login("viewer")
    whole = await _pages(viewer, console)
    repository = console.services.repositories.devices
    state = console.services.database.collection("job_state")
    monkeypatch.setattr(devices_module, "NEWEST_WHOLE_MAX", -1)
    queries: list[dict[str, Any]] = []
    walks = _counted_walks(monkeypatch, queries)

    await state.update_one({"_id": SEARCH_BACKFILL}, {"$set": {"version": 4}}, upsert=True)
    monkeypatch.setattr(repository, "_version_checked", -1e18)
    assert [serials for serials, _ in await _pages(viewer, console)] == [serials for serials, _ in whole]
    assert queries and all(query.get("olt_id") == "OLT-W" and search.OLT_SLICES_FIELD not in query
                           for query in queries), queries[:3]

    await state.update_one({"_id": SEARCH_BACKFILL}, {"$set": {"version": search.VERSION}})
    monkeypatch.setattr(repository, "_version", 0)
    monkeypatch.setattr(repository, "_version_checked", -1e18)
    # W0003 moved to OLT-X behind the tokens' back (as a write by another process could leave it).
    moved = make_device_id("00E0FC", "HG8245H", "W0003")
    await console.services.database.collection("devices").update_one({"_id": moved}, {"$set": {"olt_id": "OLT-X"}})
    walks.clear()
    pages = await _pages(viewer, console)
    assert pages[0][0][:4] == ["W0000", "W0001", "W0002", "W0004"], "not listed on the OLT it left"
    assert [serial for serials, _ in pages for serial in serials] == [
        serial for serials, _ in whole for serial in serials if serial != "W0003"]


async def test_an_inform_names_the_stored_olt_in_its_slices(console: ConsoleHarness) -> None:
    """The OLT is stored by the health read, not carried by the Inform: an Inform writes the OLT this
    process last saw stored for the device; the first one a process takes (nothing seen yet) is put
    right by a second write, later ones need none."""
    repository = console.services.repositories.devices
    device_id = make_device_id("00E0FC", "HG8245H", "OLT0001")
    identity = {"oui": "00E0FC", "product_class": "HG8245H", "serial_number": "OLT0001", "manufacturer": "Huawei"}
    t0 = datetime.now(UTC).replace(microsecond=0)
    await repository.record_inform(device_id, identity, {"presence": "online"}, t0)
    await repository.set_fields(device_id, {"olt_id": "OLT-A"})  # as the health read stores it

    fresh = DeviceRepository(console.services.database)  # another process: it has seen no OLT
    writes: list[Any] = []
    original = fresh._writer.write

    async def counted(operation: Any) -> Any:
        writes.append(operation)
        return await original(operation)

    fresh._writer.write = counted  # type: ignore[method-assign]
    for n, moment in enumerate((t0 + timedelta(minutes=1), t0 + timedelta(minutes=2))):
        device, _ = await fresh.record_inform(device_id, identity, {"presence": "online"}, moment)
        stored = await console.services.database.collection("devices").find_one({"_id": device_id})
        assert stored is not None
        expected = search.olt_inform_slices(device_id, "OLT-A", moment)[search.OLT_SLICES_FIELD]
        assert stored[search.OLT_SLICES_FIELD] == expected and device[search.OLT_SLICES_FIELD] == expected
        assert len(writes) == 1, f"Inform {n}: {writes}"  # the first put right, the second needs nothing


async def test_a_device_without_slices_keeps_the_list_read_whole(
    console: ConsoleHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the search fields' pass of the slices' version completes, a device stored before them
    (no ``last_inform_slices``) may be among the newest: the list is read whole."""
    await _fleet(console)
    newest = make_device_id("00E0FC", "HG8245H", "W0000")
    await console.services.database.collection("devices").update_one(
        {"_id": newest}, {"$unset": {search.INFORM_SLICES_FIELD: ""}})
    monkeypatch.setattr(devices_module, "NEWEST_WHOLE_MAX", -1)
    viewer = await console.login("viewer")
    pages = await _pages(viewer, console)
    assert pages[0][0][0] == "W0000"


async def test_a_walk_of_one_olt_reads_empty_hours_eight_at_once_after_the_first() -> None:
    """Of one OLT the empty hours cost empty posting lists: after the newest, eight at once (of any
    other filter 1, 2, 4, then 8), so a fleet silent for 13 hours costs 3 waves, not 4."""
    now = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    devices = [{"_id": f"D{n:02d}", "last_inform": now - timedelta(hours=13, seconds=n)} for n in range(60)]
    tokens: list[str] = []

    async def read(query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        token = query[search.OLT_SLICES_FIELD]
        tokens.append(token)
        sample = "|s|" in token
        return [device for device in devices
                if token in search.olt_inform_slices("", "OLT-1", device["last_inform"])[search.OLT_SLICES_FIELD]
                or (sample and token.replace("|s|", "|") in search.olt_inform_slices(
                    "", "OLT-1", device["last_inform"])[search.OLT_SLICES_FIELD] and device["_id"] == "D00")][:limit]

    found = await newest_informs.newest_first(read, {"olt_id": "OLT-1"}, 51, now, by_olt=True)
    assert found is not None and len(found) >= 51
    hour_samples = [token for token in tokens if token.startswith("OLT-1|s|h")]
    assert tokens[:2] == [hour_samples[0], hour_samples[0].replace("|s|", "|")], tokens[:2]
    assert all(token.startswith("OLT-1|s|h") for token in tokens[2:10]), tokens[2:10]
