"""Bolt's verdict on every real Boltfile in ``tests/data/bolt-corpus/``.

The files' provenance and licences are in that folder's README.

The expected values below were derived by hand from the rules in docs/boltfile-rules.md
(Bolt's loader: serde types, required keys, and ``BoltFile::validate``) and from
reading each file -- not by running the validator. For each file: whether Bolt accepts
it, the exact errors as (severity, key, line), and the exact set of warnings as
(severity, key). A comment per file says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostpanel_kernel.bolt import Boltfile, validate, validate_file

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bolt-corpus"

EXPECTED: dict[str, dict[str, object]] = {
    # Bolt's own root Boltfile. project, three services with exactly one source each
    # (image, capsule, capsule), host ports 80/3000/5432 all distinct. [quic_fabric] and
    # [dns_config] are dropped by Bolt's loader but are GhostPanel's extension (no warning),
    # and all their keys are ones GhostPanel reads. The commented-out storage/auth tables
    # are comments. -> valid, nothing to say.
    "bolt__Boltfile.toml": {
        "valid": True,
        "errors": set(),
        "warnings": set(),
    },
    # Snapshots are all well-formed ("02:00", "sunday@03:00", "1@04:00", every named
    # snapshot has a name). But [services.steam.gaming.gpu] and [services.lutris.gaming.gpu]
    # create `gaming` tables without the six required bools (enabled, gpu_passthrough,
    # nvidia_runtime, amd_runtime, audio_passthrough, real_time_priority): serde refuses.
    # The implicit `gaming` tables are first written on lines 113 and 142. Every other key
    # (gpu.nvbind, gpu.gaming, audio, wine) is one Bolt reads.
    "bolt__examples_Boltfile-with-snapshots.toml": {
        "valid": False,
        "errors": {
            ("error", "services.steam.gaming", 113),
            ("error", "services.lutris.gaming", 142),
        },
        "warnings": set(),
    },
    # No top-level `project` (it sits in [metadata] as `name`, which Bolt ignores): the
    # required key is missing (reported at 1:1). [services.gaming-desktop.storage] is a
    # real Bolt table whose `size` is required, and here it only has `volumes` (line 41).
    # Everything else under the service is unknown to Bolt and silently dropped.
    "bolt__examples_gaming-wayland-kde.bolt.toml": {
        "valid": False,
        "errors": {
            ("error", "project", 1),
            ("error", "services.gaming-desktop.storage", 41),
        },
        "warnings": {
            ("warning", "metadata"),
            ("warning", "services.gaming-desktop.workload_type"),
            ("warning", "services.gaming-desktop.gaming_config"),
            ("warning", "services.gaming-desktop.gpu"),
            ("warning", "services.gaming-desktop.wayland"),
            ("warning", "services.gaming-desktop.network"),
            ("warning", "services.gaming-desktop.storage.volumes"),
            ("warning", "services.gaming-desktop.runtime"),
            ("warning", "services.gaming-desktop.init"),
        },
    },
    # Same shape: no `project`; [services.ollama.storage] (line 28) lacks `size`. The
    # ports are inside [..network] tables, which Bolt drops, so no port is published.
    # depends_on = ["ollama"] names a real service.
    "bolt__examples_ollama-cpu.bolt.toml": {
        "valid": False,
        "errors": {
            ("error", "project", 1),
            ("error", "services.ollama.storage", 28),
        },
        "warnings": {
            ("warning", "metadata"),
            ("warning", "services.ollama.workload_type"),
            ("warning", "services.ollama.ai_config"),
            ("warning", "services.ollama.network"),
            ("warning", "services.ollama.storage.volumes"),
            ("warning", "services.ollama.runtime"),
            ("warning", "services.ollama-webui.network"),
        },
    },
    # No `project`; both [services.ollama.storage] (line 38) and
    # [services.ollama-webui.storage] (line 97) lack `size`. [networks.ai-network] has its
    # required `driver`; its other keys are unknown (ipv6 is spelled enable_ipv6 in Bolt).
    # The named volumes use driver "bolt-native", which Bolt logs a warning about (it
    # knows local, nfs, cifs), and `path`, which Bolt drops.
    "bolt__examples_ollama-gpu.bolt.toml": {
        "valid": False,
        "errors": {
            ("error", "project", 1),
            ("error", "services.ollama.storage", 38),
            ("error", "services.ollama-webui.storage", 97),
        },
        "warnings": {
            ("warning", "metadata"),
            ("warning", "services.ollama.workload_type"),
            ("warning", "services.ollama.ai_config"),
            ("warning", "services.ollama.gpu"),
            ("warning", "services.ollama.network"),
            ("warning", "services.ollama.storage.volumes"),
            ("warning", "services.ollama.storage.storage_driver"),
            ("warning", "services.ollama.runtime"),
            ("warning", "services.ollama.bolt"),
            ("warning", "services.ollama.health"),
            ("warning", "services.ollama-webui.network"),
            ("warning", "services.ollama-webui.storage.volumes"),
            ("warning", "networks.ai-network.enable_quic"),
            ("warning", "networks.ai-network.enable_ebpf"),
            ("warning", "networks.ai-network.ipv6"),
            ("warning", "volumes.ollama-models.driver"),
            ("warning", "volumes.ollama-models.path"),
            ("warning", "volumes.webui-data.driver"),
            ("warning", "volumes.webui-data.path"),
        },
    },
    # Three `environment = {` inline tables are written over several lines (lines 24,
    # 53, 63): TOML 1.1 syntax that Bolt's parser (Rust toml 0.8, TOML 1.0) refuses.
    # tomlkit reads them, so GhostPanel also checks the rest: the empty
    # [services.ollama.gaming] header (line 32) lacks the six required bools.
    # [profiles] is not a Bolt key; [networks.ai] has `driver` but `subnet` belongs in
    # ipam.config. Ports 11434 and 3000 are distinct; depends_on targets exist.
    "bolt__examples_ollama_ai_profile.toml": {
        "valid": False,
        "errors": {
            ("error", "services.ollama.environment", 24),
            ("error", "services.ollama.gaming", 32),
            ("error", "services.ollama-webui.environment", 53),
            ("error", "services.model-downloader.environment", 63),
        },
        "warnings": {
            ("warning", "profiles"),
            ("warning", "networks.ai.subnet"),
        },
    },
    # Both [services.steam.gaming] (line 15) and [services.game-launcher.gaming] (line
    # 45) are empty headers: the six required bools are missing. The nvidia, audio and
    # performance values are all in range (power_limit 100 <= 150, offsets 500/100,
    # nice -10, rt_priority 10). "27015:27015/udp" is a GhostPanel warning (Bolt would
    # refuse the /udp suffix). [profiles] dropped; networks.gaming.subnet dropped.
    "bolt__examples_steam_gaming_profile.toml": {
        "valid": False,
        "errors": {
            ("error", "services.steam.gaming", 15),
            ("error", "services.game-launcher.gaming", 45),
        },
        "warnings": {
            ("warning", "profiles"),
            ("warning", "services.steam.ports"),
            ("warning", "networks.gaming.subnet"),
        },
    },
    # `project` is a [project] table (line 4) where Bolt wants a string: serde refuses.
    # The three services each have an image and nothing Bolt checks; their `gpu` tables
    # sit at service level (Bolt reads gaming.gpu), so Bolt drops them; so it drops the
    # top-level [runtime] table.
    "bolt__nvbind-examples_bolt_Boltfile.toml": {
        "valid": False,
        "errors": {
            ("error", "project", 4),
        },
        "warnings": {
            ("warning", "services.steam.gpu"),
            ("warning", "services.pytorch.gpu"),
            ("warning", "services.blender.gpu"),
            ("warning", "runtime"),
        },
    },
    # The original GhostPanel Boltfile. Every service writes `volumes` as a table
    # ([services.X.volumes] with name = "path"), where Bolt wants a list of
    # "SOURCE:TARGET" strings: 8 type errors. [services.gpanel-gpu.gaming.gpu] (implicit
    # gaming, line 141) and [services.gpanel-steam.gaming] (line 160) lack the six
    # bools. Host ports 9443, 8000, 9000, 80, 443, 8080 are distinct; depends_on targets
    # exist. Warnings: unknown top-level tables (settings, profiles, security), sizes on
    # named volumes and the "bolt" volume driver Bolt warns about, network subnet/gateway/
    # quic, `capabilities`, gaming.profile/wine_optimizations, and "gpu:*", which is not
    # an nvbind device GhostPanel can allocate.
    "ghostpanel__Boltfile.toml": {
        "valid": False,
        "errors": {
            ("error", "services.gpanel-web.volumes", 39),
            ("error", "services.gpanel-agent.volumes", 60),
            ("error", "services.gpanel-cli.volumes", 83),
            ("error", "services.traefik.volumes", 105),
            ("error", "services.postgres.volumes", 119),
            ("error", "services.redis.volumes", 128),
            ("error", "services.gpanel-gpu.gaming", 141),
            ("error", "services.gpanel-gpu.volumes", 151),
            ("error", "services.gpanel-steam.gaming", 160),
            ("error", "services.gpanel-steam.volumes", 164),
        },
        "warnings": {
            ("warning", "settings"),
            ("warning", "volumes.gpanel_data.size"),
            ("warning", "volumes.gpanel_data.driver"),
            ("warning", "volumes.gpanel_config.size"),
            ("warning", "volumes.gpanel_config.driver"),
            ("warning", "volumes.gpanel_logs.size"),
            ("warning", "volumes.gpanel_logs.driver"),
            ("warning", "volumes.gpanel_certs.size"),
            ("warning", "volumes.gpanel_certs.driver"),
            ("warning", "networks.ghostpanel-net.subnet"),
            ("warning", "networks.ghostpanel-net.gateway"),
            ("warning", "networks.ghostpanel-net.quic"),
            ("warning", "services.gpanel-agent.capabilities"),
            ("warning", "services.gpanel-gpu.gaming.gpu.nvbind.devices"),
            ("warning", "services.gpanel-steam.gaming.profile"),
            ("warning", "services.gpanel-steam.gaming.wine_optimizations"),
            ("warning", "profiles"),
            ("warning", "security"),
        },
    },
}


def test_every_corpus_file_has_an_expected_verdict() -> None:
    files = {p.name for p in CORPUS.glob("*.toml")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_verdict(name: str) -> None:
    expected = EXPECTED[name]
    diagnostics = validate_file(CORPUS / name)
    errors = {(d.severity, d.key, d.line) for d in diagnostics if d.severity == "error"}
    warnings = {(d.severity, d.key) for d in diagnostics if d.severity == "warning"}
    assert errors == expected["errors"]
    assert warnings == expected["warnings"]
    assert (not errors) is expected["valid"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_on_a_loaded_corpus_file_agrees_with_validate_file(name: str) -> None:
    assert validate(Boltfile.load(CORPUS / name)) == validate_file(CORPUS / name)


def test_corpus_messages_say_what_to_change() -> None:
    by_key = {d.key: d for d in validate_file(CORPUS / "ghostpanel__Boltfile.toml")}
    volumes = by_key["services.redis.volumes"]
    assert "list of strings" in volumes.message
    assert 'volumes = ["gpanel_data:/data"]' in volumes.hint
    (project,) = [d for d in validate_file(CORPUS / "bolt__nvbind-examples_bolt_Boltfile.toml")
                  if d.is_error]
    assert 'project = "gaming-workstation"' in project.hint
    (udp,) = [d for d in validate_file(CORPUS / "bolt__examples_steam_gaming_profile.toml")
              if d.key == "services.steam.ports"]
    assert (udp.line, udp.column) == (13, 10)
    assert '"27015:27015"' in udp.hint
