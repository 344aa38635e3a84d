"""Connection requests against a real listener demanding Digest (or Basic), and over UDP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from acs.api.context import API
from acs.connreq import ConnectionRequester, udp_message
from acs.connreq_followup import FOLLOW_UP_AFTER, FollowingRequester
from acs.jobs import register_jobs
from tasks.campaigns.job import CampaignJob
from tasks.scheduler import JobRunner
from tests.acs.api.conftest import ApiHarness
from tests.acs.api.cpe_listener import CrListener
from tests.support.processes import free_port, wait_until


async def device_with(api: ApiHarness, serial: str, url: str, username: str, password: str, **extra: Any) -> str:
    return await api.device(serial, connection_request_url=url, connection_request_username=username,
                            connection_request_password=api.services.box.encrypt(password), **extra)


def cr_path(device_id: str, via: str = "auto") -> str:
    return f"/api/v1/devices/{quote(device_id, safe='')}/connection-request?via={via}"


async def test_right_credentials_are_answered(api: ApiHarness) -> None:
    listener = CrListener(lambda: ("cr-user", "cr-pass"))
    await listener.start()
    try:
        device_id = await device_with(api, "C1", listener.url, "cr-user", "cr-pass")
        status, report = await api.call("POST", cr_path(device_id), "operator")
        assert status == 200, report
        assert report["answered"] is True and report["http_status"] == 204 and report["via"] == "http"
        assert report["attempts"] == 1 and report["error"] is None and report["elapsed_ms"] >= 0
        assert listener.answered == 1
    finally:
        await listener.close()


async def test_wrong_credentials_are_reported_as_401_without_retrying(api: ApiHarness) -> None:
    listener = CrListener(lambda: ("cr-user", "cr-pass"))
    await listener.start()
    try:
        device_id = await device_with(api, "C2", listener.url, "cr-user", "wrong")
        status, report = await api.call("POST", cr_path(device_id), "operator")
        assert status == 200
        assert report["answered"] is False and report["http_status"] == 401 and report["attempts"] == 1
        assert "credentials" in report["error"] and "wrong" not in str(report)
        assert listener.answered == 0
    finally:
        await listener.close()


async def test_a_device_without_confirmed_credentials_is_reported_as_such(api: ApiHarness) -> None:
    """No credentials stored yet (the provisioning not confirmed): the 401 is not "refused credentials"."""
    listener = CrListener(lambda: ("cr-user", "cr-pass"))
    await listener.start()
    try:
        device_id = await api.device("C4", connection_request_url=listener.url)
        status, report = await api.call("POST", cr_path(device_id), "operator")
        assert status == 200
        assert report["answered"] is False and report["http_status"] == 401, report
        assert report["error"] == "the CPE asks for credentials and none are stored for it (provisioning not confirmed)"
    finally:
        await listener.close()


async def test_basic_challenge_is_answered(api: ApiHarness) -> None:
    listener = CrListener(lambda: ("u", "p"), scheme="basic")
    await listener.start()
    try:
        requester = ConnectionRequester(api.services.box, timeout=2, attempts=1)
        result = await requester.wake({"connection_request_url": listener.url, "connection_request_username": "u",
                                       "connection_request_password": api.services.box.encrypt("p")})
        await requester.close()
        assert result.answered is True and result.http_status == 204
    finally:
        await listener.close()


async def test_unreachable_device_reports_the_error_after_bounded_retries(api: ApiHarness) -> None:
    port = free_port()  # nothing listens there
    device_id = await device_with(api, "C3", f"http://127.0.0.1:{port}/cr", "u", "p")
    status, report = await api.call("POST", cr_path(device_id), "operator")
    assert status == 200
    assert report["answered"] is False and report["http_status"] is None
    assert report["attempts"] == api.services.settings.connection_request_attempts == 2
    assert "Connect" in report["error"]


async def test_silent_device_times_out_per_attempt(api: ApiHarness) -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)  # accepts connections, never answers
    try:
        requester = ConnectionRequester(api.services.box, timeout=0.3, attempts=2)
        url = f"http://127.0.0.1:{listening.getsockname()[1]}/cr"
        result = await requester.wake({"connection_request_url": url})
        await requester.close()
        assert result.answered is False and result.attempts == 2 and result.error == "no answer within 0.3 s"
        assert 500 <= result.elapsed_ms < 3000
    finally:
        listening.close()


async def test_udp_connection_request_is_signed(api: ApiHarness) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    address = f"127.0.0.1:{receiver.getsockname()[1]}"
    try:
        device_id = await device_with(api, "C4", "http://10.1.2.3:7547/cr", "udp-user", "udp-pass",
                                      udp_connection_request_address=address, remote_ip="198.51.100.7")
        status, report = await api.call("POST", cr_path(device_id), "operator")  # auto: the URL is behind NAT
        assert status == 200 and report["via"] == "udp" and report["answered"] is None
        datagram = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(receiver, 2048), 5)
    finally:
        receiver.close()
    request_line = datagram.decode().split("\r\n")[0]
    method, target, version = request_line.split(" ")
    assert (method, version) == ("GET", "HTTP/1.1") and target.startswith(f"http://{address}?")
    query = {key: values[0] for key, values in parse_qs(urlsplit(target).query).items()}
    expected = hmac.new(b"udp-pass", (query["ts"] + query["id"] + query["un"] + query["cn"]).encode(),
                        hashlib.sha1).hexdigest()
    assert query["un"] == "udp-user" and query["sig"].lower() == expected
    assert b"udp-pass" not in datagram


def test_udp_message_layout() -> None:
    message = udp_message("10.0.0.1:5000", "u", "p", 1120673700, "1234", "XTGRWIPC6D3IPXS3")
    assert message.startswith(b"GET http://10.0.0.1:5000?ts=1120673700&id=1234&un=u&cn=XTGRWIPC6D3IPXS3&sig=")
    assert message.endswith(b" HTTP/1.1\r\nHost: 10.0.0.1:5000\r\n\r\n")


async def test_device_without_url(api: ApiHarness) -> None:
    device_id = await api.device("C5")
    status, report = await api.call("POST", cr_path(device_id), "operator")
    assert status == 200 and report["answered"] is False and report["via"] == "none"
    status, report = await api.call("POST", cr_path("nope"), "operator")
    assert status == 404


async def test_a_request_no_inform_followed_is_sent_again(api: ApiHarness) -> None:
    """A CPE that answers a connection request and opens no session (firmware that ignores one during
    a session) gets it again at each follow-up delay; one whose Inform came after it does not."""
    ignoring = CrListener(lambda: ("cr-user", "cr-pass"))
    devices = api.services.repositories.devices
    await ignoring.start()
    informing_device = ""

    async def inform() -> None:  # the device opens the requested session: its Inform is stored
        now = api.services.clock()
        await devices.record_inform(informing_device, {"serial_number": "F2"}, {"presence": "online"}, now)

    informing = CrListener(lambda: ("cr-user", "cr-pass"), on_wake=inform)
    await informing.start()
    requester = FollowingRequester(api.services.box, 2, 1, devices, api.services.clock, follow_up_after=(0.3, 0.6))
    try:
        ignored_id = await device_with(api, "F1", ignoring.url, "cr-user", "cr-pass")
        informing_device = await device_with(api, "F2", informing.url, "cr-user", "cr-pass")
        for device_id in (ignored_id, informing_device):
            device = await devices.get(device_id)
            assert device is not None
            result = await requester.wake(device)
            assert result.answered is True and result.http_status == 204
        assert set(requester.following) == {ignored_id, informing_device}

        async def followed_up() -> bool:
            return not requester.following

        await wait_until(followed_up, timeout=10, message="follow-ups still running")
        assert ignoring.answered == 3  # the request, then once at each delay
        assert informing.answered == 1  # its Inform came after the request
        assert requester.repeated == 2
    finally:
        await requester.close()
        await ignoring.close()
        await informing.close()


async def test_a_campaign_follows_up_its_connection_requests(api: ApiHarness) -> None:
    """A campaign's device that answers the wake and opens no session (busy in one) is woken again,
    so its Download does not wait for the next periodic inform; the jobs' stop ends the follow-ups."""
    ignoring = CrListener(lambda: ("cr-user", "cr-pass"))
    await ignoring.start()
    runner = JobRunner(api.services.jobs, api.services.clock)
    register_jobs(runner, api.services)
    campaigns = getattr(runner.job("run_campaigns").run, "__self__", None)
    assert isinstance(campaigns, CampaignJob) and campaigns.wake is not None
    try:
        device = await api.services.repositories.devices.get(await device_with(api, "CAMP1", ignoring.url,
                                                                               "cr-user", "cr-pass"))
        assert device is not None
        assert await campaigns.wake(device)

        async def sent_again() -> bool:
            return ignoring.answered >= 2

        await wait_until(sent_again, timeout=FOLLOW_UP_AFTER[0] + 10, message="the campaign's wake was not followed up")
    finally:
        await runner.stop(grace=5)
        await ignoring.close()


async def test_the_api_follows_up_its_connection_requests(api: ApiHarness) -> None:
    connreq = api.server.app[API].connreq
    assert isinstance(connreq, FollowingRequester) and connreq.follow_up_after == FOLLOW_UP_AFTER
