"""Boltfile load/save round trips, edits that keep comments and layout, and ``fmt``."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import pytest
import tomlkit

import ghostpanel_kernel.bolt as bolt
from ghostpanel_kernel._exceptions import BoltfileError
from ghostpanel_kernel.bolt import Boltfile, PortMapping, VolumeMount, validate

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bolt-corpus"
FILES = sorted(CORPUS.glob("*.toml"))


def comments(text: str) -> list[str]:
    """Every ``# ...`` comment of ``text`` (outside single-line strings), in order."""
    found = []
    for line in text.splitlines():
        quote = ""
        for index, char in enumerate(line):
            if quote:
                if char == quote and (quote == "'" or line[index - 1] != "\\"):
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                found.append(line[index:].rstrip())
                break
    return found


# -- round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_an_unchanged_file_saves_byte_for_byte(path: Path, tmp_path: Path) -> None:
    boltfile = Boltfile.load(path)
    assert boltfile.dumps().encode() == path.read_bytes()
    target = tmp_path / "Boltfile.toml"
    boltfile.save(target)
    assert target.read_bytes() == path.read_bytes()
    assert boltfile.path == str(target)


def test_crlf_tabs_and_a_missing_final_newline_survive(tmp_path: Path) -> None:
    raw = (b'project = "demo"\r\n\t# tabbed\r\n[ services . web ]\r\nimage\t=  "x"   # c\r\n'
           b'ports = [ "80:80" ,\r\n ]')
    path = tmp_path / "Boltfile.toml"
    path.write_bytes(raw)
    boltfile = Boltfile.load(path)
    boltfile.save()
    assert path.read_bytes() == raw


def test_load_errors_carry_path_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(BoltfileError) as missing:
        Boltfile.load(tmp_path / "nope.toml")
    assert missing.value.path == str(tmp_path / "nope.toml") and missing.value.line is None

    broken = tmp_path / "broken.toml"
    broken.write_text('project = "demo"\nimage = \n')
    with pytest.raises(BoltfileError) as syntax:
        Boltfile.load(broken)
    assert (syntax.value.line, syntax.value.column) == (2, 9)
    assert str(syntax.value).startswith(f"{broken}:2:9: TOML syntax error")

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'project = "d\xe9mo"\n')
    with pytest.raises(BoltfileError) as encoding:
        Boltfile.load(binary)
    assert (encoding.value.line, encoding.value.column) == (1, 13)


def test_loads_names_its_source_and_save_needs_a_path() -> None:
    boltfile = Boltfile.loads('project = "demo"\n', path="inline.toml")
    assert boltfile.path == "inline.toml"
    with pytest.raises(ValueError, match=r"save\(path=\.\.\.\)"):
        Boltfile.loads('project = "demo"\n').save()


# -- reading ------------------------------------------------------------------------


def test_reading_project_services_and_a_service() -> None:
    boltfile = Boltfile.load(CORPUS / "bolt__Boltfile.toml")
    assert boltfile.project == "demo"
    assert boltfile.services == ["web", "api", "db"]
    web, api = boltfile.service("web"), boltfile.service("api")
    assert (web.name, web.image, web.build, web.capsule) == ("web", "nginx:latest", None, None)
    assert web.ports == ("80:80",) and web.volumes == () and web.depends_on == ()
    assert api.capsule == "nodejs" and api.get("ports") == ["3000:3000"]
    with pytest.raises(KeyError):
        boltfile.service("nope")
    assert isinstance(boltfile.document, tomlkit.TOMLDocument)


def test_the_document_can_be_edited_directly() -> None:
    boltfile = Boltfile.loads('project = "demo"  # name\n[services.web]\nimage = "x"\n')
    boltfile.document["project"] = "shop"
    assert boltfile.dumps().startswith('project = "shop"  # name\n')
    assert boltfile.project == "shop"


# -- edits --------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_edits_keep_every_comment_and_touch_only_their_lines(path: Path) -> None:
    boltfile = Boltfile.load(path)
    before, data = boltfile.dumps(), copy.deepcopy(boltfile.to_dict())
    name = boltfile.services[0]
    boltfile.set_image(name, "example/image:2")
    boltfile.set_ports(name, ["18080:80"])
    boltfile.add_service("added", image="busybox", ports=["19999:9999"])
    after = boltfile.dumps()

    assert comments(after) == comments(before)
    removed = [line[2:] for line in difflib.ndiff(before.splitlines(), after.splitlines())
               if line.startswith("- ")]
    assert all(line.split("=")[0].strip() in ("image", "build", "capsule", "ports")
               for line in removed), removed

    service = data["services"][name]
    for source in ("image", "build", "capsule"):
        service.pop(source, None)
    service.update(image="example/image:2", ports=["18080:80"])
    data["services"]["added"] = {"image": "busybox", "ports": ["19999:9999"]}
    assert boltfile.to_dict() == data
    assert tomlkit.parse(after).unwrap() == data


def test_set_image_and_ports_keep_the_lines_comments() -> None:
    boltfile = Boltfile.loads(
        'project = "demo"\n\n[services.web]\nimage = "nginx:1.27"  # pinned\n'
        'volumes = [\n    "./a:/a",  # data\n]\nports = [\n    "80:80",\n]  # public\n')
    boltfile.set_image("web", "nginx:1.28")
    boltfile.set_ports("web", ["8080:80", "8443:443"])
    assert boltfile.dumps() == (
        'project = "demo"\n\n[services.web]\nimage = "nginx:1.28"  # pinned\n'
        'volumes = [\n    "./a:/a",  # data\n]\nports = [\n    "8080:80",\n    "8443:443",\n'
        ']  # public\n')


def test_set_image_replaces_build_or_capsule_in_place() -> None:
    boltfile = Boltfile.loads('project = "demo"\n[services.api]\nbuild = "./api"  # local\n'
                              'ports = ["3000:3000"]\ncapsule = "node"\n')
    boltfile.set_image("api", "api:1")
    assert boltfile.dumps() == ('project = "demo"\n[services.api]\nimage = "api:1"  # local\n'
                                'ports = ["3000:3000"]\n')
    assert validate(boltfile) == []


def test_set_and_unset_keys_of_inline_and_dotted_services() -> None:
    boltfile = Boltfile.loads('project = "demo"\n[services]\nweb = { image = "x" }\n'
                              'api.image = "y"  # api\n')
    boltfile.set_ports("web", ["80:80"])
    boltfile.set_service_key("api", "restart", "always")
    boltfile.unset_service_key("web", "image")
    assert boltfile.dumps() == ('project = "demo"\n[services]\nweb = { ports = ["80:80"] }\n'
                                'api.image = "y"  # api\napi.restart = "always"\n')
    with pytest.raises(KeyError):
        boltfile.unset_service_key("web", "image")


def test_a_key_written_as_its_own_table_is_not_overwritten() -> None:
    boltfile = Boltfile.loads('project = "d"\n[services.web]\nimage = "x"\n'
                              '[services.web.environment]\nA = "1"\n')
    with pytest.raises(ValueError, match="written as a table"):
        boltfile.set_service_key("web", "environment", {"B": "2"})


def test_add_service_goes_after_the_last_service_and_before_the_next_comment() -> None:
    boltfile = Boltfile.loads(
        'project = "demo"\n\n[services.web]\nimage = "nginx"\n\n[services.web.environment]\n'
        'A = "1"\n\n# named volumes follow\n[volumes.data]\ndriver = "local"\n')
    service = boltfile.add_service("cache", image="redis:7", ports=["6379:6379"],
                                   environment={"MODE": "lru"}, depends_on=["web"])
    assert service.image == "redis:7" and service.depends_on == ("web",)
    assert boltfile.dumps() == (
        'project = "demo"\n\n[services.web]\nimage = "nginx"\n\n[services.web.environment]\n'
        'A = "1"\n\n[services.cache]\nimage = "redis:7"\nports = ["6379:6379"]\n'
        'environment = { MODE = "lru" }\ndepends_on = ["web"]\n\n'
        '# named volumes follow\n[volumes.data]\ndriver = "local"\n')
    assert validate(boltfile) == []


def test_add_service_to_an_empty_file_and_after_a_last_line_without_newline() -> None:
    empty = Boltfile.loads("")
    empty.add_service("web", capsule="nginx")
    assert empty.dumps() == '[services.web]\ncapsule = "nginx"\n'
    tail = Boltfile.loads('project = "demo"\n[services.db]\ncapsule = "pg"\n# old = 1')
    tail.add_service("web", build="./web")
    assert tail.dumps() == ('project = "demo"\n[services.db]\ncapsule = "pg"\n# old = 1\n\n'
                            '[services.web]\nbuild = "./web"\n')


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "exactly one"),
    ({"image": "x", "build": "."}, "exactly one"),
    ({"image": "x", "ports": ["80:80:80"]}, "host IP"),
    ({"image": "x", "volumes": [":/data"]}, "empty source"),
])
def test_add_service_checks_its_arguments(kwargs: dict[str, object], message: str) -> None:
    boltfile = Boltfile.loads('project = "demo"\n')
    with pytest.raises(ValueError, match=message):
        boltfile.add_service("web", **kwargs)  # type: ignore[arg-type]
    assert boltfile.dumps() == 'project = "demo"\n'


def test_add_service_refuses_bad_and_taken_names() -> None:
    boltfile = Boltfile.loads('project = "demo"\n[services.web]\nimage = "x"\n')
    with pytest.raises(ValueError, match="already exists"):
        boltfile.add_service("web", image="y")
    with pytest.raises(ValueError, match="without spaces"):
        boltfile.add_service("my web", image="y")


def test_remove_service_takes_its_comment_and_keeps_the_next_one() -> None:
    boltfile = Boltfile.loads(
        'project = "demo"\n\n# the web front\n[services.web]\nimage = "nginx"  # pinned\n\n'
        '[services.web.environment]\nA = "1"\n\n# the api\n[services.api]\nimage = "api"\n'
        'depends_on = ["web"]\n')
    boltfile.remove_service("web")
    assert boltfile.dumps() == ('project = "demo"\n\n# the api\n[services.api]\n'
                                'image = "api"\ndepends_on = ["web"]\n')
    assert [d.key for d in validate(boltfile)] == ["services.api.depends_on"]
    boltfile.remove_service("api")
    assert boltfile.dumps() == 'project = "demo"\n'
    with pytest.raises(KeyError):
        boltfile.remove_service("api")


def test_remove_service_written_inline_or_with_dotted_keys() -> None:
    boltfile = Boltfile.loads('project = "demo"\n[services]\nweb = { image = "x" }\n'
                              '# the api\napi.image = "y"\napi.ports = ["80:80"]\n')
    boltfile.remove_service("api")
    assert boltfile.dumps() == 'project = "demo"\n[services]\nweb = { image = "x" }\n'
    inline = Boltfile.loads('project = "d"\n'
                            'services = { a = { image = "x" }, b = { image = "y" } }\n')
    inline.remove_service("a")
    assert inline.dumps() == 'project = "d"\nservices = { b = { image = "y" } }\n'


def test_set_project() -> None:
    boltfile = Boltfile.loads('# my stack\n\n[services.web]\nimage = "x"\n')
    boltfile.set_project("shop")
    assert boltfile.dumps() == '# my stack\n\nproject = "shop"\n\n[services.web]\nimage = "x"\n'
    boltfile.set_project("store")
    assert boltfile.project == "store"
    with pytest.raises(ValueError, match="without spaces"):
        boltfile.set_project("my store")
    with pytest.raises(ValueError, match="table"):
        Boltfile.loads('[project]\nname = "x"\n').set_project("x")


def test_edits_on_an_unknown_service_raise_key_error() -> None:
    boltfile = Boltfile.loads('project = "demo"\n')
    with pytest.raises(KeyError):
        boltfile.set_image("web", "x")
    with pytest.raises(KeyError):
        boltfile.set_ports("web", [])
    with pytest.raises(KeyError):
        boltfile.set_service_key("web", "tty", True)


# -- fmt ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_format_keeps_data_and_comments_and_is_stable(path: Path) -> None:
    boltfile = Boltfile.load(path)
    formatted = boltfile.format()
    assert tomlkit.parse(formatted).unwrap() == boltfile.to_dict()
    assert sorted(comments(formatted)) == sorted(comments(boltfile.dumps()))
    assert Boltfile.loads(formatted).format() == formatted
    assert formatted.endswith("\n") and "\n\n\n" not in formatted
    assert boltfile.dumps().encode() == path.read_bytes()  # format() does not edit


def test_format_orders_keys_as_bolt_declares_them_and_normalises_spacing() -> None:
    messy = (
        "# my stack\n"
        "\n"
        "[services.web]\n"
        "ports=[ '80:80','443:443' ]   # public\n"
        "# where it comes from\n"
        'image =   "nginx"\n'
        "\n"
        "\n"
        "environment = {A='1',B='2'}\n"
        "[dns_config]\n"
        "domain = 'demo.local'\n"
        "  [ services . web . storage ]\n"
        "    size = '1Gi'\n"
        "[quic_fabric]\n"
        "enabled = true\n"
        'project = "demo"\n'
    )
    # `project` after [quic_fabric] belongs to that table: it stays there.
    assert Boltfile.loads(messy).format() == (
        "# my stack\n"
        "\n"
        "[quic_fabric]\n"
        "enabled = true\n"
        'project = "demo"\n'
        "\n"
        "[dns_config]\n"
        "domain = 'demo.local'\n"
        "\n"
        "[services.web]\n"
        "# where it comes from\n"
        'image = "nginx"\n'
        "ports = ['80:80', '443:443']  # public\n"
        "\n"
        "environment = { A = '1', B = '2' }\n"
        "\n"
        "[services.web.storage]\n"
        "size = '1Gi'\n"
    )


def test_format_puts_project_first_and_unknown_tables_last() -> None:
    text = ('[metadata]\nname = "x"\n\n[services.web]  # web\nimage = "x"\n\n'
            '# settings\n[snapshots]\nenabled = true\n')
    assert Boltfile.loads('project = "p"\n' + text).format() == (
        'project = "p"\n\n[services.web]  # web\nimage = "x"\n\n# settings\n[snapshots]\n'
        'enabled = true\n\n[metadata]\nname = "x"\n')


def test_format_writes_a_multi_line_inline_table_on_one_line() -> None:
    boltfile = Boltfile.loads('project = "p"\n[services.web]\nimage = "x"\n'
                              'environment = {\n    "A" = "1",\n    B = "2"\n}\n')
    formatted = boltfile.format()
    assert formatted.endswith('environment = { "A" = "1", B = "2" }\n')
    assert validate(Boltfile.loads(formatted)) == []


def test_format_aligns_trailing_comments_of_consecutive_keys() -> None:
    boltfile = Boltfile.loads('[snapshots.retention]\nkeep_daily = 7 # a\nmax_total = 50 # b\n'
                              'cleanup_frequency = "daily" # c\n')
    assert boltfile.format() == ('[snapshots.retention]\nkeep_daily = 7               # a\n'
                                 'max_total = 50               # b\n'
                                 'cleanup_frequency = "daily"  # c\n')


# -- values -------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("8080:80", PortMapping(8080, 80)),
    ("53", PortMapping(53, 53)),
    ("53:53/udp", PortMapping(53, 53, "udp", explicit_protocol=True)),
    ("+80:80", PortMapping(80, 80)),
])
def test_port_mapping_parse(spec: str, expected: PortMapping) -> None:
    assert PortMapping.parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "0", "65536", "a:80", "1.2.3.4:80:80", "80-81", "80/sctp",
                                  " 80"])
def test_port_mapping_refuses(spec: str) -> None:
    with pytest.raises(ValueError):
        PortMapping.parse(spec)


def test_volume_mount_parse() -> None:
    assert VolumeMount.parse("/data") == VolumeMount(None, "/data")
    mount = VolumeMount.parse("./a:/a:ro,delegated")
    assert (mount.source, mount.target, mount.options) == ("./a", "/a", ("ro", "delegated"))
    assert mount.unknown_options == ("delegated",)
    for bad in ("a:b:c:d", ":/a", "/a:"):
        with pytest.raises(ValueError):
            VolumeMount.parse(bad)


def test_public_names_are_sorted_and_exported() -> None:
    assert bolt.__all__ == sorted(bolt.__all__)
    assert all(hasattr(bolt, name) for name in bolt.__all__)
