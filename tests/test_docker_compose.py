"""docker/compose.yaml and docker/haproxy.cfg, checked by reading (no container engine runs here):
two ACS containers behind one CWMP port, on a three-member replica set initiated by a one-off
container, with one shared secret key and the proxy's network trusted for X-Forwarded-For."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from acs.config import Settings

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def test_two_acs_behind_one_port_on_a_three_member_replica_set() -> None:
    services = compose()["services"]
    acs = {name: service for name, service in services.items() if service.get("image") == "acs:latest"}
    mongo = [name for name, service in services.items() if "--replSet" in (service.get("command") or [])]
    assert sorted(acs) == ["acs1", "acs2"] and sorted(mongo) == ["mongo1", "mongo2", "mongo3"]

    init = (DOCKER / "mongo-init.js").read_text()
    assert all(f'host: "{name}:27017"' in init for name in mongo) and "rs.initiate" in init
    assert "mongo-init.js" in " ".join(services["mongo-init"]["volumes"])
    assert set(services["mongo-init"]["depends_on"]) == set(mongo)

    for name, service in acs.items():
        environment = service["environment"]
        assert service["depends_on"] == {"mongo-init": {"condition": "service_completed_successfully"}}, name
        uri = environment["ACS_MONGODB_URI"]
        assert all(f"{member}:27017" in uri for member in mongo) and "replicaSet=rs0" in uri
        assert environment["ACS_SECRET_KEY"].startswith("${ACS_SECRET_KEY:?"), "one key for every ACS, required"
        assert "ports" not in service, "devices reach the ACS through the proxy only"
        settings = {
            key.removeprefix("ACS_").lower(): value for key, value in environment.items() if not value.startswith("${")
        }
        Settings.model_validate(settings)  # every setting is one the ACS knows, with a valid value

    proxy = services["proxy"]
    assert "7547:7547" in proxy["ports"]
    subnet = ipaddress.ip_network(compose()["networks"]["acs"]["ipam"]["config"][0]["subnet"])
    trusted = ipaddress.ip_network(acs["acs1"]["environment"]["ACS_CWMP_TRUSTED_PROXIES"])
    assert subnet.subnet_of(trusted), "the proxy's address is trusted, and nothing outside the network"


def test_haproxy_sends_both_ports_to_both_acs() -> None:
    config = (DOCKER / "haproxy.cfg").read_text()
    services = compose()["services"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in services["proxy"]["volumes"]
    backends = dict(re.findall(r"^backend (\S+)\n((?:    .*\n)+)", config, re.MULTILINE))
    frontends = dict(re.findall(r"^frontend (\S+)\n((?:    .*\n)+)", config, re.MULTILINE))
    assert "bind :7547" in frontends["cwmp"] and "default_backend acs_cwmp" in frontends["cwmp"]
    assert "option forwardfor" in frontends["cwmp"]
    for backend, port in (("acs_cwmp", 7547), ("acs_api", 7557)):
        servers = re.findall(r"server (\S+) (\S+):(\d+)", backends[backend])
        assert sorted((name, host, int(p)) for name, host, p in servers) == [
            ("acs1", "acs1", port),
            ("acs2", "acs2", port),
        ]
