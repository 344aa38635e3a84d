"""The job that seals secrets cached in clear by an earlier version, against the real database."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.fernet import Fernet
from pymongo.asynchronous.database import AsyncDatabase

from tasks.secret_backfill import SecretSealing
from tasks.secretbox import SecretBox
from tasks.store.db import Database
from tasks.store.jobs import JobRepository
from tasks.store.parameters import ParameterRepository
from tests.support.mongo import MongoDocument

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DEVICE = "00E0FC-HG8245H-SEAL1"
WLAN = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
KEY = WLAN + "PreSharedKey.1.KeyPassphrase"
SSID = WLAN + "SSID"
URL = "InternetGatewayDevice.ManagementServer.URL"
CLEAR_URL = "http://acs:hunter2@acs.example:7547/"


def _clear_tree() -> MongoDocument:
    """The tree as a version without sealing stored it: every value in clear."""
    def leaf(value: str) -> MongoDocument:
        return {"~v": value, "~t": "xsd:string", "~u": T0}

    wlan = {"SSID": leaf("home"), "PreSharedKey": {"1": {"KeyPassphrase": leaf("correct horse")}}}
    return {"InternetGatewayDevice": {
        "LANDevice": {"1": {"WLANConfiguration": {"1": wlan}}},
        "ManagementServer": {"URL": leaf(CLEAR_URL), "Password": leaf("")},
    }}


async def test_secrets_cached_in_clear_are_sealed_once_and_stay_readable_to_reveal(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    database = Database(client=mongo_db.client, db=mongo_db)
    box = SecretBox(Fernet.generate_key())
    parameters = ParameterRepository(database, box)
    await mongo_db.parameters.insert_one({"_id": DEVICE, "p": _clear_tree()})
    job = SecretSealing(parameters, JobRepository(database), budget_seconds=60)

    assert await job.run() == {"values_sealed": 2, "complete": True}

    stored = await mongo_db.parameters.find_one({"_id": DEVICE})
    assert stored is not None
    tree = stored["p"]["InternetGatewayDevice"]
    passphrase = tree["LANDevice"]["1"]["WLANConfiguration"]["1"]["PreSharedKey"]["1"]["KeyPassphrase"]["~v"]
    url = tree["ManagementServer"]["URL"]["~v"]
    assert set(passphrase) == {"sealed"} and box.decrypt(passphrase["sealed"]) == "correct horse"
    assert set(url) == {"sealed"} and box.decrypt(url["sealed"]) == CLEAR_URL
    assert "correct horse" not in str(stored) and "hunter2" not in str(stored)
    assert tree["LANDevice"]["1"]["WLANConfiguration"]["1"]["SSID"]["~v"] == "home"  # not a secret
    assert tree["ManagementServer"]["Password"]["~v"] == ""  # nothing to seal

    cached = await parameters.get(DEVICE)
    assert cached[KEY].value == "***" and cached[SSID].value == "home"
    assert await parameters.reveal(DEVICE, KEY) == "correct horse"
    assert await parameters.reveal(DEVICE, URL) == CLEAR_URL

    assert await job.run() == {"values_sealed": 0, "done_before": True}


async def test_only_clear_values_are_sealed_and_a_sealed_one_is_left_as_its_write_stored_it(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    database = Database(client=mongo_db.client, db=mongo_db)
    parameters = ParameterRepository(database, SecretBox(Fernet.generate_key()))
    await mongo_db.parameters.insert_one({"_id": DEVICE, "p": _clear_tree()})
    await parameters.set_values(DEVICE, [(KEY, "new passphrase", "xsd:string")], T0)  # sealed as written

    sealed, complete = await parameters.seal_clear_secrets(500, lambda: True)

    assert complete and sealed == 1  # only the URL
    assert await parameters.reveal(DEVICE, KEY) == "new passphrase"
    assert await parameters.reveal(DEVICE, URL) == CLEAR_URL
