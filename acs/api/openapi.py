"""``GET /api/v1/openapi.json``: OpenAPI 3.1 built from the route registry and pydantic models.

Request and response bodies are the routes' pydantic models (their JSON Schema is OpenAPI 3.1's
schema dialect); query parameters are the fields of the routes' query models; path parameters
come from the path template. Nothing is written by hand but the route summaries.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from acs.api.routes import Route
from schemas.api import ErrorBody

REF = "#/components/schemas/{model}"
SUCCESS = (200, 201, 202, 204, 206)
REASONS = {
    200: "OK", 201: "Created", 202: "Accepted (still pending)", 204: "No content", 400: "Bad request",
    206: "Partial content (the range asked for)", 401: "Missing or unknown token", 403: "Role too low",
    404: "Not found", 409: "Conflict with the current state", 413: "Body too large", 416: "Range not satisfiable",
    422: "Invalid parameters", 500: "Internal error", 503: "Not ready",
}


def _model_pairs(routes: list[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for route in routes:
        if route.body is not None:
            pairs.append((route.body, "validation"))
        if route.response is not None:
            pairs.append((route.response, "serialization"))
    return list(dict.fromkeys(pairs))


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        parameter["schema"] = field_schema
        parameters.append(parameter)
    return parameters


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _responses(route: Route, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Any]) -> dict[str, Any]:
    statuses = {route.status, *route.other_statuses}
    if route.role is not None:
        statuses |= {401, 403}
    if route.query is not None or route.body is not None:
        statuses.add(422)
    if route.body is not None or route.query is not None or "{" in route.path:
        statuses.add(400)  # malformed JSON, or text with a NUL character
    statuses.add(503)  # the database is unavailable
    responses: dict[str, Any] = {}
    for status in sorted(statuses):
        response: dict[str, Any] = {"description": REASONS.get(status, "")}
        if status in SUCCESS and route.response is not None:
            response["content"] = {"application/json": {"schema": refs[(route.response, "serialization")]}}
        elif status in SUCCESS and route.content_type != "application/json":
            response["content"] = {route.content_type.partition(";")[0]: {"schema": {"type": "string"}}}
        elif status not in SUCCESS:
            response["content"] = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
        responses[str(status)] = response
    return responses


def _operation(route: Route, refs: dict[Any, Any], components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{"bearer": []}] if route.role is not None else [],
    }
    if route.role is not None:
        operation["description"] = f"Needs the `{route.role.value}` role (or higher)."
    parameters = _path_parameters(route.path)
    if route.query is not None:
        parameters += _query_parameters(route.query, components)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    elif route.raw_body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {route.raw_body: {"schema": {"type": "string", "format": "binary"}}},
        }
    operation["responses"] = _responses(route, refs)
    return operation


def build_openapi(routes: list[Route], version: str) -> dict[str, Any]:
    refs, definitions = models_json_schema(_model_pairs(routes), ref_template=REF)
    components: dict[str, Any] = dict(definitions.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ACS operator API",
            "version": version,
            "description": "TR-069 ACS: devices, tasks, connection requests, history. Errors are "
                           '`{"error": {"code", "message"}}`; lists are `{"items", "next_cursor"}`.',
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A token from `acs token create`"}},
        },
    }
