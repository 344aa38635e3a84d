"""API at scale: device search, device page and parameters on a database of N devices.

The benchmark writes N device documents straight into ``devices`` (the shape
``tasks.registry`` / ``tasks.store.devices`` store after an Inform) and a parameter tree for a
sample of them into ``parameters`` (``tasks.store.parameters``: nested, ``~v``/``~t``/``~u``
leaves), with unordered ``insert_many`` batches, after ``acs serve`` created its indexes. If N
does not fit in ``--insert-seconds`` on this database, it stops there and says how many it wrote
and at what rate. Then, one request at a time with an operator token:

- ``GET /api/v1/devices?q=<6 hex digits of a serial>`` (substring search, what line 2 types)
- ``GET /api/v1/devices?product_class=..&software_version=..`` (indexed filter, first page)
- ``GET /api/v1/devices?cursor=..`` (a page deep in the keyset listing)
- ``GET /api/v1/devices/{id}`` (device page) and ``GET /api/v1/devices/{id}/parameters``

p50/p95/p99 of each, against the same calls answered by the baseline (canned JSON, no database).

    python bench/api_at_scale.py [--quick] [--devices N] [--samples K] [--insert-seconds S] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from cwmp.device_id import make_device_id
from tasks.store.parameters import TYPE, UPDATED, VALUE, field_path

SIZES = common.Sizes(devices=1_000_000, quick_devices=2000, duration=300.0, quick_duration=20.0)
TARGET_P99_MS = 50.0
BATCH = 1000
REQUEST_TIMEOUT = 30.0  # seconds; a request slower than this counts as an error, not a latency
CONCURRENT_BATCHES = 4
PARAMETER_SAMPLE = 1000  # devices that get a cached parameter tree
PRODUCTS = [("00E0FC", "HG8245H", "Huawei Technologies Co., Ltd", ["V3R017C10S115", "V3R017C10S120"]),
            ("00D0D0", "F660", "ZTE", ["V6.0.10P2N2", "V6.0.10P3N4"]),
            ("001A2B", "TR181-GW", "Example", ["1.0.0", "1.1.0"])]


def serial(index: int) -> str:
    return f"48575443{index:08X}"


def device_document(index: int, now: datetime) -> dict[str, Any]:
    oui, product_class, manufacturer, versions = PRODUCTS[index % len(PRODUCTS)]
    device_id = make_device_id(oui, product_class, serial(index))
    seen = now - timedelta(seconds=index % 600)
    return {
        "_id": device_id, "oui": oui, "product_class": product_class, "serial_number": serial(index),
        "manufacturer": manufacturer, "software_version": versions[index % 2], "hardware_version": "20A5.A",
        "model_name": product_class, "uptime": 1000 + index % 86400,
        "connection_request_url": f"http://10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}:7547/cr",
        "parameter_key": "", "periodic_inform_interval": 300, "wan_ip": f"100.64.{index >> 8 & 255}.{index & 255}",
        "remote_ip": f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}", "cwmp_version": "1.0",
        "last_events": ["2 PERIODIC"], "offline_after": seen + timedelta(seconds=660), "last_inform": seen,
        "first_inform": seen - timedelta(days=30), "tags": ["bench"] if index % 100 == 0 else [],
        "last_boot": seen - timedelta(days=1),
    }


def parameters_document(device_id: str, now: datetime, leaves: int = 200) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for n in range(leaves):
        name = f"InternetGatewayDevice.X_BENCH.Object{n // 10}.Leaf{n % 10}"
        node = tree
        for segment in field_path(name).split(".")[1:]:
            node = node.setdefault(segment, {})
        node.update({VALUE: f"value-{n}", TYPE: "xsd:string", UPDATED: now})
    return {"_id": device_id, "p": tree}


async def insert_devices(db_uri: str, devices: int, budget: float) -> dict[str, Any]:
    """Writes up to ``devices`` documents within ``budget`` seconds; returns how many and how fast."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_uri, tz_aware=True)
    database = client.get_default_database("acs")
    now = datetime.now(UTC)
    started = time.monotonic()
    written = 0
    try:
        next_index = 0
        while next_index < devices and time.monotonic() - started < budget:
            starts = range(next_index, min(devices, next_index + BATCH * CONCURRENT_BATCHES), BATCH)
            batches = [[device_document(i, now) for i in range(s, min(devices, s + BATCH))] for s in starts]
            await asyncio.gather(*(database["devices"].insert_many(batch, ordered=False) for batch in batches))
            next_index = starts[-1] + len(batches[-1])
            written = next_index
        device_seconds = time.monotonic() - started
        sample = [make_device_id(*PRODUCTS[i % len(PRODUCTS)][:2], serial(i))
                  for i in random.Random(2).sample(range(written), min(PARAMETER_SAMPLE, written))]
        await database["parameters"].insert_many([parameters_document(d, now) for d in sample], ordered=False)
    finally:
        await client.close()
    return {"written": written, "requested": devices, "seconds": round(device_seconds, 1),
            "per_second": round(written / max(device_seconds, 1e-9)), "with_parameters": len(sample),
            "_sample": sample}


def queries(written: int, with_parameters: list[str], samples: int) -> dict[str, list[str]]:
    rng = random.Random(3)
    indexes = [rng.randrange(written) for _ in range(samples)]
    ids = [make_device_id(*PRODUCTS[i % len(PRODUCTS)][:2], serial(i)) for i in indexes]
    deep = [f"after={ids[n]}" for n in range(samples)]
    return {
        "search q (substring)": [f"/api/v1/devices?limit=50&q={serial(i)[-6:]}" for i in indexes],
        "filter (indexed)": [f"/api/v1/devices?limit=50&product_class={PRODUCTS[i % 3][1]}"
                             f"&software_version={PRODUCTS[i % 3][3][i % 2]}" for i in indexes],
        "list page (cursor)": [f"/api/v1/devices?limit=50&cursor={cursor(d)}" for d in deep],
        "device page": [f"/api/v1/devices/{d}" for d in ids],
        "parameters": [f"/api/v1/devices/{d}/parameters" for d in rng.choices(with_parameters, k=samples)],
    }


def cursor(after: str) -> str:
    from acs.api.pagination import encode_cursor

    return encode_cursor({"after": after.removeprefix("after=")})


async def timed(http: aiohttp.ClientSession, base: str, paths: list[str], deadline: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for path in paths:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        try:
            async with http.get(base + path, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
                await response.read()
        except TimeoutError:
            errors["timeout"] = errors.get("timeout", 0) + 1  # e.g. a scan of the whole collection
            continue
        if response.status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors[str(response.status)] = errors.get(str(response.status), 0) + 1
    return {"requests": len(latencies), "errors": errors, "latency_ms": common.percentiles(latencies)}


async def measure(base: str, token: str | None, plan: dict[str, list[str]], budget: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers=headers) as http:
        for name, paths in plan.items():
            results[name] = await timed(http, base, paths, time.monotonic() + budget)
    return results


def render(inserted: dict[str, Any], acs: dict[str, Any], floor: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    pick: Callable[[dict[str, Any], str], float] = lambda result, q: result["latency_ms"][q]  # noqa: E731
    for name in acs:
        for q in ("p50", "p99"):
            rows.append([f"{name} {q} (ms)", pick(acs[name], q), pick(floor[name], q),
                         common.ratio(pick(acs[name], q), pick(floor[name], q))])
        rows.append([f"{name} requests (errors)", f"{acs[name]['requests']} {acs[name]['errors'] or ''}",
                     floor[name]["requests"], ""])
    worst = max(result["latency_ms"]["p99"] for result in acs.values())
    verdict = "met" if worst < TARGET_P99_MS and inserted["written"] >= 1_000_000 else "missed"
    return (f"Devices in the database: {inserted['written']:,} of {inserted['requested']:,} requested, written "
            f"in {inserted['seconds']} s ({inserted['per_second']:,}/s, insert_many of {BATCH}, "
            f"{CONCURRENT_BATCHES} at a time); {inserted['with_parameters']} with a 200-leaf parameter tree.\n\n"
            + common.table(["figure", "ACS", "baseline (bare aiohttp)", "ACS / baseline"], rows)
            + f"\n\nTarget (p99 < {TARGET_P99_MS:.0f} ms at 1,000,000 devices): **{verdict}** (worst p99 {worst} ms).")


async def run(args: argparse.Namespace) -> int:
    devices, budget = common.sized(args, SIZES)
    samples = args.samples or (10 if args.quick else 200)
    with common.work_dir(args, "api-at-scale") as directory:
        server = await common.start_acs(directory, mongodb_uri=args.mongodb_uri, workers=args.workers)
        try:
            token = await common.create_token(server, role="viewer")
            inserted = await insert_devices(server.db_uri, devices, args.insert_seconds or budget)
            plan = queries(inserted["written"], inserted.pop("_sample"), samples)
            sampler = common.Sampler({"server": server.pid}).start()
            acs = await measure(server.api_url, token, plan, args.query_seconds)
            usage = await sampler.stop()
        finally:
            await server.child.stop()
        baseline = await common.start_baseline(directory)
        try:
            floor = await measure(baseline.api_url, None, plan, args.query_seconds)
        finally:
            await baseline.child.stop()
        common.record(args, f"API at scale, {inserted['written']:,} devices", server.backend,
                      render(inserted, acs, floor), {"inserted": inserted, "acs": acs, "baseline": floor,
                                                     "usage": usage, "workers": args.workers})
    return 0


def main() -> int:
    parser = common.parser(__doc__ or "", SIZES)
    parser.add_argument("--samples", type=int, default=None, help="requests per kind (default 200, --quick 10)")
    parser.add_argument("--insert-seconds", type=float, default=None,
                        help="bound on writing the devices (default: --duration, 300 s; --quick 20 s)")
    parser.add_argument("--query-seconds", type=float, default=60.0,
                        help="bound on each kind of request (a slow kind stops early; default 60)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
