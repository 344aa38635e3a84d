"""What API handlers share: the process's services plus the API's own helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from acs.api.auth import TokenAuthority
from acs.connreq import ConnectionRequester
from acs.metrics import Metrics
from acs.services import Services

if TYPE_CHECKING:
    from acs.api.bulk import BulkRunner


@dataclass
class Api:
    services: Services
    auth: TokenAuthority
    connreq: ConnectionRequester
    metrics: Metrics
    bulk: BulkRunner


API = web.AppKey("api", Api)
