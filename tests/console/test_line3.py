"""Line-3 tools over real HTTP (issue 16 item 8): notes, the parameter diff (secrets never shown),
configuration backup (Upload) and restore (Download) as ordinary tasks with the file store."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tasks.store.files import NewFile
from tests.console.conftest import ConsoleHarness, LoggedIn

LAN = "InternetGatewayDevice.LANDevice.1."
WLAN = LAN + "WLANConfiguration.1."


async def _post(session: LoggedIn, console: ConsoleHarness, path: str, data: dict[str, str]) -> tuple[int, str]:
    async with session.http.post(console.url(path), data={**data, "csrf": session.csrf},
                                 allow_redirects=False) as response:
        return response.status, await response.text()


async def _get(session: LoggedIn, console: ConsoleHarness, path: str) -> tuple[int, str]:
    async with session.http.get(console.url(path)) as response:
        return response.status, await response.text()


async def test_notes_are_written_by_operators_read_by_all_and_audited(console: ConsoleHarness) -> None:
    device_id = await console.device("NOTE1")
    operator, viewer = await console.login("operator"), await console.login("viewer")
    status, _ = await _post(operator, console, f"/devices/{device_id}/notes",
                            {"text": "Customer's Wi-Fi extender <b>reboots</b> the ONT; see ticket 4411"})
    assert status == 303
    status, page = await _get(viewer, console, f"/devices/{device_id}/tools")
    assert status == 200 and "see ticket 4411" in page and "&lt;b&gt;reboots&lt;/b&gt;" in page, "escaped"
    assert "user:u-operator" in page
    assert (await _post(viewer, console, f"/devices/{device_id}/notes", {"text": "x"}))[0] == 403
    status, page = await _post(operator, console, f"/devices/{device_id}/notes", {"text": "y" * 2001})
    assert status == 422 and "at most 2000 characters" in page
    notes = await console.services.repositories.notes.for_device(device_id)
    assert len(notes) == 1
    status, _ = await _post(operator, console, f"/devices/{device_id}/notes/{notes[0]['_id']}/delete", {})
    assert status == 303 and await console.services.repositories.notes.for_device(device_id) == []


async def test_the_diff_shows_differences_and_never_a_secret(console: ConsoleHarness) -> None:
    parameters = console.services.repositories.parameters
    now = console.services.clock()
    mine, theirs = await console.device("DIFFA1"), await console.device("DIFFB2")
    channel = (WLAN + "Channel", "6", "xsd:unsignedInt")
    await parameters.set_values(mine, [(WLAN + "SSID", "home-A", "xsd:string"), channel,
                                       (WLAN + "KeyPassphrase", "first-secret-key", "xsd:string"),
                                       (LAN + "Hosts.Host.1.HostName", "tv", "xsd:string")], now)
    await parameters.set_values(theirs, [(WLAN + "SSID", "home-B", "xsd:string"), channel,
                                         (WLAN + "KeyPassphrase", "second-secret-key", "xsd:string")], now)
    viewer = await console.login("viewer")
    status, page = await _get(viewer, console, f"/devices/{mine}/diff?other=DIFFB2&prefix={LAN}")
    assert status == 200, page
    assert "home-A" in page and "home-B" in page and "Hosts.Host.1.HostName" in page and "(absent)" in page
    assert "2 parameters differ" in page, "the channel is the same; the two keys compare masked"
    assert "secret-key" not in page
    status, page = await _get(viewer, console, f"/devices/{mine}/diff?other=NOSUCH")
    assert status == 404 and "No single device matches" in page
    status, _ = await _get(viewer, console, f"/devices/{mine}/diff?other=DIFFB2&prefix=NoDot")
    assert status == 400


async def _content(text: bytes) -> AsyncIterator[bytes]:
    yield text


async def test_backup_is_an_upload_and_restore_a_download_of_that_file(console: ConsoleHarness) -> None:
    services = console.services
    repositories = services.repositories
    device_id = await console.device("CFG1")
    other_id = await console.device("CFG2")
    operator, admin = await console.login("operator"), await console.login("admin")
    status, _ = await _post(operator, console, f"/devices/{device_id}/config/backup", {})
    assert status == 303
    [upload] = [task for task in await repositories.tasks.for_device(device_id, None, 10) if task["kind"] == "upload"]
    assert upload["params"]["file_type"] == "1 Vendor Configuration File"
    assert f"/uploads/{upload['_id']}/" in upload["params"]["url"], "the ACS's own upload URL"

    # What the CWMP listener stores when the device PUTs its file (acs/cwmp_server/files.py).
    stored = await repositories.files.put(
        _content(b"<config>pppoe password=hunter2</config>"),
        NewFile(name="config.xml", file_type="1 Vendor Configuration File", content_type="application/octet-stream",
                uploaded_by="device", task_id=upload["_id"], device_id=device_id),
        services.clock(), 1 << 20)
    status, page = await _get(operator, console, f"/devices/{device_id}/tools")
    assert 'id="backups"' in page and "Download file" not in page, "only admins download a configuration file"
    async with operator.http.get(console.url(f"/devices/{device_id}/config/{stored['_id']}")) as response:
        assert response.status == 403
    async with admin.http.get(console.url(f"/devices/{device_id}/config/{stored['_id']}")) as response:
        assert response.status == 200 and await response.read() == b"<config>pppoe password=hunter2</config>"
        assert response.headers["Content-Disposition"].startswith("attachment;")

    status, page = await _post(operator, console, f"/devices/{device_id}/config/restore", {"file_id": stored["_id"]})
    assert status == 422 and "needs confirmation" in page
    status, page = await _post(operator, console, f"/devices/{other_id}/config/restore",
                               {"file_id": stored["_id"], "confirm": "yes"})
    assert status == 404 and "not a configuration backup of this device" in page
    status, _ = await _post(operator, console, f"/devices/{device_id}/config/restore",
                            {"file_id": stored["_id"], "confirm": "yes"})
    assert status == 303
    [download] = [task for task in await repositories.tasks.for_device(device_id, None, 10)
                  if task["kind"] == "download"]
    assert download["params"]["file_type"] == "3 Vendor Configuration File"
    assert download["params"]["url"].endswith(f"/files/{stored['_id']}") and download["params"]["file_size"] == 39
    status, page = await _get(operator, console, f"/devices/{device_id}/tools")
    assert page.count('class="st-queued"') == 2, "the backup and the restore are listed with their state"
