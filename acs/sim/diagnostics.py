"""Results of the diagnostics a device runs after the ACS sets DiagnosticsState to "Requested".

TR-098 (IPPingDiagnostics, TraceRouteDiagnostics, Download/UploadDiagnostics) and TR-181
(Device.IP.Diagnostics.*) use almost the same result names; only names present in the device's
tree are written. Values are plausible and deterministic per device and run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acs.sim.values import iso_time, unit

if TYPE_CHECKING:
    from acs.sim.device import SimDevice

HOPS = ("10.64.0.1", "100.64.0.1", "203.0.113.9")


def complete_diagnostics(device: SimDevice, obj: str, now: float) -> None:
    kind = device.profile.diagnostics.get(obj, "")
    run = device.boot_count * 1000 + int(now) % 1000
    rtt = 3 + int(20 * unit(device.seed, device.serial, obj, run))
    target = (
        device.read(obj + "Host", now)
        or device.read(obj + "DownloadURL", now)
        or device.read(obj + "UploadURL", now)
        or ""
    )
    if not target:
        # TR-098/TR-181: no host (or URL) to test against is an error state, not "Complete".
        state = "Error_CannotResolveHostName" if kind in {"ping", "traceroute"} else "Error_InitConnectionFailed"
        _write(device, obj, {"DiagnosticsState": state})
        return
    results = {
        "ping": lambda: _ping(device, obj, now, rtt),
        "traceroute": lambda: _traceroute(device, obj, rtt),
        "download": lambda: _transfer(now, rtt, "TestBytesReceived", "TotalBytesReceived"),
        "upload": lambda: _transfer(now, rtt, "TestFileLength", "TotalBytesSent"),
    }[kind]()
    _write(device, obj, {**results, "DiagnosticsState": "Complete"})


def _ping(device: SimDevice, obj: str, now: float, rtt: int) -> dict[str, str]:
    repetitions = int(device.read(obj + "NumberOfRepetitions", now) or "1") or 1
    return {
        "SuccessCount": str(repetitions),
        "FailureCount": "0",
        "AverageResponseTime": str(rtt),
        "MinimumResponseTime": str(max(1, rtt - 2)),
        "MaximumResponseTime": str(rtt + 3),
        "AverageResponseTimeDetailed": str(rtt * 1000),
        "MinimumResponseTimeDetailed": str(max(1, rtt - 2) * 1000),
        "MaximumResponseTimeDetailed": str((rtt + 3) * 1000),
    }


def _traceroute(device: SimDevice, obj: str, rtt: int) -> dict[str, str]:
    table = obj + "RouteHops."
    for path in [f"{table}{n}." for n in device.tree.instances(table)]:
        device.tree.delete(path)
    for hop, address in enumerate(HOPS, start=1):
        number = device.tree.add_instance(table, len(HOPS) + 1000)
        hop_values = {
            "Host": address,
            "HostAddress": address,
            "ErrorCode": "0",
            "RTTimes": ",".join(str(rtt * hop // 3 + i) for i in range(3)),
        }
        for name, value in hop_values.items():
            for prefix in ("Hop", ""):
                full = f"{table}{number}.{prefix}{name}"
                if device.tree.exists(full):
                    device.tree.set(full, value)
    return {"ResponseTime": str(rtt)}


def _transfer(now: float, rtt: int, test_bytes: str, total_bytes: str) -> dict[str, str]:
    size = 10_000_000
    return {
        "ROMTime": iso_time(now - 2.0),
        "BOMTime": iso_time(now - 2.0 + rtt / 1000),
        "EOMTime": iso_time(now),
        test_bytes: str(size),
        total_bytes: str(size + 1200),
        "TCPOpenRequestTime": iso_time(now - 2.0),
        "TCPOpenResponseTime": iso_time(now - 2.0 + rtt / 1000),
    }


def _write(device: SimDevice, obj: str, results: dict[str, str]) -> None:
    for name, value in results.items():
        if device.tree.exists(obj + name):
            device.tree.set(obj + name, value)
