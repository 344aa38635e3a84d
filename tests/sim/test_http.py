"""The simulator over real HTTP on 127.0.0.1: sessions, cookies, auth, connection requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from acs.sim.crlistener import REALM
from acs.sim.fleet import Fleet, FleetConfig
from cwmp import (
    AddObjectResponse,
    Download,
    Fault,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValue,
    Reboot,
    SetParameterValues,
)
from cwmp.httpauth import digest_authorization, parse_challenge
from cwmp.models import AddObject
from tests.sim.fake_acs import PASSWORD, USER, FakeAcs


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def acs() -> AsyncIterator[FakeAcs]:
    fake = FakeAcs()
    await fake.start()
    yield fake
    await fake.stop()


FleetFactory = Callable[..., Awaitable[Fleet]]


@pytest.fixture
async def fleet_of(acs: FakeAcs) -> AsyncIterator[FleetFactory]:
    fleets: list[Fleet] = []

    async def make(**options: object) -> Fleet:
        config = FleetConfig(url=acs.url, ramp=200.0, boot_seconds=0.2, transfer_io=False, **options)  # type: ignore[arg-type]
        fleet = Fleet(config)
        fleet.settings.transfer_seconds = 0.05
        await fleet.start()
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        await fleet.stop()


async def test_fleet_bootstraps_every_device_with_cookies_echoed(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=6, profile="mix")
    await wait_for(lambda: fleet.stats.sessions_ok == 6)
    assert {tuple(events) for serial in fleet._by_serial for events in acs.events_of(serial)} == {
        ("0 BOOTSTRAP", "1 BOOT")
    }
    # Only the Informs come without a cookie; every later message echoes the session's cookie.
    assert acs.cookies_seen.count(None) == 6
    assert {c for c in acs.cookies_seen if c is not None} == set(acs.sessions)
    assert fleet.snapshot().online == 6


async def test_rpcs_in_a_session_and_reboot_comes_back_with_m_reboot(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=1)
    await wait_for(lambda: fleet.stats.sessions_ok == 1)
    device = fleet.devices[0]
    root = device.profile.root
    acs.queued[device.serial] += [
        SetParameterValues(
            parameters=(ParameterValue(name=root + "ManagementServer.PeriodicInformInterval", value="abc"),),
            parameter_key="bad",
        ),
        AddObject(object_name=root + "WANDevice.1.WANConnectionDevice.2.WANPPPConnection."),
        GetParameterValues(names=(root + "DeviceInfo.UpTime",)),
        Reboot(command_key="rb"),
    ]
    outcome = await fleet.run_session(device.serial)
    assert outcome.ok and outcome.requests == ["SetParameterValues", "AddObject", "GetParameterValues", "Reboot"]
    answers = acs.responses[device.serial]
    assert isinstance(answers[0], Fault) and answers[0].set_parameter_values_faults[0].fault_code == 9007
    assert isinstance(answers[1], AddObjectResponse) and answers[1].instance_number == 2
    assert isinstance(answers[2], GetParameterValuesResponse)
    rebooted = await fleet.next_session(device.serial)
    assert rebooted.ok and rebooted.events == ("1 BOOT", "M Reboot")


async def test_download_gives_transfer_complete_in_the_next_session(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=1)
    await wait_for(lambda: fleet.stats.sessions_ok == 1)
    device = fleet.devices[0]
    target = device.profile.identity.software_versions[-1]
    acs.queued[device.serial].append(
        Download(command_key="fw", file_type="1 Firmware Upgrade Image", url=f"http://f.example/{target}.bin")
    )
    await fleet.run_session(device.serial)
    after = await fleet.next_session(device.serial)
    assert after.events == ("1 BOOT", "M Download", "7 TRANSFER COMPLETE")
    assert [t.command_key for t in acs.transfer_completes] == ["fw"]
    assert device.software_version == target


@pytest.mark.parametrize("auth", ["basic", "digest"])
async def test_acs_authentication(acs: FakeAcs, fleet_of: FleetFactory, auth: str) -> None:
    acs.auth = auth
    fleet = await fleet_of(devices=2, username=USER, password=PASSWORD)
    await wait_for(lambda: fleet.stats.sessions_ok == 2)


async def test_wrong_credentials_fail_with_auth_error(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    acs.auth = "digest"
    fleet = await fleet_of(devices=1, username=USER, password="wrong")
    await wait_for(lambda: fleet.stats.sessions_failed >= 1)
    assert fleet.stats.errors["auth"] >= 1
    assert fleet.devices[0].retry_count >= 1  # BOOTSTRAP kept for the retry


@pytest.mark.parametrize(("retry_after", "least", "most"), [("120", 120, 121), (None, 5, 10), ("soon", 5, 10)])
async def test_busy_acs_retry_after_delays_the_retry(
    acs: FakeAcs, fleet_of: FleetFactory, retry_after: str | None, least: float, most: float
) -> None:
    """503 + Retry-After: the retry waits at least that long; without one (or unreadable), TR-069
    3.2.1.1's back-off alone (5-10 s for the first retry)."""
    acs.busy, acs.retry_after = 1, retry_after
    fleet = await fleet_of(devices=1)
    await wait_for(lambda: fleet.stats.sessions_failed == 1)
    device = fleet.devices[0]
    assert fleet.stats.errors["http_503"] == 1 and device.retry_count == 1
    await wait_for(lambda: not device.in_session)
    outcome_end = device.session_wanted_at
    assert outcome_end is not None
    wait = outcome_end - time.time()
    assert least - 1 <= wait <= most, wait
    assert acs.informs == []  # nothing got through: the BOOTSTRAP is kept for the retry


async def test_cwmp_1_4_announces_versions_and_obeys_use_cwmp_version(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    acs.use_cwmp_version = "1.2"
    fleet = await fleet_of(devices=1, cwmp_version="1.4")
    await wait_for(lambda: fleet.stats.sessions_ok == 1)
    envelope, _ = acs.informs[0]
    assert envelope.supported_cwmp_versions == "1.0,1.1,1.2,1.3,1.4"
    assert envelope.version.namespace.endswith("cwmp-1-2")


async def test_new_connection_per_message_keeps_the_cookie(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=1, new_connection_per_message=True)
    await wait_for(lambda: fleet.stats.sessions_ok == 1)
    assert acs.cookies_seen[-1] is not None


async def test_fault_injection_and_drops(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=1, fault_rate=1.0)
    await wait_for(lambda: fleet.stats.sessions_ok == 1)
    device = fleet.devices[0]
    acs.queued[device.serial].append(GetParameterValues(names=(device.profile.root + "DeviceInfo.",)))
    outcome = await fleet.run_session(device.serial)
    assert outcome.faults == [9002]


# -- connection requests -------------------------------------------------------------------------


async def connection_request(url: str, username: str, password: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as first:
            if first.status != 401:
                return first.status
            challenge = parse_challenge(first.headers["WWW-Authenticate"])
        assert challenge is not None and challenge.realm == REALM
        path = url[url.index("/cr/") :]
        header = digest_authorization(challenge, username, password, "GET", path, "0a4f113b", 1)
        async with http.get(url, headers={"Authorization": header}) as second:
            return second.status


async def test_connection_request_with_digest_starts_a_session(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=2)
    await wait_for(lambda: fleet.stats.sessions_ok == 2)
    device = fleet.devices[1]
    root = device.profile.root
    username = device.read(root + "ManagementServer.ConnectionRequestUsername", time.time()) or ""
    password = device.read(root + "ManagementServer.ConnectionRequestPassword", time.time()) or ""
    url = device.connection_request_url
    assert url.endswith(f"/cr/{device.serial}")
    assert await connection_request(url, username, "wrong") == 401
    stats = fleet.listener.stats
    assert (stats.challenged, stats.unauthorized) == (1, 1)  # the handshake's first leg, then the refusal
    waiter = asyncio.ensure_future(fleet.next_session(device.serial))
    assert await connection_request(url, username, password) == 200
    outcome = await waiter
    assert outcome.events == ("6 CONNECTION REQUEST",)
    # A good request is challenged once (Digest needs the nonce) but never counted as refused.
    assert (stats.accepted, stats.challenged, stats.unauthorized) == (1, 2, 1)


async def test_connection_request_uses_credentials_the_acs_set(acs: FakeAcs, fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=1)
    await wait_for(lambda: fleet.stats.sessions_ok == 1)
    device = fleet.devices[0]
    root = device.profile.root + "ManagementServer."
    acs.queued[device.serial].append(
        SetParameterValues(
            parameters=(
                ParameterValue(name=root + "ConnectionRequestUsername", value="cr-user"),
                ParameterValue(name=root + "ConnectionRequestPassword", value="cr-pass"),
            ),
            parameter_key="cr",
        )
    )
    await fleet.run_session(device.serial)
    waiter = asyncio.ensure_future(fleet.next_session(device.serial))
    assert await connection_request(device.connection_request_url, "cr-user", "cr-pass") == 200
    assert (await waiter).ok


async def test_connection_request_unknown_device_and_offline_device(fleet_of: FleetFactory) -> None:
    fleet = await fleet_of(devices=1, autostart=False)
    base = fleet.settings.cr_base_url
    assert await connection_request(base + "NOPE", "a", "b") == 404
    with pytest.raises(aiohttp.ClientError):
        await connection_request(base + fleet.devices[0].serial, "a", "b")
