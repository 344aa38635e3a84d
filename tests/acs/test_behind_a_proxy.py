"""Behind the compose file's load balancer: the device's address comes from X-Forwarded-For, but
only when the connection comes from a configured proxy (``cwmp_trusted_proxies``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pymongo.asynchronous.database import AsyncDatabase

from acs.app import create_cwmp_app
from acs.config import ConfigError, Settings, load_settings
from acs.cwmp_server.proxy import client_address, trusted_networks
from acs.services import build_services
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument


def test_only_a_trusted_peer_names_the_client() -> None:
    trusted = trusted_networks(["10.0.0.2", "172.20.0.0/16"])
    assert client_address("172.20.3.4", "198.51.100.7", trusted) == "198.51.100.7"
    assert client_address("10.0.0.2", "203.0.113.9, 198.51.100.7", trusted) == "198.51.100.7"  # the proxy's view
    assert client_address("192.0.2.1", "198.51.100.7", trusted) == "192.0.2.1"  # a device claiming an address
    assert client_address("10.0.0.2", "not-an-ip", trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", None, trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", "198.51.100.7", ()) == "10.0.0.2"


def test_trusted_proxies_from_the_environment() -> None:
    settings = load_settings(environ={"ACS_CWMP_TRUSTED_PROXIES": "10.0.0.2, 172.20.0.0/16"})
    assert settings.cwmp_trusted_proxies == ["10.0.0.2", "172.20.0.0/16"]
    with pytest.raises(ConfigError, match="cwmp_trusted_proxies"):
        load_settings(environ={"ACS_CWMP_TRUSTED_PROXIES": "10.0.0.300"})


@pytest.mark.parametrize(("trusted", "recorded"), [(["127.0.0.1"], "198.51.100.7"), ([], "127.0.0.1")])
async def test_the_inform_records_the_forwarded_address(
    mongo_db: AsyncDatabase[MongoDocument], tmp_path: Path, trusted: list[str], recorded: str
) -> None:
    settings = Settings(data_dir=tmp_path, cwmp_trusted_proxies=trusted)
    services = build_services(settings, Database(client=mongo_db.client, db=mongo_db), lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        cpe = ScriptedCpe(str(server.make_url("/")), serial="PROXY01")
        exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"], headers={"X-Forwarded-For": "198.51.100.7"})
        assert exchange.ended_with == 204
    finally:
        await server.close()
    device = await services.repositories.devices.get(cpe.device_id)
    assert device is not None and device["remote_ip"] == recorded
