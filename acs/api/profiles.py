"""Profiles (issue 14): CRUD with versions and diffs, rollback, preview; a device's configuration,
its overrides and re-provisioning (one device or many); the drift report; the alias table.

Profile writes need ``admin`` (they change the fleet); previews, overrides and re-provisioning need
``operator``. Every write is audited (by the route table) with the profile, version and diff.
"""

from __future__ import annotations

import asyncio
from typing import Any

from acs.api.devices import device_or_404
from acs.api.errors import ApiError
from acs.api.routes import Call, Reply, Route
from schemas.api import Page, Role
from schemas.profiles import (
    AliasesView,
    ConfigurationView,
    DriftReportView,
    OverridesBody,
    PreviewRequest,
    PreviewView,
    ProfileSpec,
    ProfileVersions,
    ProfileVersionView,
    ProfileView,
    ReprovisionBody,
    ReprovisionQuery,
    ReprovisionReport,
    ReprovisionResult,
    RollbackRequest,
)
from tasks.profiles.drift_report import latest_report
from tasks.profiles.sealing import shown_spec
from tasks.profiles.service import ProfileError, ProfileService
from tasks.store.db import Document

PROFILE = "/api/v1/profiles/{name}"
DEVICE = "/api/v1/devices/{device_id}"
WAKE_CONCURRENCY = 8


def service_of(call: Call) -> ProfileService:
    services = call.api.services
    return ProfileService(
        services.repositories.profiles, services.profiles, services.repositories.devices, services.box, services.clock
    )


def _raise(exc: ProfileError) -> ApiError:
    status = {"not_found": 404, "conflict": 409}.get(exc.code, 422)
    return ApiError(status, exc.code, exc.message)


def view(document: Document) -> ProfileView:
    return ProfileView(
        name=document["_id"],
        version=int(document["version"]),
        spec=shown_spec(document["spec"]),
        updated_at=document["updated_at"],
        updated_by=document["updated_by"],
        comment=document.get("comment"),
    )


async def list_profiles(call: Call) -> Reply:
    stored = await call.api.services.repositories.profiles.all()
    return Reply(Page[ProfileView](items=[view(d) for d in stored], next_cursor=None))


async def get_profile(call: Call) -> Reply:
    stored = await call.api.services.repositories.profiles.get(call.path("name"))
    if stored is None:
        raise ApiError.not_found(f"profile {call.path('name')}")
    return Reply(view(stored))


async def _save(call: Call, spec: ProfileSpec, status: int) -> Reply:
    try:
        saved = await service_of(call).save(spec, call.who)
    except ProfileError as exc:
        raise _raise(exc) from None
    versions = await call.api.services.repositories.profiles.versions(spec.name, 1)
    call.audit.update(
        {"profile": spec.name, "version": saved["version"], "diff": versions[0]["diff"] if versions else []}
    )
    return Reply(view(saved), status=status, headers={"Location": f"/api/v1/profiles/{spec.name}"})


async def create_profile(call: Call) -> Reply:
    spec = call.body(ProfileSpec)
    if await call.api.services.repositories.profiles.get(spec.name) is not None:
        raise ApiError(409, "conflict", f"profile {spec.name} exists; PUT {PROFILE.format(name=spec.name)} changes it")
    return await _save(call, spec, 201)


async def put_profile(call: Call) -> Reply:
    spec = call.body(ProfileSpec)
    if spec.name != call.path("name"):
        raise ApiError(422, "validation_error", f"the body names profile {spec.name}, the path {call.path('name')}")
    return await _save(call, spec, 200)


async def delete_profile(call: Call) -> Reply:
    try:
        version = await service_of(call).delete(call.path("name"), call.who)
    except ProfileError as exc:
        raise _raise(exc) from None
    call.audit.update({"profile": call.path("name"), "version": version})
    return Reply(None, status=204)


async def versions(call: Call) -> Reply:
    entries = await call.api.services.repositories.profiles.versions(call.path("name"))
    if not entries:
        raise ApiError.not_found(f"profile {call.path('name')}")
    items = [
        ProfileVersionView(
            name=e["name"],
            version=e["version"],
            spec=shown_spec(e["spec"]) if e.get("spec") else {},
            at=e["at"],
            by=e["by"],
            action=e["action"],
            comment=e.get("comment"),
            diff=e.get("diff") or [],
        )
        for e in entries
    ]
    return Reply(ProfileVersions(items=items))


async def rollback(call: Call) -> Reply:
    body = call.body(RollbackRequest)
    try:
        saved = await service_of(call).rollback(call.path("name"), body.version, call.who, body.comment)
    except ProfileError as exc:
        raise _raise(exc) from None
    latest = await call.api.services.repositories.profiles.versions(call.path("name"), 1)
    call.audit.update(
        {
            "profile": call.path("name"),
            "version": saved["version"],
            "rolled_back_to": body.version,
            "diff": latest[0]["diff"] if latest else [],
        }
    )
    return Reply(view(saved))


async def preview(call: Call) -> Reply:
    body = call.body(PreviewRequest)
    try:
        candidate, devices = await service_of(call).preview(call.path("name"), body.spec, body.device_ids, body.sample)
    except ProfileError as exc:
        raise _raise(exc) from None
    changing = sum(1 for d in devices if d.get("found") and not d.get("in_sync"))
    return Reply(
        PreviewView(
            {"profile": candidate.name, "version": candidate.version, "devices": devices, "devices_changing": changing}
        )
    )


async def configuration(call: Call) -> Reply:
    device = await device_or_404(call, call.path("device_id"))
    return Reply(ConfigurationView(await service_of(call).configuration(device)))


async def put_overrides(call: Call) -> Reply:
    device = await device_or_404(call, call.path("device_id"))
    overrides = [(o.name, o.value) for o in call.body(OverridesBody).overrides]
    await call.api.services.profiles.set_overrides(device["_id"], overrides)
    call.audit["overrides"] = [name for name, _ in overrides]
    fresh = await device_or_404(call, device["_id"])
    return Reply(ConfigurationView(await service_of(call).configuration(fresh)))


async def _reprovision_one(
    call: Call, device_id: str, wake: bool, device: Document | None = None
) -> ReprovisionReport:
    """``device``: the device as the caller read it, woken without reading it again."""
    services = call.api.services
    task = await services.profiles.request_reprovision(device_id, call.who)
    if task is None:
        return ReprovisionReport(device_id=device_id, found=False)
    report: dict[str, Any] | None = None
    if wake:
        if device is None:
            device = await services.repositories.devices.get(device_id)
        if device is not None:
            result = await call.api.connreq.wake(device)
            report = {"via": result.via, "answered": result.answered, "status": result.http_status}
    return ReprovisionReport(device_id=device_id, found=True, task_id=task["_id"], connection_request=report)


async def reprovision(call: Call) -> Reply:
    device = await device_or_404(call, call.path("device_id"))
    wake = call.query(ReprovisionQuery).connection_request
    report = await _reprovision_one(call, device["_id"], wake, device)
    call.audit["connection_request"] = report.connection_request
    return Reply(report)


async def reprovision_many(call: Call) -> Reply:
    body = call.body(ReprovisionBody)
    limit = asyncio.Semaphore(WAKE_CONCURRENCY)

    async def one(device_id: str) -> ReprovisionReport:
        async with limit:
            return await _reprovision_one(call, device_id, body.connection_request)

    reports = await asyncio.gather(*(one(device_id) for device_id in dict.fromkeys(body.device_ids)))
    call.audit["devices"] = len(reports)
    return Reply(ReprovisionResult(items=list(reports)))


async def drift_report(call: Call) -> Reply:
    report = await latest_report(call.api.services.repositories.drift)
    if report is None:
        raise ApiError.not_found("drift report (the drift job has not run yet)")
    return Reply(DriftReportView(report))


async def aliases(call: Call) -> Reply:
    table = call.api.services.profiles.aliases
    return Reply(AliasesView({"aliases": table.aliases, "vendors": table.vendors}))


ROUTES = [
    Route(
        "GET",
        "/api/v1/profiles",
        list_profiles,
        "Auto-configuration profiles",
        Role.VIEWER,
        "profiles",
        response=Page[ProfileView],
    ),
    Route(
        "POST",
        "/api/v1/profiles",
        create_profile,
        "Create a profile (version 1)",
        Role.ADMIN,
        "profiles",
        body=ProfileSpec,
        response=ProfileView,
        status=201,
        other_statuses=(409,),
    ),
    Route(
        "GET",
        "/api/v1/configuration/drift",
        drift_report,
        "Latest drift report: devices out of sync per profile",
        Role.VIEWER,
        "profiles",
        response=DriftReportView,
        other_statuses=(404,),
    ),
    Route(
        "POST",
        "/api/v1/configuration/reprovision",
        reprovision_many,
        "Re-apply the configuration of many devices now (connection request)",
        Role.OPERATOR,
        "profiles",
        body=ReprovisionBody,
        response=ReprovisionResult,
    ),
    Route(
        "GET",
        "/api/v1/configuration/aliases",
        aliases,
        "The alias table (TR-098 / TR-181 / vendor paths)",
        Role.VIEWER,
        "profiles",
        response=AliasesView,
    ),
    Route(
        "GET",
        PROFILE,
        get_profile,
        "One profile (current version)",
        Role.VIEWER,
        "profiles",
        response=ProfileView,
        other_statuses=(404,),
    ),
    Route(
        "PUT",
        PROFILE,
        put_profile,
        "Save a profile's next version (created when new)",
        Role.ADMIN,
        "profiles",
        body=ProfileSpec,
        response=ProfileView,
        other_statuses=(409,),
    ),
    Route(
        "DELETE",
        PROFILE,
        delete_profile,
        "Delete a profile (its versions are kept)",
        Role.ADMIN,
        "profiles",
        status=204,
        other_statuses=(404, 409),
    ),
    Route(
        "GET",
        PROFILE + "/versions",
        versions,
        "Every version of a profile with who, when and the diff",
        Role.VIEWER,
        "profiles",
        response=ProfileVersions,
        other_statuses=(404,),
    ),
    Route(
        "POST",
        PROFILE + "/rollback",
        rollback,
        "Roll a profile back to an earlier version (a new version)",
        Role.ADMIN,
        "profiles",
        body=RollbackRequest,
        response=ProfileView,
        other_statuses=(404, 409),
    ),
    Route(
        "POST",
        PROFILE + "/preview",
        preview,
        "What a profile (or an unsaved version) would change on devices",
        Role.OPERATOR,
        "profiles",
        body=PreviewRequest,
        response=PreviewView,
        other_statuses=(404,),
    ),
    Route(
        "GET",
        DEVICE + "/configuration",
        configuration,
        "A device's effective configuration, where each value comes from, in sync or not",
        Role.VIEWER,
        "profiles",
        response=ConfigurationView,
        other_statuses=(404,),
    ),
    Route(
        "PUT",
        DEVICE + "/configuration/overrides",
        put_overrides,
        "Set a device's own values (above profiles)",
        Role.OPERATOR,
        "profiles",
        body=OverridesBody,
        response=ConfigurationView,
        other_statuses=(404,),
    ),
    Route(
        "POST",
        DEVICE + "/reprovision",
        reprovision,
        "Re-apply the device's configuration now (?connection_request=false: at its next Inform)",
        Role.OPERATOR,
        "profiles",
        query=ReprovisionQuery,
        response=ReprovisionReport,
        other_statuses=(404,),
    ),
]
