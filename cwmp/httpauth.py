"""HTTP Basic (RFC 7617) and Digest (RFC 7616, MD5 and SHA-256, qop=auth) helpers, pure.

TR-069 3.4.4 requires an ACS to support both for CPE authentication, and a CPE to use Digest
for connection requests (3.2.2). Callers supply nonces, cnonces and passwords; nothing here
reads a clock or a random source. Secrets are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}

# auth-param = token "=" ( token / quoted-string )   (RFC 7235 section 2.1)
_PARAM = re.compile(r'\s*([A-Za-z0-9_\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str


@dataclass(frozen=True)
class DigestCredentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None


@dataclass(frozen=True)
class DigestChallenge:
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    stale: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def parse_auth_params(text: str) -> dict[str, str]:
    """`a=1, b="x, y"` -> {"a": "1", "b": "x, y"}; parameter names lower-cased."""
    params: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"malformed auth parameters at {text[position : position + 20]!r}")
        params[match.group(1).lower()] = _unquote(match.group(2))
        position = match.end()
    return params


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_scheme(header: str) -> tuple[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), rest.strip()


def parse_authorization(header: str) -> BasicCredentials | DigestCredentials | None:
    """An Authorization header, or None when it is unreadable or of another scheme."""
    scheme, rest = _split_scheme(header)
    try:
        if scheme == "basic":
            return _parse_basic(rest)
        if scheme == "digest":
            return _parse_digest(parse_auth_params(rest))
    except (ValueError, KeyError):
        return None
    return None


def _parse_basic(token: str) -> BasicCredentials:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("bad basic credentials") from error
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("basic credentials without ':'")
    return BasicCredentials(username, password)


def _parse_digest(params: dict[str, str]) -> DigestCredentials:
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=params.get("algorithm", "MD5"),
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
    )


def parse_challenge(header: str) -> DigestChallenge | None:
    """A `WWW-Authenticate: Digest ...` challenge, or None for other schemes/garbage."""
    scheme, rest = _split_scheme(header)
    if scheme != "digest":
        return None
    try:
        params = parse_auth_params(rest)
        known = {"realm", "nonce", "opaque", "algorithm", "qop", "stale"}
        return DigestChallenge(
            realm=params["realm"],
            nonce=params["nonce"],
            opaque=params.get("opaque"),
            algorithm=params.get("algorithm", "MD5"),
            qop=tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip()),
            stale=params.get("stale", "").lower() == "true",
            extra={k: v for k, v in params.items() if k not in known},
        )
    except (ValueError, KeyError):
        return None


def digest_challenge(
    realm: str, nonce: str, opaque: str | None = None, algorithm: str = "MD5", stale: bool = False
) -> str:
    """The WWW-Authenticate header value for a Digest challenge with qop=auth."""
    _hash(algorithm, "")  # reject unknown algorithms early
    parts = [f"realm={_quote(realm)}", 'qop="auth"', f"algorithm={algorithm}", f"nonce={_quote(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


def basic_challenge(realm: str) -> str:
    return f"Basic realm={_quote(realm)}"


def _hash(algorithm: str, data: str) -> str:
    hasher = ALGORITHMS.get(algorithm.upper())
    if hasher is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return hasher(data.encode("utf-8")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password) (RFC 7616 3.4.2); store this instead of the password."""
    return _hash(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    algorithm: str = "MD5",
    qop: str | None = "auth",
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest (RFC 7616 3.4.1); without qop, the RFC 2069 form."""
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def verify_digest(
    credentials: DigestCredentials,
    method: str,
    password: str | None = None,
    ha1: str | None = None,
    uri: str | None = None,
) -> bool:
    """True when the Digest response is right for `method` (and `uri`, when given).

    The caller still checks that `credentials.nonce` is one it issued and has not expired.
    """
    if (password is None) == (ha1 is None):
        raise ValueError("give exactly one of password and ha1")
    if uri is not None and credentials.uri != uri:
        return False
    if credentials.qop not in (None, "auth") or credentials.algorithm.upper() not in ALGORITHMS:
        return False
    if ha1 is None:
        ha1 = compute_ha1(credentials.username, credentials.realm, str(password), credentials.algorithm)
    expected = compute_response(
        ha1,
        credentials.nonce,
        method,
        credentials.uri,
        credentials.algorithm,
        credentials.qop,
        credentials.nc,
        credentials.cnonce,
    )
    return hmac.compare_digest(expected.encode(), credentials.response.lower().encode())


def verify_basic(credentials: BasicCredentials, username: str, password: str) -> bool:
    user_ok = hmac.compare_digest(credentials.username.encode(), username.encode())
    password_ok = hmac.compare_digest(credentials.password.encode(), password.encode())
    return user_ok and password_ok


def basic_authorization(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def digest_authorization(
    challenge: DigestChallenge,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The Authorization header answering `challenge` (client side, e.g. the simulator)."""
    qop = "auth" if "auth" in challenge.qop else None
    nc_text = f"{nc:08x}"
    ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    response = compute_response(
        ha1,
        challenge.nonce,
        method,
        uri,
        challenge.algorithm,
        qop,
        nc_text if qop else None,
        cnonce if qop else None,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"uri={_quote(uri)}",
        f"algorithm={challenge.algorithm}",
        f"nonce={_quote(challenge.nonce)}",
    ]
    if qop:
        parts += [f"nc={nc_text}", f"cnonce={_quote(cnonce)}", f"qop={qop}"]
    parts.append(f"response={_quote(response)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)
