"""openapi.json covers the registry; schemathesis fuzzes a real ``acs serve`` and finds no 5xx."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import aiohttp
import hypothesis
import hypothesis.errors
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.generation import GenerationMode

from acs.api.setup import route_table
from tests.acs.api.conftest import ApiHarness
from tests.conftest import AcsServeFactory
from tests.support.cpe import ScriptedCpe
from tests.support.processes import acs_command

EXAMPLES = 25


async def test_openapi_lists_every_registered_route(api: ApiHarness) -> None:
    status, document = await api.call("GET", "/api/v1/openapi.json", None)
    assert status == 200 and document["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert listed == {(route.method, route.path) for route in route_table().routes}
    create = document["paths"]["/api/v1/devices/{device_id}/tasks"]["post"]
    assert {"201", "202", "401", "403", "404", "422"} <= set(create["responses"])
    assert create["security"] == [{"bearer": []}]
    assert {p["name"] for p in create["parameters"]} == {"device_id", "connection_request", "wait"}
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"], ref


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _create_token(env: dict[str, str]) -> str:
    done = subprocess.run([*acs_command(), "token", "create", "--name", "fuzzer", "--role", "admin"],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "shown only once" in done.stderr
    return done.stdout.strip()


def _fuzz_operation(operation: Any, mode: GenerationMode, api_url: str, headers: dict[str, str]) -> str | None:
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks.append(response_schema_conformance)

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=api_url, headers=headers, timeout=30)
        case.validate_response(response, checks=checks)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return None  # negative mode of an operation with no inputs: nothing to break
    except Exception as exc:  # collect every operation's failure, not only the first
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def _fuzz(api_url: str, token: str) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{api_url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    problems = []
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            problem = _fuzz_operation(result.ok(), mode, api_url, headers)
            if problem is not None:
                problems.append(problem)
    return problems


async def test_schemathesis_finds_no_server_errors(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve()
    token = await asyncio.to_thread(_create_token, proc.env)
    cpe = ScriptedCpe(url=proc.cwmp_url, serial="FUZZ1")
    await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{proc.api_url}/api/v1/devices") as response:
            assert response.status == 200
            assert (await response.json())["items"][0]["device_id"] == cpe.device_id
    problems = await asyncio.to_thread(_fuzz, proc.api_url, token)
    assert not problems, "\n\n".join(problems)
    async with aiohttp.ClientSession() as http, http.get(f"{proc.api_url}/metrics") as response:
        text = await response.text()
    assert response.status == 200 and "acs_api_requests_total" in text and "process_uptime_seconds" in text
    assert 'status="500"' not in text
    answered = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("acs_api_requests_total{"))
    assert answered > 500  # the fuzzer really ran
