"""A small scriptable CPE for end-to-end tests: real CWMP over real HTTP, a dict for a data model.

It is deliberately simple (the fleet simulator is ``acs sim``): one device, an in-memory
parameter dict, answers for every RPC the ACS sends, and knobs to misbehave on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from cwmp import (
    REQUEST_RESPONSE,
    AddObject,
    AddObjectResponse,
    CwmpVersion,
    DeleteObject,
    DeleteObjectResponse,
    DeviceIdStruct,
    Envelope,
    EventStruct,
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    Inform,
    InformResponse,
    Message,
    ParameterAttribute,
    ParameterInfo,
    ParameterValue,
    Reboot,
    RebootResponse,
    SetParameterValues,
    SetParameterValuesFault,
    SetParameterValuesResponse,
    make_fault,
    parse,
    serialize,
)

Answer = Callable[[Message], Message | None]


@dataclass
class Exchange:
    """What happened in one session, for assertions."""

    statuses: list[int] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)  # cwmp:ID of each ACS request received
    cookies: list[str | None] = field(default_factory=list)
    ended_with: int | None = None


@dataclass
class ScriptedCpe:
    url: str
    oui: str = "00E0FC"
    product_class: str = "HG8245H"
    serial: str = "TEST0001"
    root: str = "InternetGatewayDevice."
    version: CwmpVersion = CwmpVersion.V1_0
    params: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # name -> (value, type, writable)
    parameter_key: str = ""
    rebooted_with: str | None = None  # CommandKey of an accepted Reboot
    next_instance: int = 1
    client_middlewares: tuple[aiohttp.ClientMiddlewareType, ...] = ()  # e.g. digest auth towards the ACS

    def __post_init__(self) -> None:
        base = {
            "DeviceInfo.Manufacturer": ("Test", "xsd:string", False),
            "DeviceInfo.SoftwareVersion": ("V1.0", "xsd:string", False),
            "DeviceInfo.HardwareVersion": ("HW1", "xsd:string", False),
            "DeviceInfo.UpTime": ("42", "xsd:unsignedInt", False),
            "ManagementServer.ConnectionRequestURL": ("http://127.0.0.1:9/cr", "xsd:string", False),
            "ManagementServer.PeriodicInformInterval": ("3600", "xsd:unsignedInt", True),
            "ManagementServer.PeriodicInformEnable": ("true", "xsd:boolean", True),
            "ManagementServer.ConnectionRequestUsername": ("", "xsd:string", True),
            "ManagementServer.ConnectionRequestPassword": ("", "xsd:string", True),
        }
        for name, value in base.items():
            self.params.setdefault(self.root + name, value)

    @property
    def device_id(self) -> str:
        from cwmp import make_device_id

        return make_device_id(self.oui, self.product_class, self.serial)

    def inform(self, events: list[str], command_keys: dict[str, str] | None = None) -> Envelope:
        keys = command_keys or {}
        names = ["DeviceInfo.SoftwareVersion", "DeviceInfo.HardwareVersion", "ManagementServer.ConnectionRequestURL"]
        values = [ParameterValue(name=self.root + n, value=self.params[self.root + n][0]) for n in names]
        values.append(ParameterValue(name=self.root + "ManagementServer.ParameterKey", value=self.parameter_key))
        body = Inform(
            device_id=DeviceIdStruct(
                manufacturer="Test", oui=self.oui, product_class=self.product_class, serial_number=self.serial
            ),
            events=tuple(EventStruct(event_code=e, command_key=keys.get(e, "")) for e in events),
            max_envelopes=1,
            current_time=None,
            retry_count=0,
            parameters=tuple(values),
        )
        supported = "1.0,1.1,1.2,1.3,1.4" if self.version is CwmpVersion.V1_4 else None
        return Envelope(id="inform-1", body=body, version=self.version, supported_cwmp_versions=supported)

    async def run_session(
        self,
        events: list[str],
        *,
        command_keys: dict[str, str] | None = None,
        answer: Answer | None = None,
        new_connection_each_message: bool = False,
        stop_after_requests: int | None = None,
        headers: dict[str, str] | None = None,
        cpe_requests: tuple[Message, ...] = (),
        apply_unanswered: bool = False,
    ) -> Exchange:
        """Inform, empty POST, answer the ACS's requests until 204 (or stop early, vanishing)."""
        exchange = Exchange()
        jar = aiohttp.CookieJar(unsafe=True)  # real CPEs keep cookies for IP-address ACS URLs
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers, middlewares=self.client_middlewares) as http:
            reply = await self._post(
                http, serialize(self.inform(events, command_keys)), exchange, new_connection_each_message
            )
            if exchange.statuses[-1] != 200:
                exchange.ended_with = exchange.statuses[-1]
                return exchange
            assert isinstance(parse(reply).body, InformResponse)
            for number, cpe_request in enumerate(cpe_requests):
                # TR-069 3.7.1.2: the CPE sends its own requests before its empty POST.
                envelope = Envelope(id=f"cpe-{number}", body=cpe_request, version=self.version)
                reply = await self._post(http, serialize(envelope), exchange, new_connection_each_message)
                exchange.received.append(parse(reply).body)
            reply = await self._post(http, b"", exchange, new_connection_each_message)
            handled = 0
            while exchange.statuses[-1] == 200:
                request = parse(reply)
                exchange.received.append(request.body)
                exchange.request_ids.append(request.id or "")
                handled += 1
                if stop_after_requests is not None and handled > stop_after_requests:
                    if apply_unanswered:
                        self.answer(request.body)  # it acted on the request, but the answer is lost
                    return exchange  # the device vanishes with a request unanswered
                body = (answer(request.body) if answer else None) or self.answer(request.body)
                envelope = Envelope(id=request.id, body=body, version=request.version)
                reply = await self._post(http, serialize(envelope), exchange, new_connection_each_message)
            exchange.ended_with = exchange.statuses[-1]
        return exchange

    async def _post(self, http: aiohttp.ClientSession, body: bytes, exchange: Exchange, fresh: bool) -> bytes:
        connector_close = {"Connection": "close"} if fresh else {}
        async with http.post(self.url, data=body, headers={"Content-Type": "text/xml", **connector_close}) as reply:
            exchange.statuses.append(reply.status)
            exchange.cookies.append(reply.cookies.get("acs_session").value if "acs_session" in reply.cookies else None)
            return await reply.read()

    # -- the device's behaviour ----------------------------------------------------------------

    def answer(self, request: Message) -> Message:
        match request:
            case GetParameterValues():
                return self._get_values(request.names)
            case SetParameterValues():
                return self._set_values(request)
            case GetParameterNames():
                return self._get_names(request.parameter_path, request.next_level)
            case AddObject():
                instance = self.next_instance
                self.next_instance += 1
                self.params[f"{request.object_name}{instance}.Enable"] = ("false", "xsd:boolean", True)
                self.parameter_key = request.parameter_key
                return AddObjectResponse(instance_number=instance, status=0)
            case DeleteObject():
                for name in [n for n in self.params if n.startswith(request.object_name)]:
                    del self.params[name]
                self.parameter_key = request.parameter_key
                return DeleteObjectResponse(status=0)
            case Reboot():
                self.rebooted_with = request.command_key
                return RebootResponse()
        return self._default(request)

    def _default(self, request: Message) -> Message:
        """Answers with nothing to remember: the response type with its fields filled plainly."""
        response_type = REQUEST_RESPONSE.get(type(request))
        if response_type is None:
            return make_fault(9000)
        fields: dict[str, object] = {}
        names = set(response_type.model_fields)
        if "methods" in names:
            fields["methods"] = ("GetRPCMethods", "GetParameterValues", "SetParameterValues", "Reboot", "Download")
        if "status" in names:
            fields["status"] = 1  # transfers: reported later by TransferComplete
        if {"start_time", "complete_time"} <= names:
            fields.update(start_time=None, complete_time=None)
        if "parameters" in names:
            names_asked = getattr(request, "names", ())
            fields["parameters"] = tuple(
                ParameterAttribute(name=n, notification=0, access_list=()) for n in names_asked
            )
        if "transfers" in names:
            fields["transfers"] = ()
        return response_type(**fields)

    def _matching(self, name: str) -> list[str]:
        return [n for n in self.params if n == name or (name.endswith(".") and n.startswith(name))]

    def _get_values(self, names: tuple[str, ...]) -> Message:
        found: list[ParameterValue] = []
        for name in names:
            matched = self._matching(name)
            if not matched:
                return make_fault(9005)
            found += [ParameterValue(name=n, value=self.params[n][0], type=self.params[n][1]) for n in matched]
        return GetParameterValuesResponse(parameters=tuple(found))

    def _set_values(self, request: SetParameterValues) -> Message:
        faults = []
        for parameter in request.parameters:
            current = self.params.get(parameter.name)
            if current is None:
                faults.append((parameter.name, 9005))
            elif not current[2]:
                faults.append((parameter.name, 9008))
            elif current[1] == "xsd:unsignedInt" and not parameter.value.isdigit():
                faults.append((parameter.name, 9007))
        if faults:
            fault = make_fault(9003)
            details = tuple(
                SetParameterValuesFault(
                    parameter_name=name, fault_code=code, fault_string=make_fault(code).fault_string
                )
                for name, code in faults
            )
            return Fault(
                fault_code=fault.fault_code, fault_string=fault.fault_string, set_parameter_values_faults=details
            )
        for parameter in request.parameters:
            self.params[parameter.name] = (parameter.value, self.params[parameter.name][1], True)
        self.parameter_key = request.parameter_key
        return SetParameterValuesResponse(status=0)

    def _get_names(self, path: str, next_level: bool) -> Message:
        names = [n for n in self.params if n.startswith(path)]
        if not names:
            return make_fault(9005)
        infos = {n: self.params[n][2] for n in names}
        objects = {n.rsplit(".", 1)[0] + "." for n in names}
        for obj in objects:
            infos.setdefault(obj, True)
        if next_level:
            depth = path.count(".")
            infos = {n: w for n, w in infos.items() if n.rstrip(".").count(".") == depth}
        return GetParameterNamesResponse(
            parameters=tuple(ParameterInfo(name=n, writable=w) for n, w in sorted(infos.items()))
        )
