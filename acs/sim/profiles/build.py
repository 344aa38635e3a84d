"""Build the simulator's vendor profiles (JSON) from the BBF data models and a real Huawei dump.

    python -m acs.sim.profiles.build [--shared ../shared] [--out acs/sim/profiles]

Parameter names, types, writability and value constraints come from TR-098 1.8 / TR-181 2.17 (the
"full" XMLs); Huawei X_HUAWEI_ vendor parameters come from a real BM632w parameter dump
(samples/huawei-bm632w-datamodel.csv); the VoIP service (TR-104 VoiceService:1, not among the shared
XMLs) is written out in `specs.py`. The optical / OLT parameters of the GPON profiles follow the
names those vendors' ONTs use (see `specs.py`); their units are stated in each profile's `roles`.
Output is deterministic, so a rebuild without input changes gives identical files.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from dataclasses import replace
from pathlib import Path

from acs.sim.profiles import specs
from acs.sim.profiles.datamodel import ObjectDef, ParamDef, load

HERE = Path(__file__).resolve().parent
INDEX = re.compile(r"\.\d+(?=\.|$)")
# Enumeration values a live device is usually in, preferred over the first listed value.
PREFERRED_ENUM = ("None", "Connected", "Up", "Enabled", "IP_Routed")
MAX_ENUM = 40


def generic(name: str) -> str:
    return INDEX.sub(".{i}", name)


def parent_generic(obj: str) -> str:
    trimmed = obj[: -len("{i}.")] if obj.endswith(".{i}.") else obj
    return trimmed[: trimmed.rstrip(".").rfind(".") + 1]


def default_value(param: ParamDef) -> str:
    if param.enumeration:
        preferred = [v for v in PREFERRED_ENUM if v in param.enumeration]
        return preferred[0] if preferred else param.enumeration[0]
    if param.type == "boolean":
        return "true" if param.name.endswith("Enable") else "false"
    if param.type in {"int", "unsignedInt", "long", "unsignedLong"}:
        low = param.minimum if param.minimum is not None and param.minimum > 0 else 0
        return str(low if param.maximum is None else min(low, param.maximum))
    if param.type == "dateTime":
        return "0001-01-01T00:00:00Z"
    return ""


def param_entry(param: ParamDef, default: str) -> list[object]:
    constraints: dict[str, object] = {}
    if param.enumeration and len(param.enumeration) <= MAX_ENUM:
        constraints["enum"] = list(param.enumeration)
    for key, value in (("min", param.minimum), ("max", param.maximum), ("len", param.max_length)):
        if value is not None:
            constraints[key] = value
    if param.is_list:
        constraints["list"] = True
    entry: list[object] = [param.type, int(param.writable), default]
    return [*entry, constraints] if constraints else entry


class ProfileBuilder:
    """Expands one profile spec into concrete object instances and parameter values."""

    def __init__(self, spec: specs.ProfileSpec, model: dict[str, ObjectDef]) -> None:
        self.spec = spec
        self.model = model
        self.objects: dict[str, bool] = {}  # generic object -> writable
        self.params: dict[str, ParamDef] = {}
        self.concrete: list[str] = []  # concrete object paths, in creation order
        self.vendor_values: dict[str, str] = {}

    def expand(self) -> None:
        for selected, count in self.spec.selection:
            self._select(selected, count)
        for vendor in self.spec.vendor_objects:
            self._add_vendor_object(vendor)
        for vendor_param, default in self.spec.vendor_params:
            self._add_vendor_param(vendor_param, default)

    def _select(self, selected: str, count: int) -> None:
        obj = self.model[generic(selected)]
        self.objects[obj.name] = obj.writable
        self.params.update(obj.params)
        parent = parent_generic(selected)
        if not parent:
            self.concrete.append(selected)
            return
        pattern = re.compile(re.escape(parent).replace(r"\{i\}", r"\d+") + "$")
        child = selected[len(parent) :]
        for instance in [c for c in self.concrete if pattern.match(c)]:
            if not obj.multi_instance:
                self.concrete.append(instance + child)
                continue
            table = instance + child.removesuffix("{i}.")
            self.concrete.append(table)
            self.concrete.extend(f"{table}{n}." for n in range(1, count + 1))

    def _add_vendor_object(self, vendor: specs.VendorObject) -> None:
        gen = generic(vendor.name)
        self.objects[gen if not vendor.multi else gen + "{i}."] = vendor.writable
        if not vendor.in_new_instances and vendor.name not in self.concrete:
            self.concrete.append(vendor.name)

    def _add_vendor_param(self, param: ParamDef, default: str) -> None:
        name = generic(param.name)
        self.params[name] = replace(param, name=name)
        self.vendor_values[name] = default

    def add_dump(self, rows: list[dict[str, str]]) -> None:
        """Vendor parameters from a real dump, attached wherever their parent object exists here."""
        for row in rows:
            name = row["Parameter"]
            if "X_HUAWEI_" not in name or not name.startswith(self.spec.root):
                continue
            if row["Object"] == "true":
                self._add_dump_object(name, row["Writable"] == "true")
            else:
                param = ParamDef(
                    generic(name), row["Value type"].removeprefix("xsd:") or "string", row["Writable"] == "true"
                )
                if param.name not in self.params and self._generic_parent_known(param.name):
                    self._add_vendor_param(param, row["Value"])

    def _add_dump_object(self, name: str, writable: bool) -> None:
        parent = name[: name.rfind(".") + 1]
        if parent not in self.concrete:
            return
        last = name.rsplit(".", 1)[1]
        if last.isdigit():
            self.objects[generic(parent) + "{i}."] = writable
        else:
            self.objects.setdefault(generic(name) + ".", False)
        self.concrete.append(name + ".")

    def _generic_parent_known(self, generic_param: str) -> bool:
        parent = generic_param[: generic_param.rfind(".") + 1]
        return any(generic(c) == parent for c in self.concrete)

    def tree(self) -> list[list[str]]:
        """Concrete names in order: objects, then their parameters, with non-default values."""
        params_by_parent: dict[str, list[str]] = {}
        for name in self.params:
            params_by_parent.setdefault(name[: name.rfind(".") + 1], []).append(name)
        rows: list[list[str]] = []
        for obj in sorted(set(self.concrete), key=_natural):
            rows.append([obj])
            for gen_param in params_by_parent.get(generic(obj), []):
                concrete = obj + gen_param.rsplit(".", 1)[1]
                value = self._value(concrete, gen_param)
                rows.append([concrete] if value == self._default(gen_param) else [concrete, value])
        return rows

    def _default(self, gen_param: str) -> str:
        if gen_param in self.spec.values:
            return self.spec.values[gen_param]
        if gen_param in self.vendor_values:
            return self.vendor_values[gen_param]
        return default_value(self.params[gen_param])

    def _value(self, concrete: str, gen_param: str) -> str:
        return self.spec.values.get(concrete, self._default(gen_param))

    def entry_counts(self, names: set[str]) -> dict[str, str]:
        """`...NumberOfEntries` parameters follow the live instance count of their table."""
        tables = {c for c in names if c.endswith(".") and generic(c) + "{i}." in self.objects}
        counts: dict[str, str] = {}
        for name in sorted(n for n in names if n.endswith("NumberOfEntries")):
            obj, stem = name[: name.rfind(".") + 1], name.rsplit(".", 1)[1].removesuffix("NumberOfEntries")
            for table in sorted(tables):
                short = table[len(obj) :].rstrip(".")
                if table.startswith(obj) and "." not in short and (short.startswith(stem) or stem.endswith(short)):
                    counts[name] = "count:" + table
                    break
        return counts

    def document(self) -> dict[str, object]:
        names = {row[0] for row in self.tree()}
        missing = [n for n in [*self.spec.dynamic, *self.spec.inform_parameters] if n not in names]
        assert not missing, f"{self.spec.name}: names not in the tree: {missing}"
        generic_names = {generic(n) for n in names}
        unknown = [n for n in self.spec.values if n not in names and generic(n) not in generic_names]
        assert not unknown, f"{self.spec.name}: values for unknown parameters: {unknown}"
        return {
            "name": self.spec.name,
            "description": self.spec.description,
            "data_model": self.spec.data_model,
            "root": self.spec.root,
            "identity": self.spec.identity,
            "roles": self.spec.roles,
            "objects": {k: int(self.objects[k]) for k in sorted(self.objects, key=_natural)},
            "parameters": {k: param_entry(self.params[k], self._default(k)) for k in sorted(self.params, key=_natural)},
            "tree": self.tree(),
            "dynamic": {**self.entry_counts(names), **self.spec.dynamic},
            "inform_parameters": list(self.spec.inform_parameters),
            "diagnostics": self.spec.diagnostics,
        }


def _natural(name: str) -> list[tuple[int, int | str]]:
    # An object's own name ("A.B.", trailing empty part) sorts before everything below it.
    return [(0, int(part)) if part.isdigit() else (1, part) if part else (-1, "") for part in name.split(".")]


def build(shared: Path, out: Path) -> list[Path]:
    models = {
        "tr-098": load(shared / "bbf" / "tr-098-1-8-0-full.xml"),
        "tr-181": load(shared / "bbf" / "tr-181-2-17-0-cwmp-full.xml"),
    }
    with (shared / "samples" / "huawei-bm632w-datamodel.csv").open(newline="", encoding="utf-8") as handle:
        huawei_dump = list(csv.DictReader(handle))
    written = []
    for spec in specs.PROFILES:
        builder = ProfileBuilder(spec, models[spec.model_key])
        builder.expand()
        if spec.use_huawei_dump:
            builder.add_dump(huawei_dump)
        path = out / f"{spec.name}.json"
        path.write_text(json.dumps(builder.document(), separators=(",", ":")) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=HERE.parents[3] / "shared")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for path in build(args.shared, args.out):
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
