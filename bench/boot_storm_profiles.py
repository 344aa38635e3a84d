"""Boot storm with a realistic auto-configuration profile beside the plain boot storm (issue 14).

Two storms of N new Huawei ONTs against a fresh ``acs serve`` each, in the same run: the plain one
(BOOTSTRAP: Inform, the provisioning SetParameterValues, 204) and one where a profile selects every
device with 10 values (PPPoE account and VLAN, Wi-Fi 2.4/5 GHz, NTP; templates over the serial) and
one object (a WAN port mapping). A new device's session then also reads the unknown port-mapping
table (GetParameterNames + GetParameterValues, then planned again), sets the 10 values in one
SetParameterValues, and adds the instance (AddObject + its values). Figures: sessions per second,
latency, database commands and CPU per session, and the ratio profile / plain.

    python bench/boot_storm_profiles.py [--quick] [--devices N] [--concurrency C] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.boot_storm import storm

SIZES = common.Sizes(devices=5_000, quick_devices=50, duration=900.0, quick_duration=40.0)
PROFILE = """\
name: bench-service
selector: {product_class: [HG8245H]}
parameters:
  wan.pppoe.username: "{{ device.serial_number }}@bench"
  wan.pppoe.password: "pw-{{ device.serial_number }}"
  wan.vlan: 100
  wan.pppoe.mru: 1480
  wan.dns_servers: "9.9.9.9,1.1.1.1"
  wifi.ssid: "net-{{ device.serial_number }}"
  wifi.password: "key-{{ device.serial_number }}"
  wifi.ssid_advertised: true
  wifi5.ssid: "net5-{{ device.serial_number }}"
  time.ntp_server: ntp.bench.example
objects:
  - path: wan.port_mapping.
    count: 1
    values: {enable: true, external_port: 8080, internal_port: 80, internal_client: 192.168.1.2, protocol: TCP}
"""
CACHE_SECONDS = 1


def apply_profile(server: common.AcsServer, directory: Path) -> None:
    path = directory / "bench-profile.yaml"
    path.write_text(PROFILE)
    done = subprocess.run(
        [sys.executable, "-m", "acs.cli", "profile", "--mongodb-uri", server.db_uri, "--data-dir",
         str(server.data_dir), "apply", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"acs profile apply failed: {done.stderr}")


def render(profiled: dict[str, Any], plain: dict[str, Any]) -> str:
    rows = common.storm_rows(profiled, plain)
    return common.table(["figure", "ACS with the profile", "ACS plain (same run)", "profile / plain"], rows)


async def one_storm(args: argparse.Namespace, directory: Path, name: str, devices: int, duration: float,
                    with_profile: bool) -> tuple[dict[str, Any], str]:
    work = directory / name
    work.mkdir(parents=True, exist_ok=True)
    server = await common.start_acs(work, mongodb_uri=args.mongodb_uri and f"{args.mongodb_uri.rstrip('/')}_{name}",
                                    workers=args.workers, env={"ACS_PROFILE_CACHE_SECONDS": str(CACHE_SECONDS)})
    try:
        if with_profile:
            await asyncio.to_thread(apply_profile, server, work)
            await asyncio.sleep(CACHE_SECONDS + 1)  # every process has re-read the profiles
        counters = common.DatabaseCounters(server.db_uri, None if args.mongodb_uri else server.data_dir)
        figures = await storm(work, f"{name}-fleet", server.cwmp_url, devices, args.concurrency, duration,
                              {"server": server.pid}, counters)
    finally:
        await server.child.stop()
    return figures, server.backend


async def run(args: argparse.Namespace) -> int:
    devices, duration = common.sized(args, SIZES)
    with common.work_dir(args, "boot-storm-profiles") as directory:
        plain, backend = await one_storm(args, directory, "plain", devices, duration, False)
        profiled, _ = await one_storm(args, directory, "profile", devices, duration, True)
        common.record(args, f"Boot storm with a profile (10 values, one object), {devices} devices", backend,
                      render(profiled, plain), {"profile": profiled, "plain": plain, "workers": args.workers})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--concurrency", type=int, default=100, help="sessions the simulator keeps open")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
