"""Digest replay (issue 11 item 2): an Authorization header is good for one request.

A captured header (same nonce, same nonce count) sent again on a new connection, even for
another device, is refused; honest clients, which count their requests, go on working.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase

from cwmp import httpauth, serialize
from tasks.store.db import Database
from tasks.store.digest_nonces import DigestNonceRepository
from tests.conftest import AcsServeFactory
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument

ENV = {"ACS_CPE_AUTH": "digest", "ACS_CPE_USERNAME": "fleet", "ACS_CPE_PASSWORD": "shared-secret"}


async def test_a_replayed_digest_header_is_refused_on_a_new_connection(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve(env=ENV)
    victim = ScriptedCpe(acs.cwmp_url, serial="VICTIM-1")
    other = ScriptedCpe(acs.cwmp_url, serial="OTHER-2")
    async with aiohttp.ClientSession() as http:
        async with http.post(acs.cwmp_url, data=serialize(victim.inform(["1 BOOT"]))) as challenged:
            assert challenged.status == 401
            challenge = httpauth.parse_challenge(challenged.headers["WWW-Authenticate"])
        assert challenge is not None
        header = httpauth.digest_authorization(challenge, "fleet", "shared-secret", "POST", "/", "c0ffee", 1)
        async with http.post(
            acs.cwmp_url, data=serialize(victim.inform(["1 BOOT"])), headers={"Authorization": header}
        ) as accepted:
            assert accepted.status == 200
    async with aiohttp.ClientSession() as attacker:  # a new connection, another device
        async with attacker.post(
            acs.cwmp_url, data=serialize(other.inform(["1 BOOT"])), headers={"Authorization": header}
        ) as replayed:
            assert replayed.status == 401
            assert "stale=true" in replayed.headers["WWW-Authenticate"].lower()
    assert "replayed for user fleet" in acs.log_path.read_text()


async def test_a_counting_client_keeps_its_nonce_for_a_whole_session(acs_serve: AcsServeFactory) -> None:
    acs = await acs_serve(env=ENV)
    cpe = ScriptedCpe(acs.cwmp_url, serial="HONEST-1")
    cpe.client_middlewares = (aiohttp.DigestAuthMiddleware("fleet", "shared-secret"),)
    exchange = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    assert exchange.ended_with == 204
    assert 401 not in exchange.statuses[1:]  # after the first challenge, nc=2, 3... are accepted
    assert "replayed" not in acs.log_path.read_text()


async def test_nonce_uses_are_recorded_once_and_pruned(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    uses = DigestNonceRepository(Database(client=mongo_db.client, db=mongo_db))
    await uses.ensure_indexes()
    then = datetime(2026, 1, 1, tzinfo=UTC)
    assert await uses.first_use("n1", "00000001", then)
    assert not await uses.first_use("n1", "00000001", then + timedelta(seconds=5))
    assert await uses.first_use("n1", "00000002", then)
    assert await uses.first_use("n2", "00000001", then + timedelta(minutes=10))
    assert await uses.prune(then + timedelta(minutes=1)) == 2
    assert await uses.first_use("n1", "00000001", then + timedelta(minutes=11))  # gone with its nonce
