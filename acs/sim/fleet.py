"""A fleet of simulated CPEs in one asyncio process.

One scheduler task keeps a heap of (when, device) and starts sessions when a device wants one
(boot, periodic, connection request, retries, reboots...), at most `max_sessions` at a time.
Devices hold no tasks of their own, so 10,000 idle devices cost only their own state.

    fleet = Fleet(FleetConfig(url=..., devices=100))
    await fleet.start()
    outcome = await fleet.run_session(serial)   # tests: one session now, wait for its outcome
    await fleet.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from acs.sim.crlistener import ConnectionRequestListener
from acs.sim.device import DeviceSettings, SimDevice, Transfer
from acs.sim.population import FIRMWARE_MIX, PopulationPlan, make_device
from acs.sim.report import FleetStats, Snapshot
from acs.sim.scenarios import Scenario
from acs.sim.session import CpeSession, SessionConfig, SessionOutcome

ACTIVE_NOTIFICATION_CHECK = 5.0  # seconds between checks of actively notified parameters
STOP_GRACE = 10.0  # seconds running sessions get to finish on stop


@dataclass
class FleetConfig:
    url: str = "http://127.0.0.1:7547/"
    devices: int = 10
    profile: str = "huawei-hg8245"
    ramp: float = 50.0  # devices powered on per second
    interval: int = 300
    seed: int = 1
    cr_listen: tuple[str, int] | None = ("127.0.0.1", 0)
    cr_advertise: str | None = None  # host put in ConnectionRequestURL (default: the listen host)
    cwmp_version: str = "1.0"
    username: str = ""
    password: str = ""
    slow_ms: int = 0
    drop_rate: float = 0.0
    fault_rate: float = 0.0
    new_connection_per_message: bool = False
    max_sessions: int = 200
    request_timeout: float = 30.0
    onts_per_pon: int = 32
    scenarios: list[Scenario] = field(default_factory=list)
    boot_seconds: float = 2.0
    transfer_io: bool = True  # really GET/PUT transfer URLs (False: pretend they succeed)
    autostart: bool = True  # power devices on at start(); False leaves them off for tests
    firmware_mix: tuple[float, ...] = FIRMWARE_MIX  # share of each software version at start
    brick_share: float = 0.0  # devices a firmware upgrade bricks (they never come back)
    # The scenarios' clock starts at ``start_scenarios()`` (``acs sim``: SIGUSR1), not at the fleet's
    # start: a drill begun once the ACS knows the fleet, however long that took.
    scenarios_on_trigger: bool = False


class Fleet:
    def __init__(self, config: FleetConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(config.seed)  # noqa: S311 - simulation, not security
        self.stats = FleetStats()
        self.settings = DeviceSettings(
            acs_url=config.url,
            acs_username=config.username,
            acs_password=config.password,
            periodic_interval=config.interval,
            boot_seconds=config.boot_seconds,
            brick_share=config.brick_share,
        )
        plan = PopulationPlan(
            profile=config.profile, cwmp_version=config.cwmp_version, seed=config.seed,
            onts_per_pon=config.onts_per_pon, firmware_mix=config.firmware_mix,
        )
        self.devices: list[SimDevice] = [make_device(plan, i, self.settings) for i in range(config.devices)]
        self._by_serial = {d.serial: d for d in self.devices}
        self.session_config = SessionConfig(
            url=config.url,
            username=config.username,
            password=config.password,
            slow_ms=config.slow_ms,
            drop_rate=config.drop_rate,
            fault_rate=config.fault_rate,
            new_connection_per_message=config.new_connection_per_message,
            request_timeout=config.request_timeout,
        )
        self.listener = ConnectionRequestListener(self.device, self._on_connection_request, clock)
        self._heap: list[tuple[float, int]] = []
        self._due: list[float | None] = [None] * len(self.devices)
        self._busy: set[int] = set()
        self._transfers: set[tuple[int, int]] = set()
        self._waiters: dict[int, list[asyncio.Future[SessionOutcome]]] = {}
        self._changed = asyncio.Event()
        self._slots = asyncio.Semaphore(config.max_sessions)
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._transfer_http: aiohttp.ClientSession | None = None
        self._stopping = False
        self._scenarios_go = asyncio.Event()
        self.scenarios_started_at: float | None = None

    # -- public API ----------------------------------------------------------------------------

    def device(self, serial: str) -> SimDevice | None:
        return self._by_serial.get(serial)

    async def start(self) -> None:
        self.stats.started_at = self.clock()
        if self.config.cr_listen is not None:
            host, port = self.config.cr_listen
            port = await self.listener.start(host, port)
            self.settings.cr_base_url = f"http://{self.config.cr_advertise or host}:{port}/cr/"
        self._transfer_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        now = self.clock()
        if self.config.autostart:
            for device in self.devices:
                device.power_on(now, device.index / self.config.ramp if self.config.ramp > 0 else 0.0)
                self._reschedule(device)
        self._background = [asyncio.create_task(self._scheduler()), asyncio.create_task(self._notifications())]
        self._background += [asyncio.create_task(self._run_scenario(s)) for s in self.config.scenarios]

    async def stop(self) -> None:
        self._stopping = True
        # The scheduler ends on the flag as well as on the cancel: Python 3.11's ``asyncio.wait_for``
        # swallows a cancel that arrives in the turn its awaited event is set (a session ending just
        # then), and the scheduler would wait on for ever.
        self._changed.set()
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.listener.stop()
        if self._transfer_http is not None:
            await self._transfer_http.close()

    def power_on(self, serial: str, boot_delay: float = 0.0) -> None:
        device = self._by_serial[serial]
        device.power_on(self.clock(), boot_delay)
        self._reschedule(device)

    def wake(self, device: SimDevice) -> None:
        """Re-read when `device` next needs attention (after a change made from outside)."""
        self._reschedule(device)

    async def run_session(
        self, serial: str, event: str = "6 CONNECTION REQUEST", timeout: float = 60.0
    ) -> SessionOutcome:
        """Make the device open a session now (with `event`) and wait for the outcome."""
        device = self._by_serial[serial]
        future: asyncio.Future[SessionOutcome] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(device.index, []).append(future)
        if device.online and not device.in_session:
            device.add_event(event)
            device.want_session(self.clock())
            self._reschedule(device)
        return await asyncio.wait_for(future, timeout)

    async def next_session(self, serial: str, timeout: float = 60.0) -> SessionOutcome:
        """Wait for the next session of this device to finish, whatever started it."""
        future: asyncio.Future[SessionOutcome] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(self._by_serial[serial].index, []).append(future)
        return await asyncio.wait_for(future, timeout)

    def snapshot(self, previous_sessions: int = 0, window: float = 1.0) -> Snapshot:
        return Snapshot(
            elapsed=self.clock() - self.stats.started_at,
            devices=len(self.devices),
            online=sum(1 for d in self.devices if d.online and d.bootstrapped),
            in_session=sum(1 for d in self.devices if d.in_session),
            sessions=self.stats.sessions,
            sessions_per_second=(self.stats.sessions - previous_sessions) / max(window, 1e-9),
        )

    # -- scheduling ----------------------------------------------------------------------------

    def _reschedule(self, device: SimDevice) -> None:
        due = device.next_due()
        if due is not None and due != self._due[device.index]:
            self._due[device.index] = due
            heapq.heappush(self._heap, (due, device.index))
            self._changed.set()

    async def _scheduler(self) -> None:
        serviced = 0
        while not self._stopping:
            self._changed.clear()  # before peeking: a push after this wakes us at once
            if not self._heap:
                await self._changed.wait()
                continue
            due, index = self._heap[0]
            delay = due - self.clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), delay)
                continue
            heapq.heappop(self._heap)
            if self._due[index] == due:
                self._due[index] = None
                self._service(self.devices[index])
            serviced += 1
            if serviced % 100 == 0:
                await asyncio.sleep(0)  # let sessions run while thousands of devices come due

    def _service(self, device: SimDevice) -> None:
        if device.index in self._busy:
            return  # rescheduled when the running session ends
        if device.tick(self.clock()) and not self._stopping:
            self._busy.add(device.index)
            self._spawn(self._session(device))
        for transfer in device.transfers_in_progress():
            if (device.index, transfer.seq) not in self._transfers:
                self._transfers.add((device.index, transfer.seq))
                self._spawn(self._transfer(device, transfer))
        self._reschedule(device)

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _session(self, device: SimDevice) -> None:
        try:
            async with self._slots:
                rng = random.Random(self.rng.getrandbits(32))  # noqa: S311 - simulation, not security
                session = CpeSession(device, self.session_config, rng, self.clock)
                outcome = await session.run()
        finally:
            self._busy.discard(device.index)
        self.stats.record(outcome)
        for future in self._waiters.pop(device.index, []):
            if not future.done():
                future.set_result(outcome)
        self._reschedule(device)

    def _on_connection_request(self, device: SimDevice) -> bool:
        accepted = device.connection_request(self.clock())
        self._reschedule(device)
        return accepted

    async def _notifications(self) -> None:
        """Actively notified parameters that changed make the device inform (TR-069 3.2.1)."""
        while True:
            await asyncio.sleep(ACTIVE_NOTIFICATION_CHECK)
            now = self.clock()
            for device in self.devices:
                if (
                    device.attributes
                    and device.online
                    and not device.in_session
                    and device.value_changes(now, active_only=True)
                ):
                    device.add_event("4 VALUE CHANGE")
                    device.want_session(now)
                    self._reschedule(device)

    def start_scenarios(self) -> bool:
        """Start the scenarios' clock now (``scenarios_on_trigger``); False if it had started already."""
        if self._scenarios_go.is_set():
            return False
        self.scenarios_started_at = self.clock()
        self._scenarios_go.set()
        return True

    async def _scenario_clock(self) -> float:
        """When the scenarios' offsets count from: the fleet's start, or the trigger."""
        if not self.config.scenarios_on_trigger:
            return self.stats.started_at
        await self._scenarios_go.wait()
        assert self.scenarios_started_at is not None
        return self.scenarios_started_at

    async def _run_scenario(self, scenario: Scenario) -> None:
        origin = await self._scenario_clock()
        await asyncio.sleep(max(0.0, origin + scenario.start - self.clock()))
        scenario.begin(self.devices, self.clock())
        self._reschedule_all()
        k = 0
        while (at := scenario.step_at(k)) is not None:
            await asyncio.sleep(max(0.0, origin + at - self.clock()))
            for device in scenario.step(k, self.devices, self.clock()):
                self._due[device.index] = None
                self._reschedule(device)
            k += 1
        end = scenario.end_at()
        if end is None:
            return
        await asyncio.sleep(max(0.0, origin + end - self.clock()))
        scenario.end(self.devices, self.clock())
        self._reschedule_all()

    def _reschedule_all(self) -> None:
        for device in self.devices:
            self._due[device.index] = None
            self._reschedule(device)

    # -- file transfers ------------------------------------------------------------------------

    async def _transfer(self, device: SimDevice, transfer: Transfer) -> None:
        fault_code, fault_text = 0, ""
        if self.config.transfer_io and self._transfer_http is not None:
            fault_code, fault_text = await self._transfer_io(device, transfer)
        await asyncio.sleep(self.settings.transfer_seconds)
        self._transfers.discard((device.index, transfer.seq))
        if transfer in device.queued:
            device.transfer_finished(transfer, fault_code, self.clock(), fault_text)
            self.stats.transfers["ok" if fault_code == 0 else f"fault_{fault_code}"] += 1
        self._reschedule(device)

    async def _transfer_io(self, device: SimDevice, transfer: Transfer) -> tuple[int, str]:
        assert self._transfer_http is not None
        auth = aiohttp.BasicAuth(transfer.username, transfer.password) if transfer.username else None
        try:
            if transfer.is_download:
                async with self._transfer_http.get(transfer.url, auth=auth) as response:
                    async for _ in response.content.iter_chunked(65536):
                        pass
            else:
                body = f"# {device.profile.name} {device.serial} {transfer.file_type}\n".encode()
                async with self._transfer_http.put(transfer.url, data=body, auth=auth) as response:
                    await response.read()
        except (aiohttp.ClientError, TimeoutError):
            return 9015, "unable to contact file server"
        return _transfer_fault(response.status, transfer.is_download)


def _transfer_fault(status: int, is_download: bool) -> tuple[int, str]:
    if status < 300:
        return 0, ""
    if status in (401, 403):
        return 9012, f"HTTP {status}"
    if status == 404 and is_download:
        return 9016, "HTTP 404"
    return (9010 if is_download else 9011), f"HTTP {status}"
