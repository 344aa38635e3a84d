"""One CWMP session from the CPE side over HTTP (TR-069 3.4 and 3.7): the only I/O a device does.

A session opens its own TCP connection (a real CPE is one host), echoes the ACS's cookies
(3.4.1), answers 401 challenges with Basic or Digest credentials (3.4.4), posts the Inform,
delivers TransferCompletes, sends the empty POST and then answers ACS requests until the ACS
replies with an empty 204. Bad days (slow answers, dropped connections, random 9002 faults)
are injected here, never in the device model.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from acs.sim import rpc
from acs.sim.device import SimDevice
from cwmp import (
    CwmpVersion,
    Envelope,
    Fault,
    InformResponse,
    MalformedMessage,
    TransferCompleteResponse,
    parse,
    serialize,
)
from cwmp.httpauth import DigestChallenge, basic_authorization, digest_authorization, parse_challenge
from cwmp.models import CwmpModel
from cwmp.versions import format_version_list, parse_version_list

SUPPORTED_BY_1_4 = (CwmpVersion.V1_0, CwmpVersion.V1_1, CwmpVersion.V1_2, CwmpVersion.V1_3, CwmpVersion.V1_4)
MAX_AUTH_ATTEMPTS = 2
MAX_EXCHANGES = 1000  # a session that never ends is an ACS bug: give up rather than loop forever


@dataclass(frozen=True)
class SessionConfig:
    url: str = "http://127.0.0.1:7547/"
    username: str = ""
    password: str = ""
    slow_ms: int = 0
    drop_rate: float = 0.0
    fault_rate: float = 0.0
    new_connection_per_message: bool = False
    request_timeout: float = 30.0


@dataclass
class SessionOutcome:
    serial: str
    ok: bool
    error: str = ""  # a short kind: connect, timeout, http_500, auth, malformed, protocol, dropped
    started_at: float = 0.0
    duration: float = 0.0
    events: tuple[str, ...] = ()
    requests: list[str] = field(default_factory=list)  # ACS RPCs answered, by name
    faults: list[int] = field(default_factory=list)  # fault codes the CPE answered with
    retry_after: float | None = None  # seconds the ACS asked the CPE to wait (503 + Retry-After)


class SessionError(Exception):
    def __init__(self, kind: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 10.2.3: delay-seconds or an HTTP-date);
    None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


class CpeHttp:
    """The HTTP side of one session: connection, cookies and authentication."""

    def __init__(self, config: SessionConfig, user_agent: str, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        connector = aiohttp.TCPConnector(limit=1, force_close=config.new_connection_per_message)
        self._http = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=config.request_timeout),
            headers={"User-Agent": user_agent},
        )
        self._cookies: dict[str, str] = {}
        self._authorization: Callable[[], str] | None = None
        split = urlsplit(config.url)
        self._uri = (split.path or "/") + (f"?{split.query}" if split.query else "")

    async def close(self) -> None:
        await self._http.close()

    def abort(self) -> None:
        """Drop the TCP connection without a goodbye, as a CPE losing its link does."""
        connector = self._http.connector
        if connector is not None:
            connector._close()

    async def post(self, body: bytes) -> tuple[int, CIMultiDictProxy[str], bytes]:
        for _ in range(MAX_AUTH_ATTEMPTS + 1):
            status, headers, payload = await self._post_once(body)
            if status != 401:
                return status, headers, payload
            self._answer_challenge(headers.getall("WWW-Authenticate", []))
        raise SessionError("auth", "still 401 after answering the challenge")

    async def _post_once(self, body: bytes) -> tuple[int, CIMultiDictProxy[str], bytes]:
        headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""} if body else {}
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        if self._authorization is not None:
            headers["Authorization"] = self._authorization()
        async with self._http.post(self._config.url, data=body, headers=headers) as response:
            payload = await response.read()
            self._remember_cookies(response.headers.getall("Set-Cookie", []))
            return response.status, response.headers, payload

    def _remember_cookies(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            try:
                jar = SimpleCookie(header)
            except CookieError:
                continue
            for name, morsel in jar.items():
                self._cookies[name] = morsel.value

    def _answer_challenge(self, challenges: list[str]) -> None:
        if not self._config.username:
            raise SessionError("auth", "challenged but no --username/--password")
        digest = next((c for c in map(parse_challenge, challenges) if c is not None), None)
        if digest is not None:
            self._authorization = self._digest_sender(digest)
        elif any(c.lower().startswith("basic") for c in challenges):
            header = basic_authorization(self._config.username, self._config.password)
            self._authorization = lambda: header
        else:
            raise SessionError("auth", f"unsupported challenge {challenges!r}")

    def _digest_sender(self, challenge: DigestChallenge) -> Callable[[], str]:
        counter = iter(range(1, 1 << 30))  # RFC 7616: nc counts requests made with this nonce
        cnonce = f"{self._rng.getrandbits(64):016x}"

        def authorization() -> str:
            return digest_authorization(
                challenge, self._config.username, self._config.password, "POST", self._uri, cnonce, next(counter)
            )

        return authorization


class CpeSession:
    """Drives one session of `device`; the clock and randomness come from the fleet."""

    def __init__(
        self, device: SimDevice, config: SessionConfig, rng: random.Random, clock: Callable[[], float] = time.time
    ) -> None:
        self.device = device
        self.config = config
        self.rng = rng
        self.clock = clock
        self.version = device.cwmp_version
        self.http = CpeHttp(config, device.profile.identity.user_agent, rng)
        self.outcome = SessionOutcome(serial=device.serial, ok=False)
        self._ids = iter(range(1, MAX_EXCHANGES + 1))
        self._posts = 0
        self._drop_at = self._pick_drop_point()

    def _pick_drop_point(self) -> int | None:
        if self.config.drop_rate <= 0 or self.rng.random() >= self.config.drop_rate:
            return None
        return self.rng.randint(2, 4)  # after the Inform: at the empty POST or an answer

    async def run(self) -> SessionOutcome:
        started = self.clock()
        self.outcome.started_at = started
        try:
            await self._converse()
            self.outcome.ok = True
        except SessionError as error:
            self.outcome.error = error.kind
            self.outcome.retry_after = error.retry_after
        except TimeoutError:
            self.outcome.error = "timeout"
        except aiohttp.ClientConnectionError:
            self.outcome.error = "connect"
        except aiohttp.ClientError:
            self.outcome.error = "http"
        except MalformedMessage:
            self.outcome.error = "malformed"
        finally:
            await self.http.close()
            self.outcome.duration = self.clock() - started
            self.device.end_session(self.clock(), self.outcome.ok, self.outcome.retry_after)
        return self.outcome

    async def _converse(self) -> None:
        inform = self.device.start_session(self.clock())
        self.outcome.events = tuple(e.event_code for e in inform.events)
        reply = await self._exchange(inform, first=True)
        if not isinstance(reply.body, InformResponse):
            raise SessionError("protocol", f"expected InformResponse, got {reply.body.kind}")
        self.device.inform_accepted(self.clock())
        hold = bool(reply.hold_requests)
        while not hold and (transfer_complete := self.device.next_request()) is not None:
            reply = await self._exchange(transfer_complete)
            if not isinstance(reply.body, TransferCompleteResponse):
                raise SessionError("protocol", f"expected TransferCompleteResponse, got {reply.body.kind}")
            self.device.request_accepted()
        await self._serve_acs(await self._send(b""))

    async def _serve_acs(self, request: Envelope | None) -> None:
        while request is not None:
            answer = self._answer(request.body)
            self.outcome.requests.append(request.body.kind)
            if isinstance(answer, Fault):
                self.outcome.faults.append(answer.fault_code)
            request = await self._send(self._envelope(answer, request.id))

    def _answer(self, request: CwmpModel) -> CwmpModel:
        if self.config.fault_rate > 0 and self.rng.random() < self.config.fault_rate:
            return rpc.fault(9002)  # injected: the device state is left untouched
        return rpc.answer(self.device, request, self.clock())

    def _envelope(self, body: CwmpModel, message_id: str | None, first: bool = False) -> bytes:
        supported = format_version_list(SUPPORTED_BY_1_4) if first and self.version == CwmpVersion.V1_4 else None
        envelope = Envelope(
            id=message_id if message_id is not None else str(next(self._ids)),
            body=body,
            version=self.version,
            supported_cwmp_versions=supported,
        )
        return serialize(envelope)

    async def _exchange(self, body: CwmpModel, first: bool = False) -> Envelope:
        reply = await self._send(self._envelope(body, None, first))
        if reply is None:
            raise SessionError("protocol", f"empty reply to {type(body).__name__}")
        if isinstance(reply.body, Fault):
            raise SessionError("acs_fault", f"{reply.body.fault_code} {reply.body.fault_string}")
        if first and reply.use_cwmp_version:
            self._use_version(reply.use_cwmp_version)
        return reply

    def _use_version(self, text: str) -> None:
        # TR-069 Amd 5, 3.7.4: the ACS picks a version from SupportedCWMPVersions for the session.
        chosen = parse_version_list(text)
        if self.version == CwmpVersion.V1_4 and chosen and chosen[0] in SUPPORTED_BY_1_4:
            self.version = chosen[0]

    async def _send(self, body: bytes) -> Envelope | None:
        self._posts += 1
        if self.config.slow_ms:
            await asyncio.sleep(self.config.slow_ms / 1000)
        if self._drop_at is not None and self._posts >= self._drop_at:
            self.http.abort()
            raise SessionError("dropped", "connection dropped on purpose")
        if len(self.outcome.requests) >= MAX_EXCHANGES:
            raise SessionError("protocol", "too many requests in one session")
        status, headers, payload = await self.http.post(body)
        if status == 204 or (status == 200 and not payload.strip()):
            return None
        if status != 200:
            # An overloaded ACS answers 503 with Retry-After (RFC 9110 15.6.4): the CPE's next try
            # waits at least that long, on top of TR-069 3.2.1.1's back-off (end_session).
            wait = retry_after_seconds(headers.get("Retry-After"), self.clock()) if status == 503 else None
            raise SessionError(f"http_{status}", retry_after=wait)
        return parse(payload)
