"""HTTP authentication helpers: RFC 7616 section 3.9.1 vectors and round trips."""

from __future__ import annotations

import dataclasses

import pytest

from cwmp.httpauth import (
    BasicCredentials,
    DigestChallenge,
    DigestCredentials,
    basic_authorization,
    compute_ha1,
    digest_authorization,
    digest_challenge,
    parse_authorization,
    parse_challenge,
    verify_basic,
    verify_digest,
)

# RFC 7616 section 3.9.1 example.
RFC = {
    "username": "Mufasa",
    "password": "Circle of Life",
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "uri": "/dir/index.html",
}
EXPECTED = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_vectors(algorithm: str) -> None:
    challenge = DigestChallenge(realm=RFC["realm"], nonce=RFC["nonce"], opaque=RFC["opaque"], algorithm=algorithm)
    header = digest_authorization(challenge, RFC["username"], RFC["password"], "GET", RFC["uri"], RFC["cnonce"])
    credentials = parse_authorization(header)
    assert isinstance(credentials, DigestCredentials)
    assert credentials.response == EXPECTED[algorithm]
    assert credentials.nc == "00000001" and credentials.opaque == RFC["opaque"]
    assert verify_digest(credentials, "GET", password=RFC["password"], uri=RFC["uri"])
    ha1 = compute_ha1(RFC["username"], RFC["realm"], RFC["password"], algorithm)
    assert verify_digest(credentials, "GET", ha1=ha1)


def test_server_client_round_trip_and_rejections() -> None:
    header = digest_challenge("acs", nonce="n0nce", opaque="op", algorithm="SHA-256")
    challenge = parse_challenge(header)
    assert challenge is not None and challenge.qop == ("auth",) and challenge.algorithm == "SHA-256"
    answer = digest_authorization(challenge, "cpe", "s3cret", "POST", "/acs", cnonce="c", nc=2)
    credentials = parse_authorization(answer)
    assert isinstance(credentials, DigestCredentials)
    assert verify_digest(credentials, "POST", password="s3cret", uri="/acs")
    assert not verify_digest(credentials, "POST", password="wrong")
    assert not verify_digest(credentials, "GET", password="s3cret")
    assert not verify_digest(credentials, "POST", password="s3cret", uri="/other")
    tampered = dataclasses.replace(credentials, nc="00000003")
    assert not verify_digest(tampered, "POST", password="s3cret")


def test_mikrotik_style_header_with_unquoted_values_parses() -> None:
    header = (
        'Digest username="qacafe", realm="qacafe", uri="/", algorithm=MD5, nonce="XXXX", nc=00000001, '
        'cnonce="xxxx", qop=auth, response="abc", opaque=""'
    )
    credentials = parse_authorization(header)
    assert isinstance(credentials, DigestCredentials)
    assert (credentials.qop, credentials.nc, credentials.opaque) == ("auth", "00000001", "")


def test_quoted_strings_with_commas_and_escapes() -> None:
    challenge = parse_challenge('Digest realm="a, \\"b\\"", nonce="n", qop="auth,auth-int"')
    assert challenge is not None and challenge.realm == 'a, "b"' and challenge.qop == ("auth", "auth-int")
    assert parse_challenge(digest_challenge('x"y', "n")) == DigestChallenge(realm='x"y', nonce="n")


def test_basic() -> None:
    header = basic_authorization("cpe", "pa:ss")
    credentials = parse_authorization(header)
    assert credentials == BasicCredentials("cpe", "pa:ss")
    assert verify_basic(credentials, "cpe", "pa:ss") and not verify_basic(credentials, "cpe", "x")


@pytest.mark.parametrize("header", ["", "Bearer x", "Basic !!!", "Basic Zm9v", "Digest username=", "Digest realm=x"])
def test_garbage_authorization_is_none(header: str) -> None:
    assert parse_authorization(header) is None


def test_unsupported_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        digest_challenge("r", "n", algorithm="SHA-512-256")
