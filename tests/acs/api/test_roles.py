"""Every route of the registry, called with no token, a bad token and each role.

Table-driven from the registry itself, so a new route cannot skip its auth check.
"""

from __future__ import annotations

import re

import pytest

from acs.api.routes import Route
from acs.api.setup import route_table
from schemas.api import Role
from tests.acs.api.conftest import ApiHarness

ROUTES = route_table().routes


def _concrete(path: str) -> str:
    return re.sub(r"{\w+}", "nonexistent-00", path)


def _id(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", ROUTES, ids=_id)
async def test_roles_of_every_route(api: ApiHarness, route: Route) -> None:
    path = _concrete(route.path)
    # An empty object body: a permitted caller gets past auth and fails validation or finds nothing.
    body = {"json": {}} if route.body is not None else {}
    for role in [None, *Role]:
        status, answer = await api.call(route.method, path, role.value if role else None, **body)
        if route.role is None:
            assert status not in (401, 403), (role, status, answer)
        elif role is None:
            assert status == 401, answer
            assert answer["error"]["code"] == "unauthorized"
        elif not role.allows(route.role):
            assert status == 403, (role, answer)
            assert answer["error"] == {"code": "forbidden", "message": answer["error"]["message"]}
            assert route.role.value in answer["error"]["message"]
        else:
            assert status not in (401, 403, 500), (role, status, answer)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.role is not None], ids=_id)
async def test_bad_token_is_401(api: ApiHarness, route: Route) -> None:
    async with api.as_role(None).request(
        route.method, api.url(_concrete(route.path)), headers={"Authorization": "Bearer acs_not-a-token"}
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_revoked_token_stops_working_at_once_in_this_process(api: ApiHarness) -> None:
    status, created = await api.call("POST", "/api/v1/tokens", "admin", json={"name": "temp", "role": "viewer"})
    assert status == 201, created
    headers = {"Authorization": f"Bearer {created['token']}"}
    async with api.as_role(None).get(api.url("/api/v1/devices"), headers=headers) as response:
        assert response.status == 200
    status, _ = await api.call("DELETE", f"/api/v1/tokens/{created['id']}", "admin")
    assert status == 200
    async with api.as_role(None).get(api.url("/api/v1/devices"), headers=headers) as response:
        assert response.status == 401


async def test_token_list_never_shows_the_token_or_its_hash(api: ApiHarness) -> None:
    status, page = await api.call("GET", "/api/v1/tokens", "admin")
    assert status == 200
    assert {t["name"] for t in page["items"]} >= {"test-viewer", "test-operator", "test-admin"}
    for token in page["items"]:
        assert "token" not in token and "hash" not in token
    stored = await api.services.database.collection("api_tokens").find_one({"name": "test-viewer"})
    assert stored is not None and len(stored["hash"]) == 64 and api.tokens["viewer"] not in str(stored)
