"""``acs serve``: the CWMP endpoint, the operator API and the scheduler in one process (or N + 1).

With ``--workers N`` (N > 1) the parent starts the local database (when no URI is configured),
makes sure the secret key exists and prepares the database, then starts N session workers that
serve CWMP and the API on shared sockets (SO_REUSEPORT: the kernel spreads connections), and one
jobs process that runs the scheduled jobs and serves the API beside them, no CWMP. The jobs
stay out of the session workers so that every worker serves sessions alike: a worker that also
ran the jobs shared its event loop and its group-commit slots with their reads and writes, and
served its sessions four times slower than the other (docs/performance.md, "why one of two
workers is slow"). The jobs process serves the API so that its metrics (the offline gauge, the
incident counter) can still be scraped, as each worker's are. The jobs process starts only once
every session worker serves: until then its API would answer ``/healthz`` while no CWMP socket
listens, and a device (or a readiness probe's next step) would be refused. SIGTERM or Ctrl-C: stop
accepting, let running requests finish within ``shutdown_grace``, stop the database we
started, exit 0. Any child exiting on its own stops the others and ``acs serve`` exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal

from aiohttp import web

from acs import eventloop
from acs.app import create_api_app, create_cwmp_app
from acs.config import Settings
from acs.gcpolicy import tune_collector
from acs.jobs import register_jobs
from acs.listener import GUARD, ConnectionLimits, GuardedSite, ListenerGuard
from acs.localdb import LocalMongo
from acs.localdb_supervisor import LocalDatabaseSupervisor
from acs.logs import configure_logging
from acs.services import Repositories, Services, build_services
from tasks.scheduler import JobRunner
from tasks.secretbox import SecretBox, load_or_create_key
from tasks.store.db import Database, connect

log = logging.getLogger("acs.serve")
LOCAL_DB_PORT = 27017
FLUSH_SECONDS = 2.0  # at shutdown, for responses whose handler is done to be written


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def bind(address: tuple[str, int], reuse_port: bool) -> socket.socket:
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def database_uri(settings: Settings, *, supervise: bool = False) -> AsyncIterator[str]:
    """The configured URI, or a local server started for this run (and stopped after it).

    ``supervise``: restart the local server if it dies while the block runs (``acs serve``)."""
    if settings.mongodb_uri:
        log.info("using MongoDB at the configured ACS_MONGODB_URI")
        yield settings.mongodb_uri
        return
    local = await LocalMongo.start(settings.data_dir, preferred_port=LOCAL_DB_PORT)
    log.info(
        "ACS_MONGODB_URI is unset: using the local development %s at %s (data in %s)",
        local.kind,
        local.uri,
        local.db_dir,
    )
    supervisor = None
    if supervise and local.started_here:
        supervisor = LocalDatabaseSupervisor(local, lambda port: LocalMongo.start(settings.data_dir, port=port))
        supervisor.begin()
    try:
        yield local.uri + "acs"
    finally:
        if supervisor is not None:
            await supervisor.end()
            local = supervisor.server
        # A server adopted from a running `acs serve` (e.g. by `acs token create`) is left running.
        if local.started_here:
            await local.stop()


async def run_with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    """Run a CLI command's ``work`` against the configured database (or the local one)."""
    async with database_uri(settings) as uri:
        database = connect(uri)
        try:
            return await work(database)
        finally:
            await database.close()


async def _start_site(
    app: web.Application, name: str, sock: socket.socket, context: ssl.SSLContext | None, services: Services
) -> tuple[web.AppRunner, ListenerGuard]:
    settings = services.settings
    guard = ListenerGuard(name, ConnectionLimits.of(settings, name), services.metrics)
    app[GUARD] = guard
    # The grace is spent in _stop_sites (guard.drain); aiohttp's own shutdown only gets the
    # responses already answered out of the door.
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=guard.limits.keepalive_timeout, shutdown_timeout=FLUSH_SECONDS
    )
    await runner.setup()
    await GuardedSite(runner, sock, guard, ssl_context=context).start()
    return runner, guard


async def _stop_sites(listeners: list[tuple[web.AppRunner, ListenerGuard]], grace: float) -> None:
    """Stop accepting, let running requests finish (bodies still arriving included) within
    ``grace``, then close what is left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    for runner, _guard in listeners:
        for site in list(runner.sites):
            await site.stop()
    for runner, guard in listeners:
        if not await guard.drain(max(0.0, deadline - loop.time())):
            log.warning("%s: %d request(s) still running after the %.0f s grace: cut", guard.name, guard.in_flight,
                        grace)
        await runner.cleanup()


async def prepare_database(settings: Settings) -> None:
    """Indexes and one-off start-up passes, once before the workers start (``--workers N``)."""
    database = connect(settings.mongodb_uri or "")
    try:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        await Repositories.open(database, SecretBox(load_or_create_key(secret, settings.data_dir))).ensure_indexes()
    finally:
        await database.close()


Role = Literal["all", "sessions", "jobs"]


async def run_worker(
    settings: Settings, *, prepare: bool = True, role: Role = "all", serving: Callable[[], None] | None = None
) -> None:
    """One serving process until SIGTERM/SIGINT. ``role``: ``all`` (one process: CWMP, the API
    and the scheduled jobs), ``sessions`` (a session worker of ``--workers N``: CWMP and the API)
    or ``jobs`` (the jobs process of ``--workers N``: the scheduled jobs and the API).

    With several processes each binds its own sockets with SO_REUSEPORT and the kernel spreads
    the connections between them; the parent has prepared the database (``prepare`` False).
    ``serving`` is called once the process's sockets accept (the parent waits for it).
    """
    many = settings.workers > 1
    cwmp_sock = bind(settings.cwmp_address, reuse_port=many) if role != "jobs" else None
    api_sock = bind(settings.api_address, reuse_port=many)
    database = connect(settings.mongodb_uri or "")
    services = build_services(settings, database)
    if prepare:
        await services.repositories.ensure_indexes()
    listeners: list[tuple[web.AppRunner, ListenerGuard]] = []
    if cwmp_sock is not None:
        listeners.append(await _start_site(create_cwmp_app(services), "cwmp", cwmp_sock,
                                           tls_context(settings.cwmp_tls_cert, settings.cwmp_tls_key), services))
    listeners.append(await _start_site(create_api_app(services), "api", api_sock,
                                       tls_context(settings.api_tls_cert, settings.api_tls_key), services))
    jobs = JobRunner(services.jobs, services.clock)
    if role != "sessions":
        register_jobs(jobs, services)
        jobs.start()
    loop_name = "uvloop" if "uvloop" in type(asyncio.get_running_loop()).__module__ else "asyncio"
    if role == "jobs":
        log.info("running the scheduled jobs and serving the API on %s, no CWMP (event loop: %s)",
                 settings.api_listen, loop_name)
    else:
        log.info("serving CWMP on %s and the API on %s%s (event loop: %s)", settings.cwmp_listen,
                 settings.api_listen, ", the scheduled jobs in the jobs process" if role == "sessions" else "",
                 loop_name)
    tune_collector(services.metrics)  # started: what it holds now lives as long as the process
    if serving is not None:
        serving()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping: no new connections, finishing running requests (up to %.0f s)", settings.shutdown_grace)
    await asyncio.gather(jobs.stop(settings.shutdown_grace), _stop_sites(listeners, settings.shutdown_grace))
    await database.close()


def _worker_main(settings: Settings, role: Role, ready: Connection) -> None:
    configure_logging(settings.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent relays Ctrl-C as SIGTERM

    def serving() -> None:
        ready.send(True)
        ready.close()

    eventloop.run(run_worker(settings, prepare=False, role=role, serving=serving), settings.event_loop)


async def serve(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    load_or_create_key(secret, settings.data_dir)  # before any worker, so all share one key
    async with database_uri(settings, supervise=True) as uri:
        settings = settings.model_copy(update={"mongodb_uri": uri})
        if settings.workers == 1:
            await run_worker(settings)
            return 0
        return await _run_workers(settings)


async def _run_workers(settings: Settings) -> int:
    await prepare_database(settings)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited event loop
    workers: list[multiprocessing.process.BaseProcess] = []
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def start(role: Role, name: str) -> Connection:
        receiving, sending = context.Pipe(duplex=False)
        worker = context.Process(target=_worker_main, args=(settings, role, sending), name=name)
        worker.start()
        sending.close()  # the child's end: if the child dies, recv() on ours ends
        workers.append(worker)
        return receiving

    pipes = [start("sessions", f"acs-worker-{n}") for n in range(settings.workers)]
    waiting = asyncio.ensure_future(asyncio.to_thread(_wait_serving, list(pipes)))
    await asyncio.wait([waiting, asyncio.ensure_future(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    if waiting.done() and waiting.result() and not stopping.is_set():
        pipes.append(start("jobs", "acs-jobs"))  # kept open: its "serving" must not hit a closed pipe
        log.info("%d session workers serve; started the jobs process", settings.workers)
    watcher = asyncio.ensure_future(asyncio.to_thread(_wait_any, workers))
    await asyncio.wait([watcher, asyncio.ensure_future(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
    await asyncio.to_thread(_join_all, workers, settings.shutdown_grace + 5)
    failed = [worker.name for worker in workers if worker.exitcode not in (0, -signal.SIGTERM)]
    if failed and not stopping.is_set():
        log.error("worker(s) %s exited unexpectedly", ", ".join(failed))
        return 1
    return 0


def _wait_serving(pipes: Sequence[Connection]) -> bool:
    """True once every session worker has said it serves; False as soon as one ends without."""
    for pipe in pipes:
        try:
            pipe.recv()
        except EOFError:
            return False
        finally:
            pipe.close()
    return True


def _wait_any(workers: Sequence[multiprocessing.process.BaseProcess]) -> None:
    from multiprocessing.connection import wait

    wait([worker.sentinel for worker in workers])


def _join_all(workers: Sequence[multiprocessing.process.BaseProcess], timeout: float) -> None:
    for worker in workers:
        worker.join(timeout)
        if worker.is_alive():
            worker.kill()
            worker.join()
