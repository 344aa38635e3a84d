"""``acs profile apply|list|show|diff|rollback`` and ``acs subscribers import`` as an operator runs them."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.conftest import AcsServeFactory
from tests.support.processes import acs_command

PROFILE = """\
name: internet
priority: 100
selector:
  oui: ["00259E"]
  has_subscriber: true
parameters:
  wan.pppoe.username: "{{ subscriber.pppoe_login }}"
  wifi.ssid: "net-{{ subscriber.account }}"
  wifi.password: literal-wifi-key
---
name: base
parameters:
  mgmt.periodic_interval: 3600
"""


def acs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*acs_command(), *args], env=env, capture_output=True, text=True, timeout=60)


async def test_profiles_from_yaml_and_subscribers_from_csv(acs_serve: AcsServeFactory, tmp_path: Path) -> None:
    proc = await acs_serve()
    env = proc.env
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILE)
    applied = await asyncio.to_thread(acs, env, "profile", "apply", str(path), "--comment", "first")
    assert applied.returncode == 0, applied.stderr
    assert "internet: created, version 1" in applied.stdout and "base: created, version 1" in applied.stdout
    again = await asyncio.to_thread(acs, env, "profile", "apply", str(path))
    assert "internet: unchanged (version 1)" in again.stdout
    path.write_text(PROFILE.replace("net-{{", "home-{{"))
    diff = await asyncio.to_thread(acs, env, "profile", "diff", str(path))
    assert diff.returncode == 1 and 'parameters[wifi.ssid]: "net-{{ subscriber.account }}" -> "home-' in diff.stdout
    assert "literal-wifi-key" not in diff.stdout
    await asyncio.to_thread(acs, env, "profile", "apply", str(path))
    listed = await asyncio.to_thread(acs, env, "profile", "list")
    assert listed.returncode == 0 and "internet" in listed.stdout and "base" in listed.stdout
    shown = await asyncio.to_thread(acs, env, "profile", "show", "internet")
    assert "wifi.password: '***'" in shown.stdout and "home-" in shown.stdout
    back = await asyncio.to_thread(acs, env, "profile", "rollback", "internet", "--version", "1")
    assert back.returncode == 0 and "saved as version 3" in back.stdout
    shown = await asyncio.to_thread(acs, env, "profile", "show", "internet")
    assert "net-{{" in shown.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad Name\n")
    refused = await asyncio.to_thread(acs, env, "profile", "apply", str(bad))
    assert refused.returncode == 1 and "profile name" in refused.stderr

    csv_path = tmp_path / "subscribers.csv"
    csv_path.write_text("account,pppoe_login,pppoe_password,vlan\nA-1,a1@isp,pw,10\nA-2,a2@isp,pw,99999\n")
    dry = await asyncio.to_thread(acs, env, "subscribers", "import", str(csv_path), "--dry-run")
    assert dry.returncode == 1 and "1 would be created" in dry.stdout and "line 3 (A-2)" in dry.stderr
    real = await asyncio.to_thread(acs, env, "subscribers", "import", str(csv_path))
    assert "1 were created" in real.stdout
    twice = await asyncio.to_thread(acs, env, "subscribers", "import", str(csv_path))
    assert "1 unchanged" in twice.stdout
