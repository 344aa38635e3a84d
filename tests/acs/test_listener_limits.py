"""Connection limits of `acs serve` (issue 11, item 5), and requests still arriving at shutdown (item 12).

Raw sockets against a real `acs serve` on 127.0.0.1: an idle or trickling client is closed within
the configured timeouts, a connection past the cap is refused, a client that gives up part-way
through a body is one log line, and SIGTERM lets a request whose body is still arriving finish.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from urllib.parse import urlsplit

import aiohttp

from tests.conftest import AcsServeFactory
from tests.support.processes import AcsProcess, acs_command, wait_until

# Each test shortens the limit it is about; the others stay long, so that one is what acts.
SHORT_HEADERS = {
    "ACS_CWMP_HEADER_TIMEOUT": "1",
    "ACS_API_HEADER_TIMEOUT": "1",
    "ACS_CWMP_KEEPALIVE_TIMEOUT": "60",
    "ACS_API_KEEPALIVE_TIMEOUT": "60",
}
SHORT_BODY = {"ACS_API_BODY_TIMEOUT": "1", "ACS_API_KEEPALIVE_TIMEOUT": "60"}
SHORT_KEEPALIVE = {"ACS_API_KEEPALIVE_TIMEOUT": "1", "ACS_API_HEADER_TIMEOUT": "60"}
DEADLINE = 20.0  # generous against a busy machine: the point is that it closes at all


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address(url))


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = DEADLINE) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open."""
    received = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the server kept the connection open for {timeout:.0f} s: {received!r}"
        try:
            piece = await asyncio.wait_for(reader.read(4096), remaining)
        except ConnectionResetError:
            return received
        if not piece:
            return received
        received += piece


async def test_idle_and_trickling_connections_are_closed(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve(env=SHORT_HEADERS)
    idle_cwmp, idle_cwmp_writer = await connect(proc.cwmp_url)
    idle_api, idle_api_writer = await connect(proc.api_url)
    trickle, trickle_writer = await connect(proc.api_url)

    async def trickling() -> None:
        for char in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            if trickle_writer.is_closing():
                return
            trickle_writer.write(bytes([char]))
            try:
                await trickle_writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.1)

    sender = asyncio.ensure_future(trickling())
    try:
        assert (await read_until_closed(idle_cwmp)).startswith(b"HTTP/1.1 408")
        assert (await read_until_closed(idle_api)).startswith(b"HTTP/1.1 408")
        assert (await read_until_closed(trickle)).startswith(b"HTTP/1.1 408"), "a trickle does not extend the time"
    finally:
        sender.cancel()
        for writer in (idle_cwmp_writer, idle_api_writer, trickle_writer):
            writer.close()


async def test_a_kept_alive_connection_is_closed_when_idle(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve(env=SHORT_KEEPALIVE)
    reader, writer = await connect(proc.api_url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    received = await read_until_closed(reader)
    assert received.startswith(b"HTTP/1.1 200"), received
    writer.close()


async def test_a_stalled_body_is_dropped_and_an_abandoned_one_is_one_log_line(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve(env=SHORT_BODY)
    token = await _token(proc)
    head = (
        f"POST /api/v1/files?name=x.bin&file_type=1+Firmware+Upgrade+Image HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    stalled, stalled_writer = await connect(proc.api_url)
    stalled_writer.write(head + b"x" * 10)
    await read_until_closed(stalled)
    stalled_writer.close()
    _abandoned, abandoned_writer = await connect(proc.api_url)
    abandoned_writer.write(head + b"y" * 10)
    await abandoned_writer.drain()
    await wait_until(lambda: _upload_running(proc), timeout=DEADLINE, message="the upload reached its handler")
    abandoned_writer.close()

    def went_away() -> bool:
        return proc.log_tail(400).count("went away while sending the body") >= 1

    await wait_until(went_away, timeout=DEADLINE, message="a log line for the abandoned body")
    assert "Traceback" not in proc.log_tail(400), proc.log_tail(400)


async def test_connections_past_the_cap_are_refused(acs_serve: AcsServeFactory) -> None:
    cap = 4
    proc = await acs_serve(env={"ACS_API_MAX_CONNECTIONS": str(cap), "ACS_API_HEADER_TIMEOUT": "60"})
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        refused = b""
        for _ in range(cap + 3):  # the readiness check's own connection may not be closed yet
            reader, writer = await connect(proc.api_url)
            held.append((reader, writer))
            try:
                refused = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                continue  # admitted: waiting for our request
            if refused:
                break
        assert refused.startswith(b"HTTP/1.1 503"), refused
        admitted = len(held) - 1
        assert admitted <= cap
        for _reader, writer in held:
            writer.close()
        held.clear()

        async def served_again() -> bool:
            reader, writer = await connect(proc.api_url)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return (await asyncio.wait_for(reader.read(4096), 5)).startswith(b"HTTP/1.1 200")
            finally:
                writer.close()

        await wait_until(served_again, timeout=DEADLINE, interval=0.2, message="served once connections are freed")
        assert "connection(s) refused" in proc.log_tail(200)
    finally:
        for _reader, writer in held:
            writer.close()


async def test_shutdown_lets_a_body_still_arriving_finish(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve(env={"ACS_SHUTDOWN_GRACE": "20"})
    token = await _token(proc)
    body = b"z" * 200_000
    reader, writer = await connect(proc.api_url)
    writer.write(
        f"POST /api/v1/files?name=late.bin&file_type=1+Firmware+Upgrade+Image HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:1000]
    )
    await writer.drain()
    await wait_until(lambda: _upload_running(proc), timeout=DEADLINE, message="the upload reached its handler")
    proc.popen.terminate()
    await wait_until(lambda: "stopping:" in proc.log_tail(50), timeout=DEADLINE, message="the server is stopping")
    for start in range(1000, len(body), 50_000):
        writer.write(body[start : start + 50_000])
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await read_until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert await proc.wait_exit(DEADLINE) == 0, proc.log_tail()


async def _upload_running(proc: AcsProcess) -> bool:
    # /metrics counts itself among the API requests in flight: 2 means the upload is running too.
    async with aiohttp.ClientSession() as http, http.get(proc.api_url + "/metrics") as response:
        text = await response.text()
    return 'acs_listener_requests_in_flight{listener="api"} 2' in text


async def _token(proc: AcsProcess) -> str:
    created = await asyncio.to_thread(
        subprocess.run,
        [*acs_command(), "token", "create", "--name", "limits", "--role", "operator"],
        env=proc.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()
