"""Property tests: every message serializes to schema-valid XML and parses back equal."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from cwmp import models as m
from cwmp.codec import parse, serialize
from cwmp.versions import CwmpVersion
from tests.cwmp import strategies
from tests.cwmp.xsd import assert_valid

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(strategies.envelopes())
def test_any_envelope_round_trips(envelope: m.Envelope) -> None:
    assert parse(serialize(envelope)) == envelope


def test_bare_cwmp_1_2_namespace_reads_as_1_2() -> None:
    # Without SessionTimeout / version headers nothing on the wire says 1.3 or 1.4: the
    # session, not the codec, remembers a negotiated 1.4.
    envelope = m.Envelope(id="1", body=m.GetRPCMethods(), version=CwmpVersion.V1_4)
    assert parse(serialize(envelope)).version is CwmpVersion.V1_2


@SETTINGS
@given(strategies.envelopes())
def test_any_envelope_validates_against_its_xsd(envelope: m.Envelope) -> None:
    assert_valid(serialize(envelope))


@pytest.mark.parametrize("version", list(CwmpVersion))
def test_every_message_class_of_every_version_round_trips_and_validates(version: CwmpVersion) -> None:
    # One property per (version, class), so a class that never got drawn above is still covered.
    for cls in strategies.message_classes(version):
        _check_class(version, cls)


def _check_class(version: CwmpVersion, cls: type[object]) -> None:
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategies.messages(version, cls), strategies.headers(version))
    def check(body: m.Message, headers: dict[str, object]) -> None:
        # 1.3 and 1.4 share 1.2's namespace: headers are what tells them apart on the wire.
        envelope = m.Envelope.model_validate({**headers, "body": body, "version": version})
        data = serialize(envelope)
        assert_valid(data)
        assert parse(data) == envelope

    check()
