"""`acs sim`: run a fleet of simulated CPEs against an ACS. Wired into acs/cli.py by the lead.

acs sim --url http://127.0.0.1:7547/ --devices 1000 --profile mix --ramp 100 --duration 60 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

from acs.sim.fleet import Fleet, FleetConfig
from acs.sim.population import FIRMWARE_MIX
from acs.sim.profile import PROFILE_NAMES
from acs.sim.report import final_report, live_line, render_json, render_text
from acs.sim.scenarios import SCENARIO_NAMES, BadFirmware, Churn, OltOutage, Scenario


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("expected a probability between 0 and 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a number above 0")
    return value


def _down_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX seconds, got {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError("expected 0 <= MIN <= MAX")
    return bounds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--url", default="http://127.0.0.1:7547/", help="ACS CWMP URL (default %(default)s)")
    fleet.add_argument("--devices", type=int, default=10, help="number of simulated CPEs (default %(default)s)")
    fleet.add_argument(
        "--profile",
        choices=[*PROFILE_NAMES, "mix"],
        default="huawei-hg8245",
        help="vendor profile, or mix for all of them round-robin (default %(default)s)",
    )
    fleet.add_argument(
        "--ramp", type=float, default=50.0, help="devices booted per second at start (default %(default)s)"
    )
    fleet.add_argument(
        "--interval",
        type=int,
        default=300,
        help="periodic inform interval in seconds until the ACS sets one (default %(default)s)",
    )
    fleet.add_argument("--seed", type=int, default=1, help="seed for serials and values (default %(default)s)")
    fleet.add_argument(
        "--cwmp-version",
        choices=["1.0", "1.4", "mix"],
        default="1.0",
        help="CWMP version the devices speak (default %(default)s)",
    )
    fleet.add_argument("--username", default="", help="username for HTTP auth towards the ACS")
    fleet.add_argument("--password", default="", help="password for HTTP auth towards the ACS")
    fleet.add_argument(
        "--cr-listen",
        type=_host_port,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="connection-request listener, one port for all devices (default 127.0.0.1:0)",
    )
    fleet.add_argument(
        "--cr-advertise",
        default=None,
        metavar="HOST",
        help="host to put in ConnectionRequestURL (default: the --cr-listen host)",
    )
    fleet.add_argument("--max-sessions", type=int, default=200, help="concurrent sessions (default %(default)s)")
    fleet.add_argument("--onts-per-pon", type=int, default=32, help="devices per PON port (default %(default)s)")
    fleet.add_argument(
        "--new-connection-per-message",
        action="store_true",
        help="open a new TCP connection for every HTTP message (tests cookie-bound sessions)",
    )
    fleet.add_argument(
        "--no-transfer-io", action="store_true", help="do not fetch/put Download/Upload URLs; report them successful"
    )
    fleet.add_argument(
        "--firmware-mix", type=_shares, default=FIRMWARE_MIX, metavar="A,B,C",
        help="share of the fleet on each of the profile's software versions, oldest first (default 0.5,0.3,0.2)",
    )
    run = parser.add_argument_group("run and report")
    run.add_argument("--duration", type=float, default=None, help="stop after S seconds with the final report")
    run.add_argument("--json", action="store_true", help="final report as JSON on stdout")
    run.add_argument("--summary-every", type=float, default=5.0, help="live summary period, 0 for none")
    bad = parser.add_argument_group("bad days")
    bad.add_argument("--slow", type=int, default=0, metavar="MS", help="delay every CPE message by MS ms")
    bad.add_argument(
        "--drop-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability that a session's connection is dropped mid-session",
    )
    bad.add_argument(
        "--fault-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability of answering an ACS request with fault 9002",
    )
    bad.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_NAMES,
        default=[],
        help="olt-outage, bad-firmware and/or churn (repeatable)",
    )
    bad.add_argument(
        "--brick-share", type=float, default=0.0, metavar="P",
        help="share of devices a firmware upgrade bricks: they never boot again (default 0)",
    )
    bad.add_argument(
        "--scenarios-on-signal",
        action="store_true",
        help="count the scenarios' start times from a SIGUSR1 instead of from the fleet's start",
    )
    bad.add_argument("--outage-start", type=float, default=60.0, help="olt-outage: start after S seconds")
    bad.add_argument("--outage-duration", type=float, default=120.0, help="olt-outage: length in seconds")
    bad.add_argument("--outage-olt", default="OLT-0001", help="olt-outage: the OLT id (default %(default)s)")
    bad.add_argument("--outage-pons", type=int, default=1, help="olt-outage: PON ports of that OLT that go dark")
    bad.add_argument(
        "--rx-drift", type=float, default=6.0, help="bad-firmware: RX level loss in dB per hour (default %(default)s)"
    )
    bad.add_argument(
        "--reboot-interval",
        type=float,
        default=600.0,
        help="bad-firmware: seconds between crash reboots, 0 for none (default %(default)s)",
    )
    bad.add_argument(
        "--churn-rate", type=_positive, default=2.0, help="churn: devices going silent per minute (default %(default)s)"
    )
    bad.add_argument("--churn-start", type=float, default=60.0, help="churn: start after S seconds")
    bad.add_argument(
        "--churn-down",
        type=_down_range,
        default=(60.0, 300.0),
        metavar="MIN:MAX",
        help="churn: seconds a device stays silent, at random in MIN..MAX (default 60:300)",
    )
    bad.add_argument(
        "--churn-duration", type=float, default=None, help="churn: stop churning after S seconds (default: never)"
    )


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give shares such as 0.5,0.3,0.2") from exc
    if not shares or any(share < 0 for share in shares) or sum(shares) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: shares must be >= 0 with a positive sum")
    return shares


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    scenarios: list[Scenario] = []
    if "olt-outage" in args.scenario:
        scenarios.append(
            OltOutage(
                start=args.outage_start, duration=args.outage_duration, olt=args.outage_olt, pons=args.outage_pons
            )
        )
    if "bad-firmware" in args.scenario:
        scenarios.append(BadFirmware(rx_drift_db_per_hour=args.rx_drift, reboot_interval=args.reboot_interval or None))
    if "churn" in args.scenario:
        low, high = args.churn_down
        scenarios.append(
            Churn(rate=args.churn_rate, start=args.churn_start, min_down=low, max_down=high,
                  duration=args.churn_duration, seed=args.seed)
        )
    return scenarios


def config_from(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
        url=args.url,
        devices=args.devices,
        profile=args.profile,
        ramp=args.ramp,
        interval=args.interval,
        seed=args.seed,
        cr_listen=args.cr_listen,
        cr_advertise=args.cr_advertise,
        cwmp_version=args.cwmp_version,
        username=args.username,
        password=args.password,
        slow_ms=args.slow,
        drop_rate=args.drop_rate,
        fault_rate=args.fault_rate,
        new_connection_per_message=args.new_connection_per_message,
        max_sessions=args.max_sessions,
        onts_per_pon=args.onts_per_pon,
        scenarios=scenarios_from(args),
        scenarios_on_trigger=args.scenarios_on_signal,
        transfer_io=not args.no_transfer_io,
        firmware_mix=args.firmware_mix,
        brick_share=args.brick_share,
    )


async def _summaries(fleet: Fleet, every: float) -> None:
    previous, last = 0, time.monotonic()
    while True:
        await asyncio.sleep(every)
        now = time.monotonic()
        snapshot = fleet.snapshot(previous, now - last)
        print(live_line(fleet.stats, snapshot), file=sys.stderr, flush=True)
        previous, last = snapshot.sessions, now


def _start_scenarios(fleet: Fleet) -> None:
    if fleet.start_scenarios():
        print(f"acs sim: scenarios started at {fleet.scenarios_started_at:.3f}", file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace) -> int:
    fleet = Fleet(config_from(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if args.scenarios_on_signal:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGUSR1, _start_scenarios, fleet)
    await fleet.start()
    print(
        f"acs sim: {len(fleet.devices)} devices -> {args.url}, connection requests at "
        f"{fleet.settings.cr_base_url or '(off)'}<serial>",
        file=sys.stderr,
        flush=True,
    )
    summaries = asyncio.create_task(_summaries(fleet, args.summary_every)) if args.summary_every > 0 else None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.duration)
    if summaries is not None:
        summaries.cancel()
    await fleet.stop()
    extra = {
        "scenarios": [s.describe(fleet.devices) for s in fleet.config.scenarios],
        "connection_requests": vars(fleet.listener.stats),
    }
    report = final_report(fleet.stats, fleet.snapshot(), extra)
    if args.json:
        print(render_json(report), flush=True)
    else:
        print(render_text(report), file=sys.stderr, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.devices < 1:
        print("acs sim: --devices must be at least 1", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m acs.sim.cli`) until `acs sim` is wired in acs/cli.py."""
    parser = argparse.ArgumentParser(
        prog="acs sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
