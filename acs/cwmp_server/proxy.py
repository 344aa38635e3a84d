"""The device's address behind a load balancer (docker/compose.yaml puts HAProxy in front of the ACS).

Only a connection from a configured proxy (``cwmp_trusted_proxies``) may name the client in
``X-Forwarded-For``; the last address there is the one that proxy saw. From anyone else the
header is ignored, so a device cannot claim another address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """Pure: the address to record for a request from ``peer`` carrying ``forwarded_for``."""
    if peer is None or not forwarded_for or not trusted:
        return peer
    try:
        if not any(ipaddress.ip_address(peer) in network for network in trusted):
            return peer
        last = forwarded_for.split(",")[-1].strip()
        return str(ipaddress.ip_address(last))
    except ValueError:
        return peer  # not an address: keep the connection's


def forwarded_middleware(trusted: tuple[Network, ...]) -> Any:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        address = client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)
        if address is not None and address != request.remote:
            request = request.clone(remote=address)
        return await handler(request)

    return middleware
