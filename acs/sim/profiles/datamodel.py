"""Read a Broadband Forum "full" data model XML (TR-098, TR-181) into plain definitions.

Used only by `build.py` at profile build time; the simulator itself loads the generated JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

# Syntax elements that are CWMP wire types (TR-069 A.2.1 / TR-106 3.2).
WIRE_TYPES = frozenset(
    {"string", "int", "unsignedInt", "long", "unsignedLong", "boolean", "dateTime", "base64", "hexBinary", "decimal"}
)
SKIPPED_STATUS = frozenset({"deleted", "obsoleted"})


@dataclass(frozen=True)
class ParamDef:
    name: str  # generic, e.g. "InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.IPAddress"
    type: str  # "unsignedInt", "string", ... without the "xsd:" prefix
    writable: bool
    enumeration: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    is_list: bool = False


@dataclass
class ObjectDef:
    name: str  # generic, ends with "." (multi-instance tables end with ".{i}.")
    writable: bool  # access="readWrite": AddObject / DeleteObject allowed
    params: dict[str, ParamDef] = field(default_factory=dict)

    @property
    def multi_instance(self) -> bool:
        return self.name.endswith(".{i}.")


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _data_types(root: etree._Element) -> dict[str, str]:
    """Named data types (IPAddress, Dbm1000, StatsCounter64...) resolved to their wire type."""
    direct: dict[str, str] = {}
    bases: dict[str, str] = {}
    for element in root.iter("{*}dataType"):
        name = element.get("name")
        if name is None:
            continue
        if element.get("base"):
            bases[name] = element.get("base", "")
        for child in element:
            if isinstance(child.tag, str) and _local(child) in WIRE_TYPES:
                direct[name] = _local(child)
    resolved = dict(direct)
    for name in bases:
        seen, current = set(), name
        while current not in direct and current in bases and current not in seen:
            seen.add(current)
            current = bases[current]
        resolved[name] = direct.get(current, "string")
    return resolved


def _int_attr(element: etree._Element | None, attr: str) -> int | None:
    if element is None or element.get(attr) is None:
        return None
    try:
        return int(element.get(attr, ""))
    except ValueError:
        return None


def _param(obj_name: str, element: etree._Element, data_types: dict[str, str]) -> ParamDef | None:
    syntax = element.find("{*}syntax")
    if syntax is None:
        return None
    wire_type, constraint, is_list = "string", None, False
    for child in syntax:
        if not isinstance(child.tag, str):
            continue
        local = _local(child)
        if local == "list":
            is_list = True
        elif local in WIRE_TYPES:
            wire_type, constraint = local, child
        elif local == "dataType":
            wire_type, constraint = data_types.get(child.get("ref", ""), "string"), child
    enumeration: tuple[str, ...] = ()
    if constraint is not None and not is_list:
        enumeration = tuple(e.get("value", "") for e in constraint.findall("{*}enumeration"))
    range_element = constraint.find("{*}range") if constraint is not None else None
    size_element = constraint.find("{*}size") if constraint is not None else None
    return ParamDef(
        name=obj_name + element.get("name", ""),
        type=wire_type,
        writable=element.get("access") == "readWrite",
        enumeration=enumeration,
        minimum=_int_attr(range_element, "minInclusive"),
        maximum=_int_attr(range_element, "maxInclusive"),
        max_length=_int_attr(size_element, "maxLength"),
        is_list=is_list,
    )


def load(path: Path) -> dict[str, ObjectDef]:
    """All objects of the model's root, by generic name, with their parameters."""
    root = etree.parse(str(path)).getroot()
    data_types = _data_types(root)
    objects: dict[str, ObjectDef] = {}
    model = root.find("{*}model")
    assert model is not None, f"no <model> in {path}"
    for element in model.iter("{*}object"):
        if element.get("status") in SKIPPED_STATUS:
            continue
        name = element.get("name", "")
        obj = ObjectDef(name=name, writable=element.get("access") == "readWrite")
        for child in element.findall("{*}parameter"):
            if child.get("status") in SKIPPED_STATUS:
                continue
            param = _param(name, child, data_types)
            if param is not None:
                obj.params[param.name] = param
        objects[name] = obj
    return objects
