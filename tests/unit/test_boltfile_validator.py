"""One test per rule family of Bolt's Boltfile rules (docs/boltfile-rules.md).

Each test validates a minimal Boltfile and asserts severity, line, column and key of
every diagnostic. Columns are 1-based and point at the value (or array element) at
fault, or at the key / table header for missing and unknown keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from ghostpanel_kernel._exceptions import BoltfileError
from ghostpanel_kernel.bolt import BOLTFILE_SCHEMA, Boltfile, Diagnostic, validate, validate_file
from ghostpanel_kernel.bolt._validator import declared_keys

Found = list[tuple[str, int, int, str]]


def found(text: str) -> Found:
    return [(d.severity, d.line, d.column, d.key) for d in validate(Boltfile.loads(text))]


def diagnostics(text: str) -> list[Diagnostic]:
    return validate(Boltfile.loads(text))


HEAD = 'project = "demo"\n'


def test_a_minimal_boltfile_is_valid() -> None:
    assert found(HEAD + '[services.web]\nimage = "nginx"\n') == []


# -- project ------------------------------------------------------------------------


def test_project_missing_is_an_error_at_the_top() -> None:
    assert found('[services.web]\nimage = "nginx"\n') == [("error", 1, 1, "project")]


@pytest.mark.parametrize("name", ['""', '"my app"'])
def test_project_empty_or_with_spaces(name: str) -> None:
    assert found(f'project = {name}\n[services.web]\nimage = "x"\n') == [
        ("error", 1, 11, "project")]


def test_project_as_a_table_is_a_type_error_with_the_fix() -> None:
    (d,) = diagnostics('[project]\nname = "shop"\n\n[services.web]\nimage = "x"\n')
    assert (d.severity, d.line, d.column, d.key) == ("error", 1, 1, "project")
    assert 'project = "shop"' in d.hint


# -- services -----------------------------------------------------------------------


def test_services_missing_empty_and_badly_named() -> None:
    assert found(HEAD) == [("error", 1, 1, "services")]
    assert found(HEAD + "[services]\n") == [("error", 2, 1, "services")]
    assert found(HEAD + '[services."my web"]\nimage = "x"\n') == [
        ("error", 2, 1, 'services."my web"')]


def test_exactly_one_of_image_build_capsule() -> None:
    text = HEAD + ('[services.web]\nports = ["80:80"]\n'
                   '[services.api]\nimage = "x"\nbuild = "./api"\ncapsule = "c"\n')
    assert found(text) == [
        ("error", 2, 1, "services.web"),
        ("error", 6, 1, "services.api.build"),
        ("error", 7, 1, "services.api.capsule"),
    ]


def test_a_service_in_an_inline_table_and_dotted_keys_are_placed() -> None:
    text = HEAD + '[services]\nweb = { image = "x", build = "y" }\napi.image = 5\n'
    assert found(text) == [
        ("error", 3, 22, "services.web.build"),
        ("error", 4, 13, "services.api.image"),
    ]


# -- ports --------------------------------------------------------------------------


def test_port_syntax_and_ranges() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\n'
                   'ports = ["127.0.0.1:80:80", "8000-8010:8000", "0", "70000:80", "http", '
                   '"8080:80", "53/sctp"]\n')
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("error", 4, 10, "services.web.ports"),
        ("error", 4, 29, "services.web.ports"),
        ("error", 4, 47, "services.web.ports"),
        ("error", 4, 52, "services.web.ports"),
        ("error", 4, 64, "services.web.ports"),
        ("error", 4, 83, "services.web.ports"),
    ]
    reasons = ["host IP", "range", "out of range", "out of range", "not a number", "protocol"]
    for d, reason in zip(result, reasons, strict=True):
        assert reason in d.message, d.message


def test_udp_ports_are_a_ghostpanel_warning() -> None:
    (d,) = diagnostics(HEAD + '[services.dns]\nimage = "x"\nports = ["53:53", "53:53/udp"]\n')
    assert (d.severity, d.line, d.column, d.key) == ("warning", 4, 19, "services.dns.ports")
    assert "Bolt refuses" in d.message and '"53:53"' in d.hint


def test_host_ports_are_unique_across_services() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\nports = ["8080:80"]\n'
                   '[services.api]\nimage = "y"\nports = ["9000:9000", "8080:8080"]\n')
    (d,) = diagnostics(text)
    assert (d.severity, d.line, d.column, d.key) == ("error", 7, 23, "services.api.ports")
    assert "service `web`" in d.message


def test_a_host_port_twice_in_one_service_is_also_refused() -> None:
    assert found(HEAD + '[services.web]\nimage = "x"\nports = ["80:80", "80"]\n') == [
        ("error", 4, 19, "services.web.ports")]


# -- volumes ------------------------------------------------------------------------


def test_volume_syntax() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\n'
                   'volumes = ["a:b:c:d", ":/data", "/src:", "./x:/y:ro,delegated", "/anon"]\n')
    assert found(text) == [
        ("error", 4, 12, "services.web.volumes"),
        ("error", 4, 23, "services.web.volumes"),
        ("error", 4, 33, "services.web.volumes"),
        ("warning", 4, 42, "services.web.volumes"),
    ]


def test_volumes_as_a_table_gets_the_list_it_should_be() -> None:
    (d,) = diagnostics(HEAD + '[services.web]\nimage = "x"\n[services.web.volumes]\n'
                              'data = "/data:ro"\n')
    assert (d.severity, d.line, d.column, d.key) == ("error", 4, 1, "services.web.volumes")
    assert 'volumes = ["data:/data:ro"]' in d.hint


# -- depends_on ---------------------------------------------------------------------


def test_depends_on_targets_and_cycles() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\ndepends_on = ["api", "db"]\n'
                   '[services.api]\nimage = "y"\ndepends_on = ["web"]\n'
                   '[services.solo]\nimage = "z"\ndepends_on = ["solo"]\n')
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("error", 4, 22, "services.web.depends_on"),
        ("error", 7, 15, "services.api.depends_on"),
        ("error", 10, 15, "services.solo.depends_on"),
    ]
    assert "`db`" in result[0].message
    assert "web -> api -> web" in result[1].message
    assert "solo -> solo" in result[2].message


def test_a_longer_cycle_is_reported_once() -> None:
    text = HEAD + ''.join(f'[services.{a}]\nimage = "x"\ndepends_on = ["{b}"]\n'
                          for a, b in (("a", "b"), ("b", "c"), ("c", "a")))
    assert found(text) == [("error", 10, 15, "services.c.depends_on")]


# -- typed keys ---------------------------------------------------------------------


def test_string_to_string_tables() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\nenvironment = { PORT = 8080, MODE = "prod" }\n'
                   '[services.web.labels]\ntier = 1\n')
    assert found(text) == [
        ("error", 4, 24, "services.web.environment.PORT"),
        ("error", 6, 8, "services.web.labels.tier"),
    ]


def test_list_of_string_keys() -> None:
    text = HEAD + '[services.web]\nimage = "x"\ncommand = "nginx -g"\ndns = ["1.1.1.1", 8]\n'
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("error", 4, 11, "services.web.command"),
        ("error", 5, 19, "services.web.dns"),
    ]
    assert result[0].hint == 'Make it a list: command = ["nginx -g"].'


def test_string_and_bool_keys() -> None:
    text = HEAD + '[services.web]\nimage = "x"\ncpu_limit = 2\nprivileged = "true"\n'
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("error", 4, 13, "services.web.cpu_limit"),
        ("error", 5, 14, "services.web.privileged"),
    ]
    assert result[0].hint == 'Quote it: cpu_limit = "2".'
    assert result[1].hint == "Write privileged = true without quotes."


def test_storage_auth_logging_healthcheck_required_keys() -> None:
    text = HEAD + ('[services.db]\ncapsule = "postgres"\n'
                   '[services.db.storage]\ndriver = "local"\n'
                   '[services.db.auth]\nuser = "demo"\n'
                   '[services.db.logging]\ndriver = "json-file"\n'
                   '[services.db.healthcheck]\ninterval = "30s"\n')
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("error", 4, 1, "services.db.storage"),
        ("error", 6, 1, "services.db.auth"),
        ("error", 8, 1, "services.db.logging"),
        ("error", 10, 1, "services.db.healthcheck"),
    ]
    assert "`size`" in result[0].message and 'size = "5Gi"' in result[0].hint
    assert "`password`" in result[1].message
    assert "`options`" in result[2].message
    assert "`test`, `disable`" in result[3].message


@pytest.mark.parametrize(("size", "ok"), [
    ("5Gi", True), ("500Mi", True), ("1.5G", True), ("10K", True),
    ("5GB", False), ("Gi", False), ("lots", False),
])
def test_storage_size_format(size: str, ok: bool) -> None:
    text = HEAD + f'[services.db]\ncapsule = "pg"\nstorage = {{ size = "{size}" }}\n'
    assert found(text) == ([] if ok else [("error", 4, 20, "services.db.storage.size")])


# -- gaming -------------------------------------------------------------------------

SWITCHES = ("enabled = true\ngpu_passthrough = true\nnvidia_runtime = true\n"
            "amd_runtime = false\naudio_passthrough = true\nreal_time_priority = false\n")


def test_gaming_needs_its_six_switches() -> None:
    text = HEAD + ('[services.game]\nimage = "x"\n[services.game.gaming.audio]\n'
                   'system = "pipewire"\n')
    (d,) = diagnostics(text)
    assert (d.severity, d.line, d.column, d.key) == ("error", 4, 16, "services.game.gaming")
    for switch in ("enabled", "gpu_passthrough", "nvidia_runtime", "amd_runtime",
                   "audio_passthrough", "real_time_priority"):
        assert f"`{switch}`" in d.message


def test_gaming_nested_constraints() -> None:
    text = HEAD + ('[services.game]\nimage = "x"\n[services.game.gaming]\n' + SWITCHES
                   + '[services.game.gaming.gpu.nvidia]\ndevice = 9\npower_limit = 151\n'
                   'memory_clock_offset = -2001\ncore_clock_offset = 1000\n'
                   '[services.game.gaming.gpu.nvbind]\ndevices = ["gpu:0", "gpu:*"]\n'
                   '[services.game.gaming.audio]\nsystem = "alsa"\n'
                   '[services.game.gaming.performance]\nnice_level = -21\nrt_priority = 100\n')
    assert found(text) == [
        ("warning", 12, 10, "services.game.gaming.gpu.nvidia.device"),
        ("error", 13, 15, "services.game.gaming.gpu.nvidia.power_limit"),
        ("error", 14, 23, "services.game.gaming.gpu.nvidia.memory_clock_offset"),
        ("warning", 17, 21, "services.game.gaming.gpu.nvbind.devices"),
        ("error", 19, 10, "services.game.gaming.audio.system"),
        ("error", 21, 14, "services.game.gaming.performance.nice_level"),
        ("error", 22, 15, "services.game.gaming.performance.rt_priority"),
    ]


def test_unsigned_keys_refuse_negative_numbers() -> None:
    text = HEAD + ('[services.game]\nimage = "x"\n[services.game.gaming]\n' + SWITCHES
                   + '[services.game.gaming.gpu.amd]\ndevice = -1\nrocm = true\n')
    assert found(text) == [("error", 12, 10, "services.game.gaming.gpu.amd.device")]


# -- networks and volumes -----------------------------------------------------------


def test_networks_driver_and_cidr_subnets() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\nnetworks = ["front", "elsewhere"]\n'
                   '[networks.front]\nsubnet = "10.0.0.0/16"\n'
                   '[[networks.front.ipam.config]]\nsubnet = "10.1.0.0"\n'
                   '[[networks.front.ipam.config]]\nsubnet = "10.2.0.1/16"\n'
                   '[[networks.front.ipam.config]]\nsubnet = "banana/16"\n')
    assert found(text) == [
        ("warning", 4, 22, "services.web.networks"),
        ("error", 5, 1, "networks.front"),
        ("warning", 6, 1, "networks.front.subnet"),
        ("error", 8, 10, "networks.front.ipam.config[0].subnet"),
        ("warning", 10, 10, "networks.front.ipam.config[1].subnet"),
        ("warning", 12, 10, "networks.front.ipam.config[2].subnet"),
    ]


def test_named_volumes() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\n[volumes.data]\ndriver = "zfs"\nsize = "10Gi"\n'
                   '[volumes.nfsdata]\ndriver = "nfs"\nexternal = "yes"\n')
    assert found(text) == [
        ("warning", 5, 10, "volumes.data.driver"),
        ("warning", 6, 1, "volumes.data.size"),
        ("error", 9, 12, "volumes.nfsdata.external"),
    ]


# -- snapshots ----------------------------------------------------------------------


def test_snapshots_retention_triggers_and_named_snapshots() -> None:
    text = HEAD + ('[services.web]\nimage = "x"\n'
                   '[snapshots]\nenabled = true\nfilesystem = "ext4"\n'
                   '[snapshots.retention]\nkeep_daily = -1\ncleanup_frequency = "hourly"\n'
                   '[snapshots.triggers]\ndaily = "2am"\nweekly = "sunday@03:00"\n'
                   'monthly = "32@04:00"\n'
                   '[[snapshots.named_snapshots]]\nname = "stable"\n'
                   '[[snapshots.named_snapshots]]\ndescription = "no name"\n'
                   '[[snapshots.named_snapshots]]\nname = "stable"\n')
    assert found(text) == [
        ("warning", 6, 14, "snapshots.filesystem"),
        ("error", 8, 14, "snapshots.retention.keep_daily"),
        ("warning", 9, 21, "snapshots.retention.cleanup_frequency"),
        ("warning", 11, 9, "snapshots.triggers.daily"),
        ("warning", 13, 11, "snapshots.triggers.monthly"),
        ("error", 16, 1, "snapshots.named_snapshots[1]"),
        ("warning", 19, 8, "snapshots.named_snapshots[2].name"),
    ]


@pytest.mark.parametrize(("key", "value"), [
    ("daily", "02:00"), ("daily", "23:59"), ("weekly", "sunday@03:00"),
    ("weekly", "Friday@00:30"), ("monthly", "1@04:00"), ("monthly", "31@12:00"),
])
def test_snapshot_times_in_bolts_formats_pass(key: str, value: str) -> None:
    text = HEAD + f'[services.web]\nimage = "x"\n[snapshots.triggers]\n{key} = "{value}"\n'
    assert found(text) == []


# -- GhostPanel's extension tables --------------------------------------------------


def test_quic_fabric_and_dns_config_are_understood_and_only_warned_about() -> None:
    text = HEAD + ('[quic_fabric]\nenabled = true\nbind_address = "localhost"\n'
                   'bind_port = 70000\npeers = ["a"]\n'
                   '[dns_config]\nport = "53"\ndomain = "demo.bolt.local"\n'
                   '[services.web]\nimage = "x"\n')
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("warning", 4, 16, "quic_fabric.bind_address"),
        ("warning", 5, 13, "quic_fabric.bind_port"),
        ("warning", 6, 1, "quic_fabric.peers"),
        ("warning", 8, 8, "dns_config.port"),
    ]
    assert "GhostPanel" in result[2].message


def test_valid_extension_tables_raise_nothing() -> None:
    text = HEAD + ('[quic_fabric]\nenabled = true\nnode_id = "n1"\nbind_address = "0.0.0.0"\n'
                   'bind_port = 4433\nencryption = true\nservice_discovery = true\n'
                   '[dns_config]\nenabled = true\nport = 5353\ndomain = "demo.bolt.local"\n'
                   '[services.web]\nimage = "x"\n')
    assert found(text) == []


# -- unknown keys -------------------------------------------------------------------


def test_keys_bolt_drops_are_warnings_with_a_hint() -> None:
    text = HEAD + ('metadata.version = "1"\n[services.web]\nimage = "x"\nimgae = "typo"\n'
                   'gaming_config = { mode = "fast" }\n[services.web.storage]\nsize = "1Gi"\n'
                   'volumes = ["a:b"]\n')
    result = diagnostics(text)
    assert [(d.severity, d.line, d.column, d.key) for d in result] == [
        ("warning", 2, 1, "metadata"),
        ("warning", 5, 1, "services.web.imgae"),
        ("warning", 6, 1, "services.web.gaming_config"),
        ("warning", 9, 1, "services.web.storage.volumes"),
    ]
    assert result[1].hint == "Did you mean `image`?"
    assert "silently drops" in result[2].message


def test_every_declared_service_key_is_known() -> None:
    # The unknown-key warnings come from the schema: a service using every key Bolt
    # declares, each with a value of its type, draws no "does not read" warning.
    examples: dict[str, Any] = {"string": "x", "bool": True, "u32": 1, "i32": -1,
                                "strings": [], "string_map": {}, "table": {}}
    service = BOLTFILE_SCHEMA.fields["services"].item
    assert service is not None
    body = {name: examples[key.kind] for name, key in service.fields.items()
            if name not in ("build", "capsule")}
    document = {"project": "demo", "services": {"web": body}}
    messages = [d.message for d in validate(Boltfile.loads(tomlkit.dumps(document)))]
    assert messages and not [m for m in messages if "does not read" in m]


def test_declared_keys_follow_bolts_order() -> None:
    assert list(declared_keys(()) or [])[:4] == ["project", "quic_fabric", "dns_config",
                                                 "services"]
    assert list(declared_keys(("services", "web")) or [])[:3] == ["image", "build", "capsule"]
    assert declared_keys(("services",)) is None
    assert declared_keys(("snapshots", "named_snapshots", 0)) == [
        "name", "description", "trigger", "auto_create", "keep_forever"]
    assert declared_keys(("nope", "x")) is None


# -- syntax, files and the diagnostic shape -----------------------------------------


def test_a_multi_line_inline_table_is_refused_like_bolts_toml_1_0_parser() -> None:
    text = HEAD + '[services.web]\nimage = "x"\nenvironment = {\n  A = "1"\n}\n'
    (d,) = diagnostics(text)
    assert (d.severity, d.line, d.column, d.key) == ("error", 4, 16, "services.web.environment")
    assert "TOML 1.0" in d.message and "one line" in d.hint


def test_other_toml_1_1_syntax_is_an_error_too() -> None:
    (d,) = diagnostics(HEAD + '[services.web]\nimage = "x"\nenv = { A = "1", }\n')
    assert (d.severity, d.line, d.key) == ("error", 4, "services.web.env")


@pytest.mark.parametrize(("text", "line", "column", "key"), [
    (HEAD + "[services.web\nimage = 'x'\n", 2, 14, "services.web"),
    (HEAD + "[services.web]\nimage = 'x'\nimage = 'y'\n", 4, 12, "services.web.image"),
    (HEAD + "[services.web]\nports = [\"80:80\"\n", 4, 1, "services.web"),
])
def test_validate_file_turns_syntax_errors_into_diagnostics(
        tmp_path: Path, text: str, line: int, column: int, key: str) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text(text)
    (d,) = validate_file(path)
    assert (d.severity, d.line, d.column, d.key, d.path) == ("error", line, column, key,
                                                             str(path))
    assert d.message.startswith("TOML syntax error")


def test_validate_file_reports_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_bytes(b'project = "demo"\n[services.w\xffb]\n')
    (d,) = validate_file(path)
    assert (d.severity, d.line, d.column) == ("error", 2, 12)


def test_validate_file_raises_only_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(BoltfileError) as info:
        validate_file(tmp_path / "missing.toml")
    assert info.value.path == str(tmp_path / "missing.toml")


def test_diagnostic_json_shape_and_order() -> None:
    result = diagnostics('[services.web]\nports = ["x"]\n')
    assert [(d.line, d.column) for d in result] == sorted((d.line, d.column) for d in result)
    record = json.loads(json.dumps([d.to_dict() for d in result]))[0]
    assert set(record) == {"severity", "line", "column", "key", "message", "hint", "path"}
    assert record["path"] == "<string>" and record["severity"] == "error"
    assert str(result[0]).startswith("<string>:1:1: error: ")


def test_every_diagnostic_says_what_and_what_to_change() -> None:
    corpus = Path(__file__).resolve().parents[1] / "data" / "bolt-corpus"
    for path in corpus.glob("*.toml"):
        for d in validate_file(path):
            assert d.message and d.hint and d.key, d
            assert d.line >= 1 and d.column >= 1
