"""The device registry: what an Inform tells us about a device, and storing it.

Summary fields are found by the end of the parameter name so TR-098 (``InternetGatewayDevice.``)
and TR-181 (``Device.``) devices, whose Inform parameters differ only in their paths
(TR-069 A.3.3.1 lists the Inform parameters for both), fill the same fields.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cwmp import CwmpVersion, Inform
from cwmp.device_id import make_device_id
from tasks.records import TaskRecord
from tasks.search import normal_mac
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository, StoredInform
from tasks.store.parameters import ParameterRepository

SUMMARY_SUFFIXES: dict[str, str] = {
    ".DeviceInfo.SoftwareVersion": "software_version",
    ".DeviceInfo.HardwareVersion": "hardware_version",
    ".DeviceInfo.ModelName": "model_name",
    ".DeviceInfo.ProvisioningCode": "provisioning_code",
    ".DeviceInfo.UpTime": "uptime",
    ".ManagementServer.ConnectionRequestURL": "connection_request_url",
    ".ManagementServer.UDPConnectionRequestAddress": "udp_connection_request_address",
    ".ManagementServer.ParameterKey": "parameter_key",
    ".ManagementServer.PeriodicInformInterval": "periodic_inform_interval",
    ".ExternalIPAddress": "wan_ip",  # TR-098 WANIPConnection / WANPPPConnection
}
# TR-181 carries the WAN address as Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress (TR-181 Inform list).
TR181_ADDRESS_SUFFIX = ".IPAddress"
# Offline when the periodic inform is missed twice, plus a grace for slow links; DeviceRegistry
# applies the configured OfflineMargin instead.
OFFLINE_GRACE = timedelta(seconds=60)
# The WAN MAC (line 2 reads it off the label): TR-098 WANIPConnection/WANPPPConnection, TR-181 Ethernet.
WAN_MAC_NAME = re.compile(
    r"^(?:InternetGatewayDevice\.WANDevice\.\d+\.WANConnectionDevice\.\d+\.WAN(?:IP|PPP)Connection\.\d+"
    r"|Device\.Ethernet\.(?:Interface|Link)\.\d+)\.MACAddress$"
)
BOOTSTRAP = "0 BOOTSTRAP"
PERIODIC_INTERVAL_SUFFIX = ".ManagementServer.PeriodicInformInterval"
PROVISIONING_USER = "system:provisioning"  # who creates the BOOTSTRAP provisioning task


@dataclass(frozen=True)
class InformSummary:
    device_id: str
    identity: dict[str, Any]
    state: dict[str, Any]
    event_codes: list[str]

    @property
    def bootstrap(self) -> bool:
        return BOOTSTRAP in self.event_codes


def data_model_root(inform: Inform) -> str:
    """``InternetGatewayDevice.`` (TR-098) or ``Device.`` (TR-181), from the Inform's parameters."""
    for parameter in inform.parameters:
        root = parameter.name.split(".", 1)[0]
        if root:
            return root + "."
    return "InternetGatewayDevice."


def _summary_field(name: str) -> str | None:
    for suffix, field in SUMMARY_SUFFIXES.items():
        if name.endswith(suffix):
            return field
    if name.startswith("Device.IP.Interface.") and name.endswith(TR181_ADDRESS_SUFFIX):
        return "wan_ip"
    return None


# The LAN side's own MAC (TR-098 LANEthernetInterfaceConfig / LANHostConfigManagement), not a host's.
LAN_MAC_NAME = re.compile(
    r"^InternetGatewayDevice\.LANDevice\.\d+\.(?:LANEthernetInterfaceConfig\.\d+|LANHostConfigManagement)\.MACAddress$"
)


def lan_mac_of(values: Iterable[tuple[str, Any]]) -> str | None:
    """The first usable LAN MAC among (name, value) pairs."""
    for name, value in values:
        if LAN_MAC_NAME.match(name) and isinstance(value, str) and (mac := normal_mac(value)):
            return mac
    return None


def wan_mac_of(values: Iterable[tuple[str, Any]]) -> str | None:
    """The first usable WAN MAC among (name, value) pairs (an Inform's or a read's)."""
    for name, value in values:
        if WAN_MAC_NAME.match(name) and isinstance(value, str) and (mac := normal_mac(value)):
            return mac
    return None


def _summary(inform: Inform) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for parameter in inform.parameters:
        field = _summary_field(parameter.name)
        if field is not None and field not in summary:
            summary[field] = parameter.value.strip()
    wan_mac = wan_mac_of((parameter.name, parameter.value) for parameter in inform.parameters)
    if wan_mac is not None:
        summary["wan_mac"] = wan_mac
    for numeric in ("uptime", "periodic_inform_interval"):
        if numeric in summary:
            summary[numeric] = int(summary[numeric]) if summary[numeric].isdigit() else None
    return summary


def interval_of(values: Iterable[Any]) -> int | None:
    """PeriodicInformInterval (seconds) among a read's or a SetParameterValues' name/value pairs."""
    for value in values:
        if isinstance(value, dict) and str(value.get("name", "")).endswith(PERIODIC_INTERVAL_SUFFIX):
            text = str(value.get("value", "")).strip()
            return int(text) if text.isdigit() and int(text) > 0 else None
    return None


INFORM_VALUES = "inform_values"  # device field: inform_values_digest of its last Inform


def inform_values_digest(inform: Inform, now: datetime) -> str:
    """Pure: what an Inform's parameter values were, in the hour ``now`` falls in (a short hash)."""
    text = repr((now.astimezone(UTC).strftime("%Y-%m-%dT%H"), [(p.name, p.value, p.type) for p in inform.parameters]))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def summarize_inform(
    inform: Inform, version: CwmpVersion, remote_ip: str | None, default_interval: int, now: datetime
) -> InformSummary:
    ident = inform.device_id
    summary = _summary(inform)
    interval = summary.get("periodic_inform_interval") or default_interval
    identity = {
        "oui": ident.oui,
        "product_class": ident.product_class,
        "serial_number": ident.serial_number,
        "manufacturer": ident.manufacturer,
    }
    state: dict[str, Any] = {
        **summary,
        "remote_ip": remote_ip,
        "root": data_model_root(inform),
        "cwmp_version": version.value,
        "last_events": [event.event_code for event in inform.events],
        "offline_after": now + timedelta(seconds=2 * interval) + OFFLINE_GRACE,
    }
    device_id = make_device_id(ident.oui, ident.product_class, ident.serial_number)
    return InformSummary(device_id, identity, state, [event.event_code for event in inform.events])


@dataclass(frozen=True)
class OfflineMargin:
    """A device is offline once its periodic inform is ``factor`` intervals + ``grace`` late."""

    default_interval: int = 300
    factor: float = 2.0
    grace: float = OFFLINE_GRACE.total_seconds()

    def deadline(self, now: datetime, interval: int | None) -> datetime:
        return now + timedelta(seconds=self.factor * (interval or self.default_interval) + self.grace)


TransitionHook = Callable[[str, str], None]  # (device_id, "online" | "offline")


class DeviceRegistry:
    def __init__(
        self,
        devices: DeviceRepository,
        parameters: ParameterRepository,
        events: DeviceEventRepository | None = None,
        margin: OfflineMargin | None = None,
    ) -> None:
        self.devices = devices
        self.parameters = parameters
        self.events = events
        self.margin = margin
        self.transition_hooks: list[TransitionHook] = []

    async def record_inform(
        self, summary: InformSummary, inform: Inform, now: datetime, own_credentials: bool = True
    ) -> Document:
        """Store what the Inform says; the device as stored."""
        return (await self.record_session_inform(summary, inform, now, own_credentials)).device

    async def record_session_inform(
        self,
        summary: InformSummary,
        inform: Inform,
        now: datetime,
        own_credentials: bool = True,
        fields: Mapping[str, Any] | None = None,
        without_connection_request: bool = False,
        cached: Iterable[tuple[str, str, str]] = (),
        stored_already: bool = False,
    ) -> StoredInform:
        """Store what the Inform says; ``own_credentials`` False (no or global credentials) refuses a
        device that has credentials of its own (``CredentialsRequired``), before anything is stored.

        ``fields`` go into the same device write (the provisioning of a BOOTSTRAP): one
        findAndModify per Inform; ``without_connection_request``: only if the device has no
        connection-request credentials (else ``HasConnectionRequestCredentials``, nothing stored).
        ``cached``: (name, value, xsi type) written into the tree a BOOTSTRAP (or a new device's first
        Inform) stores, after the Inform's own: what its provisioning sets, cached at once so that
        its answer writes no cache (on FerretDB 1.24 an update is two PostgreSQL transactions).
        A BOOTSTRAP first tries to insert the device (``probably_new``) unless ``stored_already``.
        """
        state = dict(summary.state)
        if summary.bootstrap:
            state["last_bootstrap"] = now
        if "1 BOOT" in summary.event_codes:
            state["last_boot"] = now
        if self.margin is not None:
            state["offline_after"] = self.margin.deadline(now, state.get("periodic_inform_interval"))
        state["presence"] = "online"
        state[INFORM_VALUES] = inform_values_digest(inform, now)
        state.update(fields or {})
        stored = await self.devices.upsert_inform(
            summary.device_id,
            summary.identity,
            state,
            now,
            without_own_credentials=not own_credentials,
            without_connection_request=without_connection_request,
            probably_new=summary.bootstrap and not stored_already,
        )
        device, created = stored.device, stored.created
        await self._keep_known_interval(device, summary, now)
        await self._record_events(stored.before, summary, now, created)
        # The Inform's values go into the cache unless the device's previous Inform this hour carried
        # exactly the same (a periodic Inform mostly repeats itself; on FerretDB the write is two
        # PostgreSQL transactions). The hour in the digest rewrites them at least hourly, which also
        # bounds how long a cache write lost to a crash right after the device write stays missing.
        # TR-069 3.7.1.5: BOOTSTRAP means the device lost (or never had) its configuration from
        # us; the cached tree is stale and is replaced by the Inform's. History (sessions, tasks) is kept.
        # A device this Inform stored has no tree yet: its first is one insert (FerretDB 1.24: one
        # PostgreSQL transaction for the whole group-committed command, where an upsert costs two).
        reported = [(parameter.name, parameter.value, parameter.type) for parameter in inform.parameters]
        if created:
            await self.parameters.set_first_values(summary.device_id, [*reported, *cached], now)
        elif summary.bootstrap:
            await self.parameters.set_values(summary.device_id, [*reported, *cached], now, replace=True)
        elif stored.before.get(INFORM_VALUES) != state[INFORM_VALUES]:
            await self.parameters.set_values(summary.device_id, reported, now)
        return stored

    def _deadline(self, now: datetime, interval: int | None) -> datetime:
        margin = self.margin or OfflineMargin()
        return margin.deadline(now, interval)

    async def _keep_known_interval(self, device: Document, summary: InformSummary, now: datetime) -> None:
        """An Inform without PeriodicInformInterval (TR-069 A.3.3.1 does not require it) keeps the one
        known for the device (set by us, or read): its deadline follows that, not the ACS's default."""
        if "periodic_inform_interval" in summary.state or self.margin is None:
            return
        known = device.get("periodic_inform_interval")
        if isinstance(known, int) and known > 0 and known != self.margin.default_interval:
            await self.devices.set_fields(summary.device_id, {"offline_after": self._deadline(now, known)})

    async def on_task_final(self, task: TaskRecord) -> None:
        """What a finished task taught about the device.

        A read that brought the WAN or LAN MAC (Informs rarely carry them; the health read asks for
        them, checks.json) stores them in the summary for search: line 2 types them off the box label.
        A read of PeriodicInformInterval, or a SetParameterValues of it the device applied, becomes
        the device's interval, and its offline deadline moves out to the new interval at once: a
        bulk change to a longer interval must not make the fleet look offline (TR-069 A.3.2.1).
        """
        if task.get("status") != "done":
            return
        result = task.get("result") or {}
        read = result.get("values") if isinstance(result, dict) else None
        if isinstance(read, list):
            pairs = [(str(v.get("name")), v.get("value")) for v in read if isinstance(v, dict)]
            macs = {"wan_mac": wan_mac_of(pairs), "lan_mac": lan_mac_of(pairs)}
            found = {field: mac for field, mac in macs.items() if mac is not None}
            if found:
                await self.devices.set_facts_if_changed(task["device_id"], found)
        written = (task.get("params") or {}).get("values") if task.get("kind") == "set_parameter_values" else None
        if task.get("created_by") == PROVISIONING_USER:
            written = None  # the ACS's own interval at BOOTSTRAP: ``Provisioner.on_task_final`` records it
        for values in (read, written):
            if isinstance(values, list) and (interval := interval_of(values)) is not None:
                await self._interval_changed(task["device_id"], interval, task.get("finished_at"))
                return

    async def _interval_changed(self, device_id: str, interval: int, at: datetime | None) -> None:
        # A deadline only moves later here: a shorter interval takes effect with the next Inform.
        await self.devices.set_interval(device_id, interval, self._deadline(at or datetime.now(UTC), interval))

    async def _record_events(self, before: Document, summary: InformSummary, now: datetime, created: bool) -> None:
        """A boot, and a device the offline job marked coming back (``before``: the device as it was)."""
        if self.events is None:
            return
        if "1 BOOT" in summary.event_codes:
            # The device's first contact with us boots it too, but is not a reboot (device_events.reboots_since).
            detail = {"events": summary.event_codes, **({"first_contact": True} if created else {})}
            await self.events.record(summary.device_id, device_events.BOOT, now, detail)
        offline_since = before.get("offline_since")
        if offline_since is not None:  # the offline job marked it; this Inform brings it back
            await self.devices.clear_offline(summary.device_id, now)
            await self.events.record(summary.device_id, device_events.ONLINE, now, {"offline_since": offline_since})
            for hook in self.transition_hooks:
                hook(summary.device_id, device_events.ONLINE)
