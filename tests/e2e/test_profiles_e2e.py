"""Profiles against `acs serve` and `acs sim` as processes (issue 14 item 8).

Three new Huawei ONTs whose subscriber records were imported before they ever spoke: each gets
its PPPoE account, VLAN and Wi-Fi on its first Inform. One is factory-reset and gets them back by
itself. Another is given a value it refuses: reported once, not sent again on later Informs. Then
a profile change is previewed, saved, pushed to all by re-provisioning, seen by the drift report,
and rolled back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from acs.sim.device import DeviceSettings
from acs.sim.population import PopulationPlan, make_device
from cwmp.device_id import make_device_id
from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import AcsProcess, huawei_sim_args, start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]
SEED = 14
FLEET = 3
INTERVAL = 15
PPP = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1."
SSID = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
PROFILE = {
    "name": "internet",
    "events": ["BOOTSTRAP", "BOOT", "PERIODIC", "ON DEMAND"],
    "selector": {"product_class": ["HG8245H"], "has_subscriber": True},
    "parameters": {
        "wan.pppoe.username": "{{ subscriber.pppoe_login }}",
        "wan.pppoe.password": "{{ subscriber.pppoe_password }}",
        "wan.vlan": "{{ subscriber.vlan }}",
        "wifi.ssid": "net-{{ subscriber.account }}",
    },
}


class Line2:
    def __init__(self, acs: AcsProcess, http: aiohttp.ClientSession) -> None:
        self.acs, self.http = acs, http

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.acs.api_url.rstrip("/") + path, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    async def read(self, device_id: str, *names: str) -> dict[str, str]:
        """What the device itself holds (a GetParameterValues woken by connection request)."""
        status, task = await self.call(
            "POST",
            f"/api/v1/devices/{quote(device_id, safe='')}/tasks",
            params={"connection_request": "true", "wait": "30"},
            json={"kind": "get_parameter_values", "names": list(names)},
        )
        assert status == 201 and task["status"] == "done", task
        return {v["name"]: v["value"] for v in task["result"]["values"]}

    async def state(self, device_id: str) -> dict[str, Any]:
        status, config = await self.call("GET", f"/api/v1/devices/{quote(device_id, safe='')}/configuration")
        assert status == 200, config
        return config


def fleet() -> list[tuple[str, str]]:
    """(device id, serial) of the simulator's devices for this seed, known before they boot."""
    plan = PopulationPlan(profile="huawei-hg8245", seed=SEED)
    devices = [make_device(plan, index, DeviceSettings()) for index in range(FLEET)]
    return [(make_device_id(d.oui, d.profile.identity.product_class, d.serial), d.serial) for d in devices]


@pytest.mark.timeout(240)
async def test_service_from_subscriber_records_reset_refusal_preview_drift_rollback(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    name = unique_db_name("profiles_e2e")
    tasks = mongo_client[name].tasks
    acs = await acs_serve(
        database=name,
        env={
            "ACS_PERIODIC_INFORM_INTERVAL": str(INTERVAL),
            "ACS_DRIFT_INTERVAL": "10",
            "ACS_PROFILE_CACHE_SECONDS": "1",
        },
    )
    token = await create_token(acs, "profiles", "admin")
    devices = fleet()
    csv_rows = ["account,pppoe_login,pppoe_password,vlan,serial_number"] + [
        f"ACC-{i},user{i}@isp,pw-{i},{100 + i},{serial}" for i, (_, serial) in enumerate(devices)
    ]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        line2 = Line2(acs, http)
        status, report = await line2.call(
            "POST", "/api/v1/subscribers/import", data="\n".join(csv_rows) + "\n", headers={"Content-Type": "text/csv"}
        )
        assert status == 200 and report["created"] == FLEET, report
        status, _ = await line2.call("POST", "/api/v1/profiles", json=PROFILE)
        assert status == 201
        sim = start_sim(
            args=huawei_sim_args(acs.cwmp_url, FLEET, SEED, "--interval", str(INTERVAL), "--ramp", "10"),
            log_path=tmp_path / "sim.log",
        )
        try:
            # 1. A new ONT gets its service from its subscriber record on its first Inform.
            async def all_applied() -> bool:
                for device_id, _ in devices:
                    path = f"/api/v1/devices/{quote(device_id, safe='')}/configuration"
                    status, config = await line2.call("GET", path)
                    if status == 404 or config["state"]["status"] != "applied":
                        return False  # not informed yet, or its service still being applied
                return True

            await wait_until(all_applied, timeout=60, interval=1, message=sim.describe("service not applied"))
            for index, (device_id, _) in enumerate(devices):
                held = await line2.read(device_id, PPP + "Username", PPP + "X_HW_VLAN", SSID)
                assert held == {
                    PPP + "Username": f"user{index}@isp",
                    PPP + "X_HW_VLAN": str(100 + index),
                    SSID: f"net-ACC-{index}",
                }
                first = await tasks.find_one(
                    {"device_id": device_id, "created_by": "profiles"}, sort=[("created_at", 1)]
                )
                assert first is not None and first["created_at"] <= (
                    await first_session_end(mongo_client, name, device_id)
                )

            # 2. A factory-reset ONT gets its service back by itself.
            reset_id = devices[0][0]
            status, task = await line2.call(
                "POST",
                f"/api/v1/devices/{quote(reset_id, safe='')}/tasks",
                params={"connection_request": "true"},
                json={"kind": "factory_reset"},
            )
            assert status in (201, 202), task

            async def reset_and_back() -> bool:
                applied = await mongo_client[name].device_events.count_documents(
                    {"device_id": reset_id, "type": "configuration", "detail.status": "applied"}
                )
                return applied >= 2

            await wait_until(reset_and_back, timeout=60, interval=1, message=sim.describe("not re-applied"))
            assert (await line2.read(reset_id, PPP + "Username"))[PPP + "Username"] == "user0@isp"

            # 3. A value the device refuses is reported once, not sent again every session.
            refuser = devices[1][0]
            status, _ = await line2.call(
                "PUT",
                f"/api/v1/devices/{quote(refuser, safe='')}/configuration/overrides",
                json={"overrides": [{"name": "wifi.ssid", "value": "x" * 40}]},
            )
            assert status == 200
            await line2.call("POST", f"/api/v1/devices/{quote(refuser, safe='')}/reprovision")

            async def refused() -> dict[str, Any] | None:
                config = await line2.state(refuser)
                return config if config["state"]["refused"] else None

            config = await wait_until(refused, timeout=40, interval=1, message=sim.describe("no refusal"))
            assert config["state"]["refused"][0]["name"] == SSID and config["state"]["refused"][0]["code"] == 9007
            sent_before = await tasks.count_documents({"device_id": refuser, "created_by": "profiles"})
            sessions = mongo_client[name].sessions
            informs_before = await sessions.count_documents({"device_id": refuser})

            async def two_more_sessions() -> bool:
                return await sessions.count_documents({"device_id": refuser, "outcome": "ok"}) >= informs_before + 2

            await wait_until(two_more_sessions, timeout=60, interval=1, message=sim.describe("no periodic sessions"))
            assert await tasks.count_documents({"device_id": refuser, "created_by": "profiles"}) == sent_before
            await line2.call(
                "PUT", f"/api/v1/devices/{quote(refuser, safe='')}/configuration/overrides", json={"overrides": []}
            )

            # 4. Preview a change, save it, push it, see drift, roll back.
            # (The new version is not applied by periodic Informs: it waits for the re-provision below.)
            changed = {
                **PROFILE,
                "events": ["BOOTSTRAP", "BOOT", "ON DEMAND"],
                "parameters": {**PROFILE["parameters"], "wifi.ssid": "home-{{ subscriber.account }}"},
            }
            status, preview = await line2.call(
                "POST",
                "/api/v1/profiles/internet/preview",
                json={"spec": changed, "device_ids": [d for d, _ in devices]},
            )
            assert status == 200 and preview["devices_changing"] == FLEET, preview
            assert (await line2.read(devices[2][0], SSID))[SSID] == "net-ACC-2"  # a preview changes nothing
            status, saved = await line2.call("PUT", "/api/v1/profiles/internet", json=changed)
            assert saved["version"] == 2
            await _drift_at_least(line2, FLEET, sim)
            status, pushed = await line2.call(
                "POST", "/api/v1/configuration/reprovision", json={"device_ids": [d for d, _ in devices]}
            )
            assert all(item["connection_request"]["answered"] for item in pushed["items"]), pushed

            async def all_home() -> bool:
                states = [await line2.state(d) for d, _ in devices]
                return all(state["in_sync"] for state in states)

            await wait_until(all_home, timeout=40, interval=1, message=sim.describe("change not pushed"))
            assert (await line2.read(devices[2][0], SSID))[SSID] == "home-ACC-2"
            status, back = await line2.call("POST", "/api/v1/profiles/internet/rollback", json={"version": 1})
            assert back["version"] == 3 and back["spec"]["parameters"]["wifi.ssid"] == "net-{{ subscriber.account }}"
            await line2.call("POST", "/api/v1/configuration/reprovision", json={"device_ids": [d for d, _ in devices]})
            await wait_until(all_home, timeout=40, interval=1, message=sim.describe("rollback not pushed"))
            assert (await line2.read(devices[2][0], SSID))[SSID] == "net-ACC-2"
            status, history = await line2.call("GET", f"/api/v1/devices/{quote(devices[2][0], safe='')}/history")
            assert sum(e["summary"].startswith("configuration applied") for e in history["items"]) >= 3
        finally:
            await sim.stop(grace=20, expect_returncode=0)


async def first_session_end(client: Client, name: str, device_id: str) -> Any:
    session = await client[name].sessions.find_one({"device_id": device_id}, sort=[("started_at", 1)])
    assert session is not None
    return session.get("ended_at") or session["started_at"]


async def _drift_at_least(line2: Line2, count: int, sim: AcsProcess) -> None:
    async def drifted() -> dict[str, Any] | None:
        status, report = await line2.call("GET", "/api/v1/configuration/drift")
        if status != 200:
            return None
        internet = next((p for p in report["profiles"] if p["name"] == "internet"), None)
        return report if internet and internet["version"] == 2 and internet["out_of_sync"] >= count else None

    report = await wait_until(drifted, timeout=40, interval=1, message=sim.describe("no drift report"))
    internet = next(p for p in report["profiles"] if p["name"] == "internet")
    assert len(internet["listed"]) == count


LINES = "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line."
VOICE = {
    "name": "voice",
    "events": ["BOOTSTRAP", "BOOT", "ON DEMAND"],
    "selector": {"product_class": ["HG8245H"], "has_subscriber": True},
    "objects": [
        {
            "path": "voip.line.",
            "count": 2,
            "exact": True,
            "values": {
                "enable": "Enabled",
                "number": "{{ subscriber.voip.#.number }}",
                "username": "{{ subscriber.voip.#.username }}",
                "password": "{{ subscriber.voip.#.password }}",
            },
        }
    ],
}


def lines_held(values: dict[str, str]) -> dict[int, dict[str, str]]:
    """{instance: {relative name: value}} of what a GetParameterValues of the Line table returned."""
    held: dict[int, dict[str, str]] = {}
    for name, value in values.items():
        number, _, relative = name.removeprefix(LINES).partition(".")
        held.setdefault(int(number), {})[relative] = value
    return held


@pytest.mark.timeout(240)
async def test_voip_lines_from_the_subscriber_record_exactly_n_secrets_sealed(
    acs_serve: AcsServeFactory, mongo_client: Client, tmp_path: Path
) -> None:
    name = unique_db_name("profiles_voip_e2e")
    acs = await acs_serve(database=name, env={"ACS_PROFILE_CACHE_SECONDS": "1"})
    token = await create_token(acs, "voice", "admin")
    devices = fleet()[:2]
    secrets = [f"sip-{i}-{line}-Zq8" for i in range(2) for line in (1, 2)]
    csv_rows = [
        "account,serial_number,voip1_number,voip1_username,voip1_password,voip2_number,voip2_username,voip2_password"
    ] + [
        f"V-{i},{serial},+37255510{i}1,5551{i}01,{secrets[2 * i]},+37255510{i}2,5551{i}02,{secrets[2 * i + 1]}"
        for i, (_, serial) in enumerate(devices)
    ]
    sim_log = tmp_path / "sim.log"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        line2 = Line2(acs, http)
        status, report = await line2.call(
            "POST", "/api/v1/subscribers/import", data="\n".join(csv_rows) + "\n", headers={"Content-Type": "text/csv"}
        )
        assert status == 200 and report["created"] == 2, report
        status, _ = await line2.call("POST", "/api/v1/profiles", json=VOICE)
        assert status == 201
        sim = start_sim(
            args=huawei_sim_args(acs.cwmp_url, 2, SEED, "--interval", "300", "--ramp", "10"),
            log_path=sim_log,
        )
        try:
            # A new ONT gets its two lines on its first Inform, each with its own number and account.
            async def all_applied() -> bool:
                for device_id, _ in devices:
                    status, config = await line2.call(
                        "GET", f"/api/v1/devices/{quote(device_id, safe='')}/configuration"
                    )
                    if status == 404 or config["state"]["status"] != "applied":
                        return False
                return True

            await wait_until(all_applied, timeout=90, interval=1, message=sim.describe("lines not applied"))
            for index, (device_id, _) in enumerate(devices):
                held = lines_held(await line2.read(device_id, LINES))
                assert sorted(held) == [1, 2]
                for line in (1, 2):
                    assert held[line]["DirectoryNumber"] == f"+37255510{index}{line}"
                    assert held[line]["SIP.AuthUserName"] == f"5551{index}0{line}"
                    assert held[line]["Enable"] == "Enabled"
                    assert held[line]["SIP.AuthPassword"] == "***"  # the API never shows a secret
                config = await line2.state(device_id)
                assert config["in_sync"], config
                assert [v["SIP.AuthPassword"] for v in config["objects"][0]["instances"]] == ["***", "***"]

            # Exactly N: a third line someone added is deleted by the next application.
            extra_id = devices[0][0]
            status, task = await line2.call(
                "POST",
                f"/api/v1/devices/{quote(extra_id, safe='')}/tasks",
                params={"connection_request": "true", "wait": "30"},
                json={"kind": "add_object", "object": LINES},
            )
            assert status == 201 and task["status"] == "done", task
            assert sorted(lines_held(await line2.read(extra_id, LINES))) == [1, 2, 3]
            status, _ = await line2.call("POST", f"/api/v1/devices/{quote(extra_id, safe='')}/reprovision")
            assert status in (200, 202)

            async def two_lines_again() -> bool:
                return sorted(lines_held(await line2.read(extra_id, LINES))) == [1, 2]

            await wait_until(two_lines_again, timeout=60, interval=2, message=sim.describe("third line kept"))
        finally:
            await sim.stop(grace=20, expect_returncode=0)
    # The SIP passwords are sealed at rest and in no log.
    db = mongo_client[name]
    dumped = []
    for collection in await db.list_collection_names():
        dumped += [repr(document) async for document in db[collection].find({})]
    stored = "\n".join(dumped)
    logs = acs.log_path.read_text(errors="replace") + sim_log.read_text(errors="replace")
    for secret in secrets:
        assert secret not in stored and secret not in logs
    assert "5551001" in stored  # the records and tasks are there: the check above looked at them
