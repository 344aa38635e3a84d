"""CWMP protocol versions and their XML namespaces (TR-069 Amd 5, section 3.7.4 and Annex A)."""

from __future__ import annotations

from enum import StrEnum

NS_PREFIX = "urn:dslforum-org:cwmp-"


class CwmpVersion(StrEnum):
    V1_0 = "1.0"
    V1_1 = "1.1"
    V1_2 = "1.2"
    V1_3 = "1.3"
    V1_4 = "1.4"

    @property
    def namespace(self) -> str:
        # CWMP 1.3 (Amd 4) and 1.4 (Amd 5) kept the cwmp-1-2 namespace: they only add header
        # elements (SessionTimeout, SupportedCWMPVersions, UseCWMPVersion) and enum values.
        return NAMESPACE_OF[self]


NAMESPACE_OF: dict[CwmpVersion, str] = {
    CwmpVersion.V1_0: NS_PREFIX + "1-0",
    CwmpVersion.V1_1: NS_PREFIX + "1-1",
    CwmpVersion.V1_2: NS_PREFIX + "1-2",
    CwmpVersion.V1_3: NS_PREFIX + "1-2",
    CwmpVersion.V1_4: NS_PREFIX + "1-2",
}

# The lowest protocol version written in each namespace.
BASE_VERSION_OF_NAMESPACE: dict[str, CwmpVersion] = {
    NS_PREFIX + "1-0": CwmpVersion.V1_0,
    NS_PREFIX + "1-1": CwmpVersion.V1_1,
    NS_PREFIX + "1-2": CwmpVersion.V1_2,
}

ACS_MAX_VERSION = CwmpVersion.V1_4


def is_cwmp_namespace(namespace: str | None) -> bool:
    return namespace in BASE_VERSION_OF_NAMESPACE


def parse_version_list(text: str | None) -> tuple[CwmpVersion, ...]:
    """Versions named in a SupportedCWMPVersions / UseCWMPVersion header ("1.0,1.2,1.4").

    TR-069 Amd 5, 3.4.2: a comma-separated list of "major.minor". Unknown entries (e.g. a
    future "1.5") are skipped rather than rejected: they cannot be chosen anyway.
    """
    if not text:
        return ()
    known = {v.value: v for v in CwmpVersion}
    found = (known.get(item.strip()) for item in text.split(","))
    return tuple(sorted({v for v in found if v is not None}, key=_order))


def format_version_list(versions: tuple[CwmpVersion, ...]) -> str:
    return ",".join(v.value for v in sorted(versions, key=_order))


def _order(version: CwmpVersion) -> tuple[int, int]:
    major, minor = version.value.split(".")
    return int(major), int(minor)


def highest(versions: tuple[CwmpVersion, ...]) -> CwmpVersion | None:
    return max(versions, key=_order) if versions else None


def negotiate(supported: str | None, body_namespace_version: CwmpVersion) -> CwmpVersion:
    """The version the ACS uses for the rest of the session.

    TR-069 Amd 5, 3.7.4: a CPE that lists SupportedCWMPVersions gets the highest version both
    sides support (the ACS supports up to 1.4), announced in UseCWMPVersion. Without that header
    the namespace (and headers) of the CPE's Inform decide.
    """
    offered = tuple(v for v in parse_version_list(supported) if _order(v) <= _order(ACS_MAX_VERSION))
    return highest(offered) or body_namespace_version


def version_order(version: CwmpVersion) -> tuple[int, int]:
    return _order(version)
