"""The operator API (JSON under /api/v1) and the health endpoints."""

from acs.api.setup import setup_api

__all__ = ["setup_api"]
