"""``acs firmware add FILE --version V --product-class P`` and ``acs firmware list``, on a running ACS."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from pathlib import Path

import aiohttp

from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.processes import acs_command


def acs_firmware(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*acs_command(), "firmware", *args], env=env, capture_output=True, text=True, timeout=60)


async def test_firmware_add_stores_the_file_and_describes_it(acs_serve: AcsServeFactory, tmp_path: Path) -> None:
    proc = await acs_serve()
    image_file = tmp_path / "HG8245H-V3R017C10S125.bin"
    content = os.urandom(300 * 1024)
    image_file.write_bytes(content)
    added = await asyncio.to_thread(acs_firmware, proc.env, "add", str(image_file), "--version", "V3R017C10S125",
                                    "--product-class", "HG8245H", "--product-class", "HG8245Q")
    assert added.returncode == 0, added.stderr
    image_id = added.stdout.strip()
    listed = await asyncio.to_thread(acs_firmware, proc.env, "list")
    assert listed.returncode == 0 and image_id in listed.stdout and "HG8245H,HG8245Q" in listed.stdout
    missing = await asyncio.to_thread(acs_firmware, proc.env, "add", str(tmp_path / "nope.bin"), "--version", "V",
                                      "--product-class", "P")
    assert missing.returncode == 1 and "no file" in missing.stderr

    token = await create_token(proc, "fw", "viewer")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{proc.api_url}/api/v1/firmware/{image_id}") as response:
            image = await response.json()
        async with http.get(f"{proc.api_url}/api/v1/files/{image['file_id']}/content") as response:
            stored = await response.read()
    assert image["version"] == "V3R017C10S125" and image["product_classes"] == ["HG8245H", "HG8245Q"]
    assert image["sha256"] == hashlib.sha256(content).hexdigest() and stored == content
    assert image["name"] == "HG8245H-V3R017C10S125.bin"
