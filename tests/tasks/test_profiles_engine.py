"""The pure profile engine: aliases, selectors, templates, layering, diff against the cache, plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.profiles import ApplyEvent, ProfileSpec
from schemas.tasks import AddObjectTask, SetParameterValuesTask
from tasks.profiles.aliases import AliasTable, NotMapped
from tasks.profiles.diff import Memory, drift, normalized, table_digest
from tasks.profiles.layering import OVERRIDE, StoredProfile, effective, matching, triggered, wanted_prefixes
from tasks.profiles.plan import plan
from tasks.profiles.selector import DeviceFacts
from tasks.profiles.templates import TemplateContext, Unresolved, render

ALIASES = AliasTable.default()
HUAWEI = DeviceFacts(
    "00259E-HG8245H-4857544300000001",
    "00259E",
    "HG8245H",
    "4857544300000001",
    "V3R017C10S115",
    frozenset({"gold"}),
    "InternetGatewayDevice.",
)
TR181 = DeviceFacts(
    "0C1A2B-HGW%2D181-SIM000000001", "0C1A2B", "HGW-181", "SIM000000001", "2.5.3", frozenset(), "Device."
)
SUBSCRIBER = {
    "account": "A-100",
    "pppoe_login": "a100@isp",
    "pppoe_password": "s3cret",
    "vlan": 10,
    "plan": "gold",
    "voip": [{"number": "5551000", "username": "u1", "password": "p1"}],
}
PPP = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1."


@dataclass(frozen=True)
class Cell:
    value: str | None
    type: str | None = "xsd:string"


def digest(name: str, value: object) -> str:
    return f"{name}={value}"


def stored(spec: dict[str, Any], version: int = 1) -> StoredProfile:
    model = ProfileSpec.model_validate(spec)
    return StoredProfile(model.name, version, model)


def test_one_alias_serves_both_data_models_and_vendor_layouts() -> None:
    assert ALIASES.resolve("wifi.ssid", "Device.").path == "Device.WiFi.SSID.1.SSID"
    assert ALIASES.resolve("wifi.ssid", "InternetGatewayDevice.").path.endswith("WLANConfiguration.1.SSID")
    # Huawei keeps Internet PPPoE on WANConnectionDevice.2 and the VLAN in an X_HW_ field.
    assert ALIASES.resolve("wan.pppoe.username", "InternetGatewayDevice.", "00259E").path == PPP + "Username"
    assert ALIASES.resolve("wan.vlan", "InternetGatewayDevice.", "00259E").path == PPP + "X_HW_VLAN"
    generic = ALIASES.resolve("wan.pppoe.username", "InternetGatewayDevice.", "AAAAAA").path
    assert ".WANConnectionDevice.1." in generic
    with pytest.raises(NotMapped, match="no TR-098 path"):
        ALIASES.resolve("wan.vlan", "InternetGatewayDevice.", "AAAAAA")  # no standard TR-098 VLAN field
    with pytest.raises(NotMapped, match="other data model"):
        ALIASES.resolve("Device.WiFi.SSID.1.SSID", "InternetGatewayDevice.")
    assert ALIASES.resolve("mgmt.periodic_interval", "Device.").type == "xsd:unsignedInt"


def test_every_alias_maps_at_least_one_data_model_with_a_path_under_its_root() -> None:
    for name, entry in ALIASES.aliases.items():
        assert entry.get("tr098") or entry.get("tr181"), name
        assert str(entry.get("tr098", "InternetGatewayDevice.")).startswith("InternetGatewayDevice."), name
        assert str(entry.get("tr181", "Device.")).startswith("Device."), name
        assert name.endswith(".") == str(entry.get("tr098") or entry.get("tr181")).endswith("."), name


def test_selector_by_oui_product_class_version_pattern_tags_and_subscriber() -> None:
    profiles = [
        stored({"name": "huawei", "selector": {"oui": ["00259e"], "software_version": ["V3R017C10S1*"]}}),
        stored({"name": "zte", "selector": {"product_class": ["F660"]}}),
        stored({"name": "gold", "selector": {"tags": ["gold"], "subscriber": {"plan": "gold"}}}),
        stored({"name": "bound", "selector": {"has_subscriber": True}}),
        stored({"name": "off", "enabled": False}),
    ]
    assert [p.name for p in matching(profiles, HUAWEI, SUBSCRIBER)] == ["bound", "gold", "huawei"]
    assert [p.name for p in matching(profiles, HUAWEI, None)] == ["huawei"]
    assert [p.name for p in matching(profiles, TR181, {"plan": "silver"})] == ["bound"]


def test_templates_fill_from_subscriber_device_and_cache() -> None:
    context = TemplateContext(HUAWEI, SUBSCRIBER, {"InternetGatewayDevice.DeviceInfo.ModelName": "HG8245H"})
    assert render("{{ subscriber.vlan }}", context) == 10  # a whole template keeps the type
    assert render("ssid-{{device.serial_number}}", context) == "ssid-4857544300000001"
    assert render("{{ subscriber.voip.1.number }}", context) == "5551000"
    assert render("{{ parameter.InternetGatewayDevice.DeviceInfo.ModelName }}-x", context) == "HG8245H-x"
    with pytest.raises(Unresolved, match="not set"):
        render("{{ subscriber.address }}", context)
    with pytest.raises(Unresolved, match="no subscriber"):
        render("{{ subscriber.pppoe_login }}", TemplateContext(HUAWEI, None, {}))


def test_layers_merge_by_priority_then_device_overrides_with_sources() -> None:
    base = stored({"name": "base", "priority": 10, "parameters": {"wifi.ssid": "isp", "mgmt.periodic_interval": 3600}})
    gold = stored({"name": "gold", "priority": 50, "parameters": {"wifi.ssid": "gold-{{ subscriber.account }}"}}, 3)
    config = effective([gold, base], [("mgmt.periodic_interval", 600)], HUAWEI, SUBSCRIBER, {}, ALIASES)
    ssid = config.parameters["InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"]
    assert (ssid.value, ssid.source.label, ssid.alias) == ("gold-A-100", "gold@3", "wifi.ssid")
    interval = config.parameters["InternetGatewayDevice.ManagementServer.PeriodicInformInterval"]
    assert (interval.value, interval.source.label) == (600, OVERRIDE)
    assert config.profiles == ("base@1", "gold@3")
    assert config.key.startswith("cfg-") and len(config.key) <= 32  # TR-069 ParameterKey is string(32)
    changed = effective([gold, base], [("mgmt.periodic_interval", 900)], HUAWEI, SUBSCRIBER, {}, ALIASES)
    assert changed.key != config.key


def test_unmapped_and_unresolved_settings_are_reported_not_sent() -> None:
    profile = stored(
        {"name": "p", "parameters": {"wan.vlan": "{{ subscriber.vlan }}", "wifi.ssid": "{{ subscriber.address }}"}}
    )
    config = effective([profile], [], HUAWEI, SUBSCRIBER, {}, ALIASES)
    assert config.parameters[PPP + "X_HW_VLAN"].value == 10
    assert [p.name for p in config.problems] == ["wifi.ssid"]
    generic = DeviceFacts("x", "AAAAAA", "X", "1", "1", frozenset(), "InternetGatewayDevice.")
    assert {p.name for p in effective([profile], [], generic, SUBSCRIBER, {}, ALIASES).problems} == {
        "wan.vlan",
        "wifi.ssid",
    }


def test_events_trigger_only_the_profiles_that_ask_for_them() -> None:
    periodic = stored({"name": "p", "events": ["PERIODIC"]})
    assert triggered([periodic], {ApplyEvent.PERIODIC})
    assert not triggered([periodic], {ApplyEvent.BOOTSTRAP})


def test_diff_sends_only_differences_and_normalizes_booleans_and_numbers() -> None:
    profile = stored(
        {
            "name": "p",
            "parameters": {
                "wifi.ssid": "home",
                "mgmt.periodic_enable": True,
                "mgmt.periodic_interval": 300,
                "time.ntp_server": "ntp",
            },
        }
    )
    config = effective([profile], [], TR181, None, {}, ALIASES)
    cache = {
        "Device.WiFi.SSID.1.SSID": Cell("home"),
        "Device.ManagementServer.PeriodicInformEnable": Cell("1", "xsd:boolean"),
        "Device.ManagementServer.PeriodicInformInterval": Cell("0300", "xsd:unsignedInt"),
    }
    result = drift(config, cache, Memory(), digest)
    assert [(c.name, c.actual) for c in result.changes] == [("Device.Time.NTPServer1", None)]
    assert normalized("TRUE", "xsd:boolean") == "true"
    cache["Device.Time.NTPServer1"] = Cell("ntp")
    assert drift(config, cache, Memory(), digest).in_sync


def test_secrets_are_in_sync_only_when_the_device_accepted_this_value() -> None:
    profile = stored({"name": "p", "parameters": {"wan.pppoe.password": "{{ subscriber.pppoe_password }}"}})
    config = effective([profile], [], HUAWEI, SUBSCRIBER, {}, ALIASES)
    cache = {PPP + "Password": Cell("")}  # TR-069 A.3.2.2: a password reads back empty
    assert [c.name for c in drift(config, cache, Memory(), digest).changes] == [PPP + "Password"]
    accepted = Memory(secrets=frozenset({digest(PPP + "Password", "s3cret")}))
    assert drift(config, cache, accepted, digest).in_sync


def test_a_refused_value_is_left_out_until_it_changes() -> None:
    profile = stored({"name": "p", "parameters": {"wifi.ssid": "x" * 40, "wifi.channel": 6}})
    config = effective([profile], [], TR181, None, {}, ALIASES)
    memory = Memory(refused=frozenset({digest("Device.WiFi.SSID.1.SSID", "x" * 40)}))
    result = drift(config, {}, memory, digest)
    assert [c.name for c in result.refused] == ["Device.WiFi.SSID.1.SSID"]
    assert [c.name for c in result.changes] == ["Device.WiFi.Radio.1.Channel"]


def test_objects_unknown_are_read_first_then_planned_to_exactly_n() -> None:
    profile = stored(
        {
            "name": "voip",
            "objects": [
                {
                    "path": "voip.line.",
                    "count": 2,
                    "exact": True,
                    "values": {"number": "{{ subscriber.voip.1.number }}"},
                }
            ],
        }
    )
    config = effective([profile], [], TR181, SUBSCRIBER, {}, ALIASES)
    table = "Device.Services.VoiceService.1.VoiceProfile.1.Line."
    first = plan(drift(config, {}, Memory(), digest))
    assert first.replan and [r.kind for r in first.requests] == ["get_parameter_names"]
    with_values = effective(
        [stored({**profile.spec.model_dump(), "parameters": {"wifi.ssid": "v"}})], [], TR181, SUBSCRIBER, {}, ALIASES
    )
    # The read goes alone: the plain values wait for it, so that an instance it reveals has its
    # values in the same SetParameterValues (one exchange and one task, not two).
    alone = plan(drift(with_values, {}, Memory(), digest))
    assert alone.replan and [r.kind for r in alone.requests] == ["get_parameter_names"]
    after = plan(drift(with_values, {}, Memory(), digest, frozenset({table})))
    # The plain value rides on the first AddObject: set with its instance's values in one
    # SetParameterValues once the instance number is known (an exchange fewer).
    assert not after.replan and [r.kind for r in after.requests] == ["add_object", "add_object"]
    first, second = after.requests
    assert isinstance(first, AddObjectTask) and isinstance(second, AddObjectTask)
    assert [v.name for v in first.other_values or []] == ["Device.WiFi.SSID.1.SSID"] and second.other_values is None
    empty = drift(config, {}, Memory(), digest, frozenset({table}))  # read, and no instance listed
    assert [r.kind for r in plan(empty).requests] == ["add_object", "add_object"]
    missing = Memory(refused=frozenset({table_digest(table, digest)}))  # the device has no such table
    assert (
        drift(config, {}, missing, digest).missing == [table]
        and plan(drift(config, {}, missing, digest)).requests == []
    )
    cache = {
        table: Cell(None, "object"),
        f"{table}1.": Cell(None, "object"),
        f"{table}1.DirectoryNumber": Cell("5551000"),
        f"{table}4.DirectoryNumber": Cell("old"),
        f"{table}7.DirectoryNumber": Cell("old"),
    }
    result = drift(config, cache, Memory(), digest)
    assert result.deletes == [f"{table}7."]
    assert [c.name for c in result.changes] == [f"{table}4.DirectoryNumber"]
    steps = plan(result).requests
    assert [r.kind for r in steps] == ["delete_object", "set_parameter_values"]
    fewer = {table: Cell(None, "object")}
    adds = plan(drift(config, fewer, Memory(), digest)).requests
    assert [r.kind for r in adds] == ["add_object", "add_object"]
    assert isinstance(adds[0], AddObjectTask) and adds[0].values
    assert adds[0].values[0].name == "DirectoryNumber"


def test_plan_is_one_set_parameter_values_for_every_plain_difference() -> None:
    values = {
        "wifi.ssid": "a",
        "wifi.channel": 6,
        "mgmt.periodic_interval": 60,
        "time.ntp_server": "n",
        "wan.pppoe.username": "u",
        "wan.pppoe.password": "p",
        "wifi.enable": True,
    }
    config = effective(
        [stored({"name": "p", "parameters": values, "watch": {"wifi.ssid": "active"}})], [], TR181, None, {}, ALIASES
    )
    requests = plan(drift(config, {}, Memory(), digest)).requests
    assert [r.kind for r in requests] == ["set_parameter_values", "set_parameter_attributes"]
    assert isinstance(requests[0], SetParameterValuesTask) and len(requests[0].values) == 7
    watched = Memory(watch_key=drift(config, {}, Memory(), digest).watch_key)
    assert [r.kind for r in plan(drift(config, {}, watched, digest)).requests] == ["set_parameter_values"]


def test_a_value_that_cannot_fit_its_type_is_reported_not_sent() -> None:
    config = effective(
        [stored({"name": "p", "parameters": {"mgmt.periodic_interval": "{{ subscriber.plan }}"}})],
        [],
        TR181,
        SUBSCRIBER,
        {},
        ALIASES,
    )
    result = plan(drift(config, {}, Memory(), digest))
    assert result.requests == [] and result.invalid[0][0] == "Device.ManagementServer.PeriodicInformInterval"


def test_wanted_prefixes_cover_values_tables_and_template_references() -> None:
    profile = stored(
        {
            "name": "p",
            "parameters": {"wifi.ssid": "{{ parameter.Device.DeviceInfo.ModelName }}"},
            "objects": [{"path": "voip.line."}],
        }
    )
    assert wanted_prefixes([profile], [], TR181, ALIASES) == [
        "Device.DeviceInfo.ModelName",
        "Device.Services.VoiceService.1.VoiceProfile.1.Line.",
        "Device.WiFi.SSID.1.SSID",
    ]


def test_profile_spec_refuses_bad_input_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="profile name"):
        ProfileSpec.model_validate({"name": "Bad Name"})
    with pytest.raises(ValidationError, match="object table"):
        ProfileSpec.model_validate({"name": "p", "objects": [{"path": "Device.X"}]})
    with pytest.raises(ValidationError, match="unknown subscriber field"):
        ProfileSpec.model_validate({"name": "p", "selector": {"subscriber": {"colour": "red"}}})


TWO_LINES = {
    **SUBSCRIBER,
    "voip": [
        {"number": "5551000", "username": "u1", "password": "p1"},
        {"number": "5551001", "username": "u2", "password": "p2"},
    ],
}
VOIP_LINES = {
    "name": "voip",
    "objects": [
        {
            "path": "voip.line.",
            "count": 2,
            "exact": True,
            "values": {
                "enable": "Enabled",
                "number": "{{ subscriber.voip.#.number }}",
                "password": "{{ subscriber.voip.#.password }}",
            },
        }
    ],
}


def test_each_object_instance_takes_its_own_subscriber_line_by_ordinal() -> None:
    config = effective([stored(VOIP_LINES)], [], TR181, TWO_LINES, {}, ALIASES)
    table = "Device.Services.VoiceService.1.VoiceProfile.1.Line."
    adds = plan(drift(config, {table: Cell(None, "object")}, Memory(), digest)).requests
    assert [r.kind for r in adds] == ["add_object", "add_object"]
    sent = [{v.name: v.value for v in r.values or ()} for r in adds if isinstance(r, AddObjectTask)]
    assert sent == [
        {"Enable": "Enabled", "DirectoryNumber": "5551000", "SIP.AuthPassword": "p1"},
        {"Enable": "Enabled", "DirectoryNumber": "5551001", "SIP.AuthPassword": "p2"},
    ]
    # Instances 3 and 8 are the first and second lines: each is compared with its own number.
    cache = {
        f"{table}3.DirectoryNumber": Cell("5551000"),
        f"{table}3.Enable": Cell("Enabled"),
        f"{table}8.DirectoryNumber": Cell("5551000"),
        f"{table}8.Enable": Cell("Enabled"),
    }
    changes = drift(config, cache, Memory(), digest).changes
    assert [(c.name, c.desired.value) for c in changes if not c.name.endswith("Password")] == [
        (f"{table}8.DirectoryNumber", "5551001")
    ]
    assert (
        config.key
        != effective([stored(VOIP_LINES)], [], TR181, SUBSCRIBER | {"voip": TWO_LINES["voip"][::-1]}, {}, ALIASES).key
    )


def test_an_instance_without_its_subscriber_line_is_reported_and_the_shared_values_still_apply() -> None:
    config = effective([stored(VOIP_LINES)], [], TR181, SUBSCRIBER, {}, ALIASES)  # one line on record
    assert [p.name for p in config.problems] == ["voip.line.2.number", "voip.line.2.password"]
    second = config.objects["Device.Services.VoiceService.1.VoiceProfile.1.Line."].values_of(2)
    assert {name: d.value for name, d in second.items()} == {"Enable": "Enabled"}


def test_the_ordinal_is_refused_outside_an_objects_values() -> None:
    with pytest.raises(ValidationError, match="only for an object's values"):
        ProfileSpec.model_validate({"name": "p", "parameters": {"wifi.ssid": "{{ subscriber.voip.#.number }}"}})
    context = TemplateContext(TR181, TWO_LINES, {})
    with pytest.raises(Unresolved, match="ordinal"):
        render("{{ subscriber.voip.#.number }}", context)
    assert render("{{ subscriber.voip.#.number }}", TemplateContext(TR181, TWO_LINES, {}, 2)) == "5551001"
