"""The webhook's HTTP: one POST per attempt (``tasks/webhooks.py`` decides what and when)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from tasks.webhooks import Send


def http_sender(timeout: float) -> Send:
    """A ``Send`` over aiohttp: the receiver's status, or OSError/TimeoutError when it cannot be reached."""

    async def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
                http.post(url, data=body, headers=dict(headers), allow_redirects=False) as response,
            ):
                await response.read()
                return response.status
        except aiohttp.ClientError as exc:  # e.g. the connection dropped mid-answer: an attempt that failed
            raise OSError(f"{type(exc).__name__}: {exc}") from exc

    return send
