"""Authenticating CPEs on the CWMP endpoint: none, HTTP basic or HTTP digest (TR-069 3.4.4).

Credentials are global (settings) or per device (``cpe_username`` / encrypted ``cpe_password``
on the device document; a per-device username wins). Digest nonces are stateless, an HMAC of
their issue time under the process's secret key, so a CPE may answer a challenge from one
worker on a connection to another; each (nonce, nonce count) is accepted once, across workers
(``digest_nonce_uses``), so a captured header cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from acs.config import CpeAuthMode, Settings
from cwmp import httpauth
from cwmp.logtext import loggable
from tasks.secretbox import SecretBox
from tasks.store.devices import DeviceRepository
from tasks.store.digest_nonces import DigestNonceRepository

if TYPE_CHECKING:
    from acs.services import Services

log = logging.getLogger("acs.cwmp.auth")
NONCE_LIFETIME = 300.0


@dataclass(frozen=True)
class NonceIssuer:
    key: bytes
    clock: Callable[[], datetime]

    def issue(self) -> str:
        stamp = str(int(self.clock().timestamp()))  # floor: a rounded-up stamp would lie in the future
        return f"{stamp}.{self._mac(stamp)}"

    def valid(self, nonce: str) -> bool:
        stamp, _, mac = nonce.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._mac(stamp)):
            return False
        return 0 <= self.clock().timestamp() - int(stamp) <= NONCE_LIFETIME

    def _mac(self, stamp: str) -> str:
        return hmac.new(self.key, stamp.encode(), hashlib.sha256).hexdigest()[:32]


class CpeAuthenticator:
    def __init__(
        self,
        mode: CpeAuthMode,
        realm: str,
        username: str | None,
        password: str | None,
        devices: DeviceRepository,
        box: SecretBox,
        nonces: NonceIssuer,
        nonce_uses: DigestNonceRepository,
    ) -> None:
        self.mode = mode
        self.realm = realm
        self.username = username
        self.password = password
        self.devices = devices
        self.box = box
        self.nonces = nonces
        self.nonce_uses = nonce_uses

    @classmethod
    def from_settings(cls, settings: Settings, services: Services) -> CpeAuthenticator:
        password = settings.cpe_password.get_secret_value() if settings.cpe_password else None
        # Every worker and host derives the same nonce key from the shared secret key.
        nonces = NonceIssuer(services.box.derive_key(b"cwmp-digest-nonce"), services.clock)
        return cls(
            settings.cpe_auth,
            settings.cpe_auth_realm,
            settings.cpe_username,
            password,
            services.repositories.devices,
            services.box,
            nonces,
            services.repositories.digest_nonces,
        )

    async def check(self, request: web.Request) -> web.Response | None:
        """None when the CPE may go on; otherwise the 401 to send."""
        if self.mode is CpeAuthMode.NONE:
            return None
        credentials = httpauth.parse_authorization(request.headers.get("Authorization", ""))
        if self.mode is CpeAuthMode.BASIC:
            if isinstance(credentials, httpauth.BasicCredentials) and await self._basic_ok(credentials):
                return None
            return self._challenge(httpauth.basic_challenge(self.realm))
        stale = False
        if isinstance(credentials, httpauth.DigestCredentials):
            if not self.nonces.valid(credentials.nonce):
                stale = True  # RFC 7616 3.3: an old nonce with a right answer gets stale=true
            elif await self._digest_ok(credentials, request.method):
                if await self.nonce_uses.first_use(credentials.nonce, credentials.nc or "", self.nonces.clock()):
                    return None
                # RFC 7616 3.4.5: a nonce count seen before is a replay (or a CPE that does not
                # count); a fresh nonce lets an honest CPE answer again without a new password.
                log.warning(
                    "CPE digest authentication replayed for user %s from %s (nonce count %s seen before)",
                    loggable(credentials.username),
                    request.remote,
                    loggable(credentials.nc or "none"),
                )
                stale = True
        return self._challenge(httpauth.digest_challenge(self.realm, self.nonces.issue(), stale=stale))

    def _challenge(self, header: str) -> web.Response:
        return web.Response(status=401, text="authentication required\n", headers={"WWW-Authenticate": header})

    async def _password_for(self, username: str) -> str | None:
        device = await self.devices.find_by_cpe_username(username)
        if device is not None and device.get("cpe_password"):
            return self.box.decrypt(device["cpe_password"])
        if self.username is not None and hmac.compare_digest(username.encode(), self.username.encode()):
            return self.password
        return None

    async def _basic_ok(self, credentials: httpauth.BasicCredentials) -> bool:
        expected = await self._password_for(credentials.username)
        ok = expected is not None and httpauth.verify_basic(credentials, credentials.username, expected)
        if not ok:
            log.warning("CPE basic authentication failed for user %s", loggable(credentials.username))
        return ok

    async def _digest_ok(self, credentials: httpauth.DigestCredentials, method: str) -> bool:
        expected = await self._password_for(credentials.username)
        ok = (
            expected is not None
            and credentials.realm == self.realm
            and httpauth.verify_digest(credentials, method=method, password=expected)
        )
        if not ok:
            log.warning("CPE digest authentication failed for user %s", loggable(credentials.username))
        return ok
