"""Connection requests: asking a CPE to open a session now (TR-069 3.2.2 and Annex G).

HTTP (3.2.2): a GET to the device's ``ConnectionRequestURL``, authenticated with the
credentials the provisioner set on the device (stored encrypted, decrypted only here). The
CPE answers 200/204 and then opens a session with event ``6 CONNECTION REQUEST``.

Digest and Basic are both handled by ``cwmp.httpauth`` in one code path: aiohttp's
``DigestAuthMiddleware`` does Digest only, and some CPEs challenge with Basic.

UDP (Annex G): for a CPE behind NAT, a signed ``GET http://host:port?ts&id&un&cn&sig``
datagram to its ``UDPConnectionRequestAddress``. UDP has no reply, so such a request reports
``answered`` as unknown (None).

Passwords never reach a log line or a result.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from cwmp.httpauth import basic_authorization, digest_authorization, parse_challenge
from tasks.secretbox import SecretBox, SecretError

log = logging.getLogger("acs.connreq")
Via = Literal["auto", "http", "udp"]
RETRY_PAUSE = 0.2  # seconds between attempts; bounded by the number of attempts
UDP_COPIES = 3  # TR-069 G.2.2: UDP may be lost, so the message is sent more than once
UDP_GAP = 0.05


@dataclass(frozen=True)
class ConnectionRequestResult:
    answered: bool | None
    via: Literal["http", "udp", "none"]
    http_status: int | None
    attempts: int
    elapsed_ms: int
    error: str | None = None


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def udp_message(host_port: str, username: str, password: str, timestamp: int, message_id: str, cnonce: str) -> bytes:
    """TR-069 G.2.1: the signed UDP connection request (an HTTP request line and Host header)."""
    signature = hmac.new(
        password.encode(), f"{timestamp}{message_id}{username}{cnonce}".encode(), hashlib.sha1
    ).hexdigest().upper()
    query = f"ts={timestamp}&id={message_id}&un={username}&cn={cnonce}&sig={signature}"
    return f"GET http://{host_port}?{query} HTTP/1.1\r\nHost: {host_port}\r\n\r\n".encode()


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


def behind_nat(url: str, remote_ip: str | None) -> bool:
    """The URL names a private address other than the one the device's Informs came from."""
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: let DNS decide
    return address.is_private and not address.is_loopback and host != remote_ip


class ConnectionRequester:
    def __init__(
        self,
        box: SecretBox,
        timeout: float,
        attempts: int,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.box = box
        self.timeout = timeout
        self.attempts = attempts
        self.monotonic = monotonic
        self.wall_clock = wall_clock
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def credentials(self, device: Mapping[str, Any]) -> Credentials | None:
        username = device.get("connection_request_username")
        sealed = device.get("connection_request_password")
        if not username or not sealed:
            return None
        try:
            return Credentials(str(username), self.box.decrypt(str(sealed)))
        except SecretError:
            log.warning("connection-request password of %s does not decrypt; trying without", device.get("_id"))
            return None

    async def wake(self, device: Mapping[str, Any], via: Via = "auto") -> ConnectionRequestResult:
        url = device.get("connection_request_url")
        udp_address = device.get("udp_connection_request_address")
        credentials = self.credentials(device)
        if via == "udp" or (via == "auto" and udp_address and url and behind_nat(url, device.get("remote_ip"))):
            return await self._udp_or_none(udp_address, credentials)
        if not url:
            if via == "auto" and udp_address:
                return await self._udp_or_none(udp_address, credentials)
            return ConnectionRequestResult(False, "none", None, 0, 0, "the device reported no ConnectionRequestURL")
        result = await self.http(str(url), credentials)
        if via == "auto" and result.answered is False and result.http_status is None and udp_address:
            return await self._udp_or_none(udp_address, credentials)  # unreachable over HTTP: try UDP
        return result

    async def _udp_or_none(self, address: Any, credentials: Credentials | None) -> ConnectionRequestResult:
        if not address:
            return ConnectionRequestResult(False, "none", None, 0, 0,
                                           "the device reported no UDPConnectionRequestAddress")
        if credentials is None:
            return ConnectionRequestResult(False, "none", None, 0, 0, "UDP connection requests need credentials")
        return await self.udp(str(address), credentials)

    # -- HTTP ----------------------------------------------------------------------------------

    async def http(self, url: str, credentials: Credentials | None) -> ConnectionRequestResult:
        started = self.monotonic()
        status: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, self.attempts + 1):
            try:
                status = await self._http_attempt(url, credentials)
                error = None
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                status, error = None, _describe(exc, self.timeout)
            if status is not None and status < 500:
                break
            if attempt < self.attempts:
                await asyncio.sleep(RETRY_PAUSE)
        answered = status is not None and 200 <= status < 300
        if status is not None and not answered:
            error = _refusal(status, credentials is not None)
        elapsed_ms = int((self.monotonic() - started) * 1000)
        return ConnectionRequestResult(answered, "http", status, attempt, elapsed_ms, error)

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def _http_attempt(self, url: str, credentials: Credentials | None) -> int:
        session = await self._client()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        # No redirects: the URL comes from the device, the ACS goes nowhere else.
        async with session.get(url, allow_redirects=False, timeout=timeout) as response:
            challenges = response.headers.getall("WWW-Authenticate", [])
            if response.status != 401 or credentials is None:
                return response.status
        authorization = _answer_challenge(challenges, url, credentials)
        if authorization is None:
            return 401
        async with session.get(
            url, allow_redirects=False, timeout=timeout, headers={"Authorization": authorization}
        ) as response:
            return response.status

    # -- UDP -----------------------------------------------------------------------------------

    async def udp(self, address: str, credentials: Credentials) -> ConnectionRequestResult:
        started = self.monotonic()
        try:
            host, port = split_host_port(address)
            message = udp_message(
                address.strip(), credentials.username, credentials.password,
                int(self.wall_clock()), secrets.token_hex(8), secrets.token_hex(8),
            )
            await self._send_datagrams(host, port, message)
        except (OSError, ValueError) as exc:
            elapsed_ms = int((self.monotonic() - started) * 1000)
            return ConnectionRequestResult(False, "udp", None, 1, elapsed_ms, _describe(exc, self.timeout))
        return ConnectionRequestResult(None, "udp", None, UDP_COPIES, int((self.monotonic() - started) * 1000))

    async def _send_datagrams(self, host: str, port: int, message: bytes) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(host, port), family=family
        )
        try:
            for copy in range(UDP_COPIES):
                transport.sendto(message)
                if copy < UDP_COPIES - 1:
                    await asyncio.sleep(UDP_GAP)
        finally:
            transport.close()


def _answer_challenge(challenges: list[str], url: str, credentials: Credentials) -> str | None:
    parts = urlsplit(url)
    uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for header in challenges:
        challenge = parse_challenge(header)
        if challenge is not None:
            try:
                return digest_authorization(
                    challenge, credentials.username, credentials.password, "GET", uri, secrets.token_hex(8)
                )
            except ValueError:
                continue  # an algorithm we do not know; a Basic challenge may follow
    if any(header.strip().lower().startswith("basic") for header in challenges):
        return basic_authorization(credentials.username, credentials.password)
    return None


def _refusal(status: int, sent_credentials: bool) -> str:
    if status == 401 and not sent_credentials:
        # The device's connection-request credentials are the ones the ACS set and the device
        # confirmed (tasks/provisioning.py); until then there are none to answer the challenge with.
        return "the CPE asks for credentials and none are stored for it (provisioning not confirmed)"
    if status in (401, 403):
        return f"the CPE refused the credentials (HTTP {status})"
    return f"the CPE answered HTTP {status}"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
