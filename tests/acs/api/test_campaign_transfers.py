"""Exactly once per device when the transfer does not go by the book (issue 15 item 5): a CPE that
drops its session around the Download and comes back before TransferComplete, and one whose
TransferComplete or BOOT arrives after the campaign job looked. Real CWMP over HTTP to the ACS's
endpoint, the real database, the campaign job run by hand (its clock moved on where a wait is due)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from acs.transfers import download_url
from cwmp import Download, FaultStruct, TransferComplete
from tasks.campaigns.job import CampaignJob
from tests.acs.api.conftest import ApiHarness
from tests.acs.api.test_campaigns import firmware
from tests.support.cpe import Exchange, ScriptedCpe

SOFTWARE = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"


def campaign_job(api: ApiHarness, clock: Callable[[], datetime] | None = None) -> CampaignJob:
    services, repositories = api.services, api.services.repositories
    return CampaignJob(repositories.campaigns, repositories.firmware, repositories.devices, repositories.tasks,
                       services.queue, repositories.events, repositories.incidents, clock or services.clock,
                       lambda file_id: download_url(services.settings, file_id))


async def booted_cpe(api: ApiHarness, serial: str) -> ScriptedCpe:
    cpe = ScriptedCpe(api.cwmp_url, serial=serial)
    cpe.params[SOFTWARE] = ("V1", "xsd:string", False)
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204  # provisioning included
    return cpe


async def started_campaign(api: ApiHarness, job: CampaignJob, **stop_rules: Any) -> str:
    image = await firmware(api, "V2", "HG8245H")
    status, campaign = await api.call("POST", "/api/v1/campaigns", "operator", json={
        "name": "by the book?", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image},
        "waves": [{"percent": 100}],
        "stop_rules": {"health_settle": 0, "health_timeout": 10, "return_timeout": 600, **stop_rules}})
    assert status == 201, campaign
    await job.run()
    assert await downloads(api) == 1
    return str(campaign["id"])


async def downloads(api: ApiHarness) -> int:
    return await api.services.database.collection("tasks").count_documents({"kind": "download"})


async def member(api: ApiHarness, campaign_id: str) -> dict[str, Any]:
    found = await api.services.database.collection("campaign_devices").find_one({"campaign_id": campaign_id})
    assert found is not None
    return dict(found)


def sent_downloads(exchange: Exchange) -> list[Download]:
    return [message for message in exchange.received if isinstance(message, Download)]


def transfer_complete(command_key: str) -> TransferComplete:
    now = datetime.now(UTC)
    return TransferComplete(command_key=command_key, fault=FaultStruct(), start_time=now - timedelta(seconds=5),
                            complete_time=now)


async def boot_on_the_new_image(cpe: ScriptedCpe, command_key: str) -> None:
    """TR-069 A.3.2.8: the reboot that applies the image informs ``1 BOOT`` and ``M Download``, and the
    TransferComplete follows in that session."""
    cpe.params[SOFTWARE] = ("V2", "xsd:string", False)
    exchange = await cpe.run_session(["1 BOOT", "M Download", "7 TRANSFER COMPLETE"],
                                     command_keys={"M Download": command_key},
                                     cpe_requests=(transfer_complete(command_key),))
    assert exchange.ended_with == 204 and not sent_downloads(exchange)


async def finish(api: ApiHarness, campaign_id: str) -> dict[str, Any]:
    """Runs past ``health_timeout``: the upgraded device (no health read) is healthy, the campaign done."""
    later = campaign_job(api, lambda: datetime.now(UTC) + timedelta(seconds=30))
    await later.run()
    await later.run()
    campaign = await api.services.repositories.campaigns.get(campaign_id)
    assert campaign is not None
    return dict(campaign)


async def test_a_device_that_drops_the_session_after_the_download_and_reconnects_gets_no_second_one(
    api: ApiHarness,
) -> None:
    cpe = await booted_cpe(api, "MID0001")
    job = campaign_job(api)
    campaign_id = await started_campaign(api, job)
    # The CPE takes the Download (and starts fetching the image) but the session drops before its
    # answer reaches the ACS.
    dropped = await cpe.run_session(["6 CONNECTION REQUEST"], stop_after_requests=0, apply_unanswered=True)
    [download] = sent_downloads(dropped)
    await job.run()
    # It reconnects while the transfer runs: a periodic session, then one more after the job looked.
    for events in (["2 PERIODIC"], ["6 CONNECTION REQUEST"]):
        again = await cpe.run_session(events)
        assert again.ended_with == 204 and not sent_downloads(again), again.received
        await job.run()
    assert (await member(api, campaign_id))["state"] == "downloading"
    assert await downloads(api) == 1

    await boot_on_the_new_image(cpe, download.command_key)
    await job.run()
    done = await member(api, campaign_id)
    assert done["state"] == "upgraded" and done["task_id"] == download.command_key, done
    campaign = await finish(api, campaign_id)
    assert campaign["status"] == "completed" and (await member(api, campaign_id))["state"] == "healthy"
    assert await downloads(api) == 1
    sends = api.services.database.collection("task_sends")
    assert await sends.count_documents({"task_id": download.command_key}) == 1  # the RPC went out once
    task = await api.services.repositories.tasks.get(download.command_key, cpe.device_id)
    assert task is not None and task["status"] == "done", task


async def test_a_device_that_answers_the_download_then_reconnects_before_transfer_complete(api: ApiHarness) -> None:
    cpe = await booted_cpe(api, "MID0002")
    job = campaign_job(api)
    campaign_id = await started_campaign(api, job)
    first = await cpe.run_session(["6 CONNECTION REQUEST"])
    [download] = sent_downloads(first)  # answered with status 1: TransferComplete to come
    await job.run()
    again = await cpe.run_session(["2 PERIODIC"])  # a new session mid-transfer
    assert not sent_downloads(again)
    await job.run()
    await boot_on_the_new_image(cpe, download.command_key)
    await job.run()
    assert (await member(api, campaign_id))["state"] == "upgraded"
    assert (await finish(api, campaign_id))["status"] == "completed"
    assert await downloads(api) == 1


async def test_a_device_that_reports_the_transfer_before_its_late_reboot_is_upgraded_once(api: ApiHarness) -> None:
    """Power cut mid-transfer (a BOOT without ``M Download``), then TransferComplete in a session of its
    own on the old image, the job looking at each step; the reboot into the new image comes last. The
    BOOT seen before the TransferComplete is not the one that applies the image."""
    cpe = await booted_cpe(api, "LATE0001")
    job = campaign_job(api)
    campaign_id = await started_campaign(api, job)
    [download] = sent_downloads(await cpe.run_session(["6 CONNECTION REQUEST"]))
    await job.run()
    assert not sent_downloads(await cpe.run_session(["1 BOOT"]))  # the power cut: still V1, still fetching
    await job.run()
    assert (await member(api, campaign_id))["state"] == "downloading"
    reported = await cpe.run_session(["7 TRANSFER COMPLETE", "M Download"],
                                     command_keys={"M Download": download.command_key},
                                     cpe_requests=(transfer_complete(download.command_key),))
    assert reported.ended_with == 204 and not sent_downloads(reported)
    await job.run()
    waiting = await member(api, campaign_id)
    assert waiting["state"] == "rebooting", waiting  # not "SoftwareVersion still V1 after the BOOT"

    cpe.params[SOFTWARE] = ("V2", "xsd:string", False)
    assert not sent_downloads(await cpe.run_session(["1 BOOT", "M Download"],
                                                    command_keys={"M Download": download.command_key}))
    await job.run()
    assert (await member(api, campaign_id))["state"] == "upgraded"
    assert (await finish(api, campaign_id))["status"] == "completed"
    assert await downloads(api) == 1


async def test_a_reboot_that_keeps_the_old_image_fails_the_device(api: ApiHarness) -> None:
    """The reboot that applies the Download (``M Download``) comes back on the old version: failed, once."""
    cpe = await booted_cpe(api, "OLD0001")
    job = campaign_job(api)
    campaign_id = await started_campaign(api, job, max_failed_share=1)
    [download] = sent_downloads(await cpe.run_session(["6 CONNECTION REQUEST"]))
    await cpe.run_session(["1 BOOT", "M Download", "7 TRANSFER COMPLETE"],
                          command_keys={"M Download": download.command_key},
                          cpe_requests=(transfer_complete(download.command_key),))
    await job.run()
    failed = await member(api, campaign_id)
    assert failed["state"] == "failed" and failed["reason"] == "SoftwareVersion still V1 after the BOOT (expected V2)"
    await job.run()
    assert await downloads(api) == 1


async def test_a_device_back_after_the_return_timeout_stays_failed_and_is_rolled_back(api: ApiHarness) -> None:
    """The reboot comes after ``return_timeout``: the device counts as failed (the stop rule's meaning)
    and is not started again; it is on the new version all the same, so a rollback takes it back."""
    cpe = await booted_cpe(api, "LATE0002")
    job = campaign_job(api)
    campaign_id = await started_campaign(api, job, return_timeout=60, max_failed_share=1)
    [download] = sent_downloads(await cpe.run_session(["6 CONNECTION REQUEST"]))
    late = campaign_job(api, lambda: datetime.now(UTC) + timedelta(seconds=90))
    await late.run()
    failed = await member(api, campaign_id)
    assert failed["state"] == "failed" and "within 60 s" in failed["reason"], failed
    await boot_on_the_new_image(cpe, download.command_key)
    await late.run()
    await late.run()
    assert (await member(api, campaign_id))["state"] == "failed"
    assert await downloads(api) == 1

    await firmware(api, "V1", "HG8245H")
    status, rolling = await api.call("POST", f"/api/v1/campaigns/{campaign_id}/actions", "operator",
                                     json={"action": "rollback", "reason": "late device"})
    assert status == 200 and rolling["status"] == "rolling_back", rolling
    await job.run()
    back = await member(api, campaign_id)
    assert back["state"] == "rolling_back", back
    tasks = api.services.database.collection("tasks")
    assert await tasks.count_documents({"kind": "download", "created_by": f"campaign:{campaign_id}:rollback"}) == 1
