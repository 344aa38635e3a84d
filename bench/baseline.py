"""The floor: the same CWMP exchange and API calls answered by bare aiohttp + lxml, no database.

Every ACS figure in the benchmarks is also shown as a fraction of what this handler achieves on
the same machine in the same run, with the same simulator. It does what the ACS does on the wire
and nothing else: parses each envelope with lxml, answers Inform, sends the BOOTSTRAP provisioning
SetParameterValues (periodic inform + connection-request credentials), dispatches queued
GetParameterValues / Reboot tasks, sends connection requests (digest) and keeps everything in
dictionaries. No validation models, no leases, no persistence, no history.

    python bench/baseline.py --serve --cwmp-port 17547 --api-port 17557 [--periodic-interval 300]

Without ``--serve`` it benchmarks itself alone: a boot storm of ``--devices`` against the bare
handler (the floor the other benchmarks divide by), printed and recorded like the others.

    python bench/baseline.py [--quick] [--devices N] [--duration S] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import secrets
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cwmp.device_id import make_device_id
from cwmp.httpauth import digest_authorization, parse_challenge

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
COOKIE = "bsid"
CR_USERNAME = "bench"
CR_PASSWORD = "bench-cr-password"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
# What a device page and its parameters weigh in the ACS's answers, for the API floor.
CANNED_DEVICE = {
    "device_id": "00E0FC-HG8245H-4857544300000000", "oui": "00E0FC", "product_class": "HG8245H",
    "serial_number": "4857544300000000", "manufacturer": "Huawei Technologies Co., Ltd", "online": True,
    "software_version": "V3R017C10S115", "hardware_version": "20A5.A", "model_name": "HG8245H",
    "remote_ip": "127.0.0.1", "tags": [], "last_inform": "2025-01-01T00:00:00Z", "cwmp_version": "1.0",
}
CANNED_PARAMETERS = {
    f"InternetGatewayDevice.DeviceInfo.X_{n}": {"value": str(n), "type": "xsd:string", "writable": None,
                                                "updated_at": "2025-01-01T00:00:00Z"}
    for n in range(20)
}


def envelope(namespace: str, message_id: str, body: str) -> bytes:
    return (
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:cwmp="{namespace}"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">{escape(message_id)}'
        f"</cwmp:ID></soap-env:Header><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"
    ).encode()


def set_parameter_values(values: list[tuple[str, str, str]], key: str) -> str:
    structs = "".join(
        f'<ParameterValueStruct><Name>{escape(name)}</Name><Value xsi:type="{kind}">{escape(value)}</Value>'
        f"</ParameterValueStruct>"
        for name, value, kind in values
    )
    return (f'<cwmp:SetParameterValues><ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{len(values)}]">'
            f"{structs}</ParameterList><ParameterKey>{escape(key)}</ParameterKey></cwmp:SetParameterValues>")


def get_parameter_values(names: list[str]) -> str:
    strings = "".join(f"<string>{escape(name)}</string>" for name in names)
    return (f'<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType="xsd:string[{len(names)}]">{strings}'
            f"</ParameterNames></cwmp:GetParameterValues>")


def reboot(command_key: str) -> str:
    return f"<cwmp:Reboot><CommandKey>{escape(command_key)}</CommandKey></cwmp:Reboot>"


@dataclass
class Task:
    task_id: str
    kind: str
    names: list[str]
    done: asyncio.Future[dict[str, Any]]


@dataclass
class Device:
    device_id: str
    root: str = "InternetGatewayDevice."
    connection_request_url: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    queue: deque[Task] = field(default_factory=deque)
    awaiting_reboot: dict[str, Task] = field(default_factory=dict)


@dataclass
class Session:
    device: Device
    namespace: str
    provision: bool
    in_flight: Task | None = None
    sent_provisioning: bool = False


def text_of(element: Any, path: str) -> str:
    found = element.find(path)
    return (found.text or "") if found is not None else ""


class Baseline:
    def __init__(self, periodic_interval: int) -> None:
        self.periodic_interval = periodic_interval
        self.devices: dict[str, Device] = {}
        self.sessions: dict[str, Session] = {}
        self.ids = itertools.count(1)
        self.http: aiohttp.ClientSession | None = None

    # -- CWMP ------------------------------------------------------------------------------------

    async def cwmp(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session = self.sessions.get(request.cookies.get(COOKIE, ""))
        if body.strip():
            document: Any = etree.fromstring(body, PARSER)
            message = document.find(f"{{{SOAP_ENV}}}Body")[0]
            namespace = etree.QName(message).namespace or ""
            name = etree.QName(message).localname
            message_id = text_of(document, f"{{{SOAP_ENV}}}Header/{{{namespace}}}ID") or "1"
            if name == "Inform":
                return self.inform(message, namespace, message_id)
            if session is None:
                return web.Response(status=400, text="no session")
            self.settle(session, name, message)
        if session is None:
            return web.Response(status=204)
        return self.next_request(request.cookies[COOKIE], session)

    def inform(self, message: Any, namespace: str, message_id: str) -> web.Response:
        identity = message.find("DeviceId")
        device_id = make_device_id(text_of(identity, "OUI"), text_of(identity, "ProductClass"),
                                   text_of(identity, "SerialNumber"))
        device = self.devices.setdefault(device_id, Device(device_id))
        events = [text_of(event, "EventCode") for event in message.iterfind("Event/EventStruct")]
        for struct in message.iterfind("ParameterList/ParameterValueStruct"):
            name, value = text_of(struct, "Name"), text_of(struct, "Value")
            device.parameters[name] = value
            if name.endswith("ManagementServer.ConnectionRequestURL"):
                device.connection_request_url = value
                device.root = name.partition(".")[0] + "."
        if "M Reboot" in events:
            for struct in message.iterfind("Event/EventStruct"):
                task = device.awaiting_reboot.pop(text_of(struct, "CommandKey"), None)
                if task is not None and not task.done.done():
                    task.done.set_result({"status": "done"})
        cookie = secrets.token_hex(8)
        self.sessions[cookie] = Session(device, namespace, provision="0 BOOTSTRAP" in events)
        reply = envelope(namespace, message_id, "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes>"
                                                "</cwmp:InformResponse>")
        response = web.Response(body=reply, content_type="text/xml", charset="utf-8")
        response.set_cookie(COOKIE, cookie)
        return response

    def settle(self, session: Session, name: str, message: Any) -> None:
        task, session.in_flight = session.in_flight, None
        if task is None:
            return
        if name == "GetParameterValuesResponse":
            values = {text_of(s, "Name"): text_of(s, "Value") for s in message.iterfind("ParameterList/"
                                                                                          "ParameterValueStruct")}
            session.device.parameters.update(values)
            task.done.set_result({"status": "done", "values": values})
        elif name == "RebootResponse":
            session.device.awaiting_reboot[task.task_id] = task
        elif not task.done.done():
            task.done.set_result({"status": "failed", "answer": name})

    def next_request(self, cookie: str, session: Session) -> web.Response:
        device, message_id = session.device, f"b{next(self.ids)}"
        if session.provision and not session.sent_provisioning:
            session.sent_provisioning = True
            management = device.root + "ManagementServer."
            body = set_parameter_values([
                (management + "PeriodicInformEnable", "true", "xsd:boolean"),
                (management + "PeriodicInformInterval", str(self.periodic_interval), "xsd:unsignedInt"),
                (management + "ConnectionRequestUsername", CR_USERNAME, "xsd:string"),
                (management + "ConnectionRequestPassword", CR_PASSWORD, "xsd:string"),
            ], message_id)
        elif device.queue:
            task = session.in_flight = device.queue.popleft()
            body = get_parameter_values(task.names) if task.kind == "get_parameter_values" else reboot(task.task_id)
        else:
            del self.sessions[cookie]
            return web.Response(status=204)
        return web.Response(body=envelope(session.namespace, message_id, body), content_type="text/xml",
                            charset="utf-8")

    # -- API ---------------------------------------------------------------------------------------

    async def create_task(self, request: web.Request) -> web.Response:
        device = self.devices.get(request.match_info["device_id"])
        if device is None:
            raise web.HTTPNotFound()
        order = await request.json()
        task = Task(f"t{next(self.ids)}", order["kind"], list(order.get("names") or []),
                    asyncio.get_running_loop().create_future())
        device.queue.append(task)
        report = None
        if request.query.get("connection_request") == "true":
            report = await self.connection_request(device)
        try:
            result = await asyncio.wait_for(asyncio.shield(task.done), float(request.query.get("wait", "0")))
        except TimeoutError:
            return web.json_response({"id": task.task_id, "status": "pending", "connection_request": report},
                                     status=202)
        return web.json_response({"id": task.task_id, **result, "connection_request": report}, status=201)

    async def connection_request(self, device: Device) -> int:
        assert self.http is not None
        async with self.http.get(device.connection_request_url) as first:
            await first.read()
            if first.status != 401:
                return first.status
            challenge = parse_challenge(first.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return 401
        uri = "/" + device.connection_request_url.split("/", 3)[3]
        header = digest_authorization(challenge, CR_USERNAME, CR_PASSWORD, "GET", uri, secrets.token_hex(8))
        async with self.http.get(device.connection_request_url, headers={"Authorization": header}) as second:
            await second.read()
            return second.status

    async def list_devices(self, request: web.Request) -> web.Response:
        items = [{**CANNED_DEVICE, "device_id": device_id} for device_id in itertools.islice(self.devices, 50)]
        return web.json_response({"items": items or [CANNED_DEVICE], "next_cursor": None})

    async def get_device(self, request: web.Request) -> web.Response:
        return web.json_response({**CANNED_DEVICE, "device_id": request.match_info["device_id"]})

    async def get_parameters(self, request: web.Request) -> web.Response:
        device = self.devices.get(request.match_info["device_id"])
        if device is None:
            return web.json_response(CANNED_PARAMETERS)
        return web.json_response({name: {"value": value} for name, value in device.parameters.items()})

    async def healthz(self, request: web.Request) -> web.Response:
        ids = list(self.devices) if request.query.get("ids") else None
        return web.json_response({"status": "ok", "devices": len(self.devices), "ids": ids})

    def cwmp_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 2**20)
        app.router.add_post("/", self.cwmp)
        return app

    def api_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/v1/devices", self.list_devices)
        app.router.add_get("/api/v1/devices/{device_id}", self.get_device)
        app.router.add_get("/api/v1/devices/{device_id}/parameters", self.get_parameters)
        app.router.add_post("/api/v1/devices/{device_id}/tasks", self.create_task)
        return app


async def serve(args: argparse.Namespace) -> int:
    baseline = Baseline(args.periodic_interval)
    # One connection per connection request, closed after it, as the ACS does.
    baseline.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                          timeout=aiohttp.ClientTimeout(total=10))
    runners = [web.AppRunner(baseline.cwmp_app(), access_log=None), web.AppRunner(baseline.api_app(), access_log=None)]
    for runner, port in zip(runners, (args.cwmp_port, args.api_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"cwmp_port": args.cwmp_port, "api_port": args.api_port}), flush=True)
    await stop.wait()
    for runner in runners:
        with contextlib.suppress(Exception):
            await runner.cleanup()
    await baseline.http.close()
    return 0


async def storm_alone(args: argparse.Namespace) -> int:
    """The floor on its own: a boot storm against the bare handler."""
    from bench import boot_storm, common

    devices, duration = common.sized(args, boot_storm.SIZES)
    with common.work_dir(args, "baseline") as directory:
        baseline = await common.start_baseline(directory)
        try:
            floor = await boot_storm.storm(directory, "baseline-fleet", baseline.cwmp_url, devices,
                                           args.concurrency, duration, {"server": baseline.pid})
        finally:
            await baseline.child.stop()
        rows = [["bootstrap sessions/s", floor["sessions_per_second"]],
                *([f"latency {q} (ms)", floor["latency_ms"].get(q, 0)] for q in ("p50", "p95", "p99")),
                ["failed sessions", floor["failed_sessions"]],
                *([f"{group} CPU (cores) / max RSS (MB)", f"{use['cpu_cores']} / {use['rss_mb_max']}"]
                  for group, use in floor["usage"].items())]
        common.record(args, f"Baseline alone (bare aiohttp + lxml), boot storm of {devices} devices",
                      "none (the baseline keeps everything in memory)",
                      common.table(["figure", "baseline"], rows), {"baseline": floor})
    return 0


def main() -> int:
    from bench import boot_storm, common

    parser = common.parser(__doc__ or "", boot_storm.SIZES)
    parser.add_argument("--serve", action="store_true", help="only run the bare handler (the benchmarks do)")
    parser.add_argument("--cwmp-port", type=int, default=17547)
    parser.add_argument("--api-port", type=int, default=17557)
    parser.add_argument("--periodic-interval", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100, help="sessions the simulator keeps open")
    args = parser.parse_args()
    return asyncio.run(serve(args) if args.serve else storm_alone(args))


if __name__ == "__main__":
    raise SystemExit(main())
