"""The cached parameter tree against the real database: leaves stay leaves, nothing hides another."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from tasks.store.db import Database
from tasks.store.parameters import ParameterRepository
from tests.support.mongo import MongoDocument

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DEVICE = "00E0FC-HG8245H-CACHE1"


def _repository(mongo_db: AsyncDatabase[MongoDocument]) -> ParameterRepository:
    return ParameterRepository(Database(client=mongo_db.client, db=mongo_db))


async def test_leaves_learned_by_get_parameter_names_are_parameters_not_objects(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    parameters = _repository(mongo_db)
    names = [
        ("InternetGatewayDevice.DeviceInfo.", False),
        ("InternetGatewayDevice.DeviceInfo.Manufacturer", False),
        ("InternetGatewayDevice.DeviceInfo.ProvisioningCode", True),
    ]
    await parameters.set_names(DEVICE, names, T0)
    cached = await parameters.get(DEVICE)
    assert set(cached) == {
        "InternetGatewayDevice.DeviceInfo.",
        "InternetGatewayDevice.DeviceInfo.Manufacturer",
        "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
    }
    assert cached["InternetGatewayDevice.DeviceInfo."].type == "object"
    manufacturer = cached["InternetGatewayDevice.DeviceInfo.Manufacturer"]
    assert manufacturer.type is None and manufacturer.value is None and manufacturer.writable is False
    assert cached["InternetGatewayDevice.DeviceInfo.ProvisioningCode"].writable is True
    # A value read later fills the same leaf in; the name learned first stays one parameter.
    await parameters.set_values(DEVICE, [("InternetGatewayDevice.DeviceInfo.Manufacturer", "Huawei", "xsd:string")], T0)
    found = await parameters.get(DEVICE, "InternetGatewayDevice.DeviceInfo.Manufacturer")
    assert list(found) == ["InternetGatewayDevice.DeviceInfo.Manufacturer"]
    leaf = found["InternetGatewayDevice.DeviceInfo.Manufacturer"]
    assert (leaf.value, leaf.type, leaf.writable) == ("Huawei", "xsd:string", False)


async def test_a_leaf_and_a_deeper_parameter_under_its_path_are_both_kept(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    parameters = _repository(mongo_db)
    reported = [
        ("X.A", "outer", "xsd:string"),
        ("X.A.B", "inner", "xsd:unsignedInt"),
    ]
    for replace in (True, False):  # BOOTSTRAP replaces the tree; later Informs update it
        await parameters.set_values(DEVICE + str(replace), reported, T0, replace=replace)
        cached = await parameters.get(DEVICE + str(replace))
        assert {name: (p.value, p.type) for name, p in cached.items()} == {
            "X.A": ("outer", "xsd:string"),
            "X.A.B": ("inner", "xsd:unsignedInt"),
        }
        under = await parameters.get(DEVICE + str(replace), "X.A.")
        assert set(under) == {"X.A", "X.A.B"}


async def test_names_outside_the_tr106_alphabet_are_stored_and_read_back_as_sent(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    parameters = _repository(mongo_db)
    reported = [
        (".ExternalIPAddress", "192.168.1.254", "xsd:string"),  # Thomson 780: a leading dot
        ("X.Wi Fi.SSID", "home", "xsd:string"),
        ("X.Ä.1.%", "odd", "xsd:string"),
        ("X.Plain_name-1.Value", "plain", "xsd:string"),
    ]
    for replace in (True, False):
        await parameters.set_values(DEVICE + str(replace), reported, T0, replace=replace)
        cached = await parameters.get(DEVICE + str(replace))
        assert {name: p.value for name, p in cached.items()} == {name: value for name, value, _ in reported}


async def test_a_new_devices_first_tree_is_inserted_as_bootstrap_would_store_it_and_replaces_a_leftover(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """A device's first Inform stores its tree with one insert (FerretDB 1.24: one PostgreSQL
    transaction per group-committed command, not two per upsert): the same document BOOTSTRAP's
    replacing write makes; a tree left behind (a device deleted and informing again) is replaced."""
    parameters = _repository(mongo_db)
    reported = [("X.A", "outer", "xsd:string"), ("X.A.B", "inner", "xsd:unsignedInt"), ("X.Obj.", "", "object")]
    await parameters.set_first_values(DEVICE + "new", reported, T0)
    await parameters.set_values(DEVICE + "boot", reported, T0, replace=True)
    first = await mongo_db["parameters"].find_one({"_id": DEVICE + "new"}, {"_id": 0})
    booted = await mongo_db["parameters"].find_one({"_id": DEVICE + "boot"}, {"_id": 0})
    assert first is not None and first == booted

    await parameters.set_values(DEVICE + "left", [("X.Old", "gone", "xsd:string")], T0)
    await parameters.set_first_values(DEVICE + "left", reported, T0)
    cached = await parameters.get(DEVICE + "left")
    assert {name: p.value for name, p in cached.items()} == {"X.A": "outer", "X.A.B": "inner"}


async def test_values_cached_before_the_device_accepted_them_are_put_back_only_over_their_own_write(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """A BOOTSTRAP's provisioning is cached with the Inform's tree (its answer then writes no
    cache); refused, its entries go back to what the Inform reported (the rest dropped), but only
    while the stamp entry is still the one that tree wrote: a later BOOTSTRAP's tree is kept."""
    parameters = _repository(mongo_db)
    interval, username = "X.MS.PeriodicInformInterval", "X.MS.ConnectionRequestUsername"
    reported = [("X.MS.URL", "http://cpe", "xsd:string"), (interval, "3600", "xsd:unsignedInt")]
    provisioned = [(interval, "300", "xsd:unsignedInt"), (username, "acs-1", "xsd:string")]
    await parameters.set_values(DEVICE + "refused", [*reported, *provisioned], T0, replace=True)
    later = datetime(2025, 1, 2, tzinfo=UTC)
    await parameters.set_values(DEVICE + "rebooted", [*reported, *provisioned], later, replace=True)

    for device in (DEVICE + "refused", DEVICE + "rebooted"):  # the second's tree is a later one
        await parameters.put_back(device, interval, T0, [list(reported[1])], [interval, username])
    refused = await parameters.get(DEVICE + "refused")
    assert {name: p.value for name, p in refused.items()} == {"X.MS.URL": "http://cpe", interval: "3600"}
    kept = await parameters.get(DEVICE + "rebooted")
    assert {name: p.value for name, p in kept.items()} == {"X.MS.URL": "http://cpe", interval: "300", username: "acs-1"}
