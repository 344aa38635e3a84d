"""The operator API (JSON under /api/v1) and the health endpoints.

    setup.py       builds the app: route registry, error middleware, shared helpers (Api)
    routes.py      Route / RouteTable / Call / Reply: auth, parsing, rendering, audit of writes
    openapi.py     /api/v1/openapi.json (OpenAPI 3.1) from the registry and pydantic models
    errors.py      ApiError and the middleware rendering {"error": {"code", "message"}}, metrics
    auth.py        bearer tokens (SHA-256 at rest), roles, a short lookup cache
    pagination.py  limit + opaque keyset cursor
    health.py devices.py tasks.py history.py bulk.py tokens.py   one resource per module
    tokens_cli.py  ``acs token create|list|revoke``
"""

from acs.api.setup import setup_api

__all__ = ["setup_api"]
