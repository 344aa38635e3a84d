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
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from acs.config import CpeAuthMode, CpeUsernameRule, Settings
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
        # Unique per challenge: two CPEs challenged in the same second must not share a nonce,
        # or the second one's nc=00000001 would look like a replay of the first's.
        salted = f"{stamp}.{secrets.token_hex(8)}"
        return f"{salted}.{self._mac(salted)}"

    def valid(self, nonce: str) -> bool:
        salted, _, mac = nonce.rpartition(".")
        stamp = salted.partition(".")[0]
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._mac(salted)):
            return False
        return 0 <= self.clock().timestamp() - int(stamp) <= NONCE_LIFETIME

    def _mac(self, stamp: str) -> str:
        return hmac.new(self.key, stamp.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class CpePrincipal:
    """Who a CWMP request authenticated as.

    ``username`` is None when nothing was checked (authentication mode ``none``, no credentials
    sent). ``device_id`` is set when the credentials are a device's own (per-device credentials
    name their device); global credentials leave it None.
    """

    username: str | None = None
    device_id: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.username is not None


ANONYMOUS = CpePrincipal()


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
        username_rule: CpeUsernameRule = CpeUsernameRule.NONE,
    ) -> None:
        self.mode = mode
        self.realm = realm
        self.username = username
        self.password = password
        self.devices = devices
        self.box = box
        self.nonces = nonces
        self.nonce_uses = nonce_uses
        self.username_rule = username_rule

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
            settings.cpe_username_rule,
        )

    async def authenticate(self, request: web.Request) -> CpePrincipal | web.Response:
        """Who the CPE is; otherwise the 401 to send.

        In mode ``none`` a request without credentials goes on anonymously, but credentials that
        are sent are checked (a device with credentials of its own must use them: see
        ``CwmpService``).
        """
        header = request.headers.get("Authorization", "")
        if self.mode is CpeAuthMode.NONE and not header:
            return ANONYMOUS
        credentials = httpauth.parse_authorization(header)
        if self.mode is not CpeAuthMode.DIGEST and isinstance(credentials, httpauth.BasicCredentials):
            principal = await self._basic(credentials)
            return principal or self.challenge()
        stale = False
        if self.mode is not CpeAuthMode.BASIC and isinstance(credentials, httpauth.DigestCredentials):
            if not self.nonces.valid(credentials.nonce):
                stale = True  # RFC 7616 3.3: an old nonce with a right answer gets stale=true
            elif (principal := await self._digest(credentials, request.method)) is not None:
                if await self.nonce_uses.first_use(credentials.nonce, credentials.nc or "", self.nonces.clock()):
                    return principal
                # RFC 7616 3.4.5: a nonce count seen before is a replay (or a CPE that does not
                # count); a fresh nonce lets an honest CPE answer again without a new password.
                log.warning(
                    "CPE digest authentication replayed for user %s from %s (nonce count %s seen before)",
                    loggable(credentials.username),
                    request.remote,
                    loggable(credentials.nc or "none"),
                )
                stale = True
        return self.challenge(stale=stale)

    def challenge(self, stale: bool = False) -> web.Response:
        """The 401 asking for credentials: basic in mode ``basic``, else digest."""
        if self.mode is CpeAuthMode.BASIC:
            header = httpauth.basic_challenge(self.realm)
        else:
            header = httpauth.digest_challenge(self.realm, self.nonces.issue(), stale=stale)
        return web.Response(status=401, text="authentication required\n", headers={"WWW-Authenticate": header})

    async def _password_for(self, username: str) -> tuple[str, CpePrincipal] | None:
        device = await self.devices.find_by_cpe_username(username)
        if device is not None and device.get("cpe_password"):
            return self.box.decrypt(device["cpe_password"]), CpePrincipal(username, device["_id"])
        if self.password is None:
            return None
        if self.username_rule is not CpeUsernameRule.NONE:
            # Global password, and the username names the device (checked against the Inform).
            return self.password, CpePrincipal(username)
        if self.username is not None and hmac.compare_digest(username.encode(), self.username.encode()):
            return self.password, CpePrincipal(username)
        return None

    async def _basic(self, credentials: httpauth.BasicCredentials) -> CpePrincipal | None:
        found = await self._password_for(credentials.username)
        if found is not None and httpauth.verify_basic(credentials, credentials.username, found[0]):
            return found[1]
        log.warning("CPE basic authentication failed for user %s", loggable(credentials.username))
        return None

    async def _digest(self, credentials: httpauth.DigestCredentials, method: str) -> CpePrincipal | None:
        found = await self._password_for(credentials.username)
        if (
            found is not None
            and credentials.realm == self.realm
            and httpauth.verify_digest(credentials, method=method, password=found[0])
        ):
            return found[1]
        log.warning("CPE digest authentication failed for user %s", loggable(credentials.username))
        return None


def binding_problem(principal: CpePrincipal, rule: CpeUsernameRule, device_id: str, serial_number: str) -> str | None:
    """Why ``principal`` may not speak for this device, or None (checked before anything is stored)."""
    if principal.device_id is not None:
        if principal.device_id != device_id:
            return f"credentials of device {principal.device_id} used for device {device_id}"
        return None
    if principal.username is None or rule is CpeUsernameRule.NONE:
        return None
    expected = serial_number if rule is CpeUsernameRule.SERIAL else device_id
    if not hmac.compare_digest(principal.username.encode(), expected.encode()):
        return f"username {loggable(principal.username)} does not name device {device_id} (rule: {rule.value})"
    return None
