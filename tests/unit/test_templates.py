"""Templates: typed variables, placeholders, the TOML form, the curated templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostpanel_kernel.bolt import Boltfile, validate
from ghostpanel_kernel.surge._gaming import gpu_wanted
from ghostpanel_kernel.templates import (
    CURATED,
    InvalidTemplateBoltfile,
    TemplateError,
    TemplateLibrary,
    Variable,
    VariableError,
    dump_template,
    load_template,
    render_template,
)
from ghostpanel_kernel.templates._model import render_text

TEMPLATE = '''# my app
project = "shop"

[template]
title = "Shop"
description = "A shop"
categories = ["web", "demo"]

[template.variables.image]
default = "nginx:1.27"

[template.variables.port]
type = "port"
default = 8080

[template.variables.debug]
type = "boolean"
default = false

[template.variables.mode]
choices = ["fast", "safe"]
default = "safe"

[template.variables.token]
type = "secret"
help = "The API token"

[template.variables.command]
type = "command"
default = ""

[services.web]
image = "${image}"   # the image
command = "${toml:command}"
ports = ["${port}:80"]
privileged = "${toml:debug}"

[services.web.environment]
MODE = "${mode}"
TOKEN = "${token}"
PORT = "${port}"
KEEP = "${UNDECLARED}"
'''


def test_toml_template_reads_its_card_and_typed_variables() -> None:
    template = load_template(TEMPLATE, name="shop", source="mine")
    assert template.qualified_name == "mine/shop"
    assert (template.title, template.categories) == ("Shop", ("web", "demo"))
    assert [(v.name, v.type) for v in template.variables] == [
        ("image", "string"), ("port", "port"), ("debug", "boolean"), ("mode", "choice"),
        ("token", "secret"), ("command", "command")]
    assert template.variable("token").required and not template.variable("port").required
    assert "[template" not in template.body and template.body.startswith("# my app")


def test_render_fills_strings_typed_values_and_drops_an_empty_command() -> None:
    template = load_template(TEMPLATE, name="shop")
    text = template.render({"token": 'a"b\\c', "port": "9090", "debug": "yes"})
    data = Boltfile.loads(text).to_dict()
    web = data["services"]["web"]
    assert web["image"] == "nginx:1.27" and web["ports"] == ["9090:80"]
    assert web["privileged"] is True
    assert "command" not in web  # empty: the image's own command
    assert web["environment"] == {"MODE": "safe", "TOKEN": 'a"b\\c', "PORT": "9090",
                                  "KEEP": "${UNDECLARED}"}
    assert "# the image" in text  # comments survive
    web = Boltfile.loads(template.render({"token": "t", "command": "sh -c 'sleep 9'"})
                         ).to_dict()["services"]["web"]
    assert web["command"] == ["sh", "-c", "sleep 9"]


def test_values_report_every_problem_by_variable() -> None:
    template = load_template(TEMPLATE, name="shop")
    with pytest.raises(VariableError) as caught:
        template.values({"port": "70000", "mode": "slow", "debug": "maybe", "nope": "1"})
    problems = caught.value.problems
    assert set(problems) == {"port", "mode", "debug", "token", "nope"}
    assert "65535" in problems["port"] and "fast, safe" in problems["mode"]
    assert problems["token"] == "a value is required"


@pytest.mark.parametrize(("text", "message"), [
    ('project = "x"\n[services.a]\nimage = "b"\n', "no [template] table"),
    ('project = "x"\n[template]\ndescription = "d"\n', "needs a title"),
    ('project = "x"\n[template]\ntitle = "t"\ncolour = 1\n', "unknown key"),
    ('project = "x"\n[template]\ntitle = "t"\n[template.variables.n]\ntype = "float"\n',
     "type 'float'"),
    ('project = "x"\n[template]\ntitle = "t"\n[template.variables.n]\ntype = "port"\n'
     'default = 0\n', "between 1 and 65535"),
    ('project = "x"\n[template]\ntitle = "t"\n[services.a]\nimage = "b"\n'
     'tty = "${toml:missing}"\n', "undeclared"),
    ('project = "x"\n[template\n', "not TOML"),
])
def test_malformed_templates_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("[", r"\[")):
        load_template(text, name="x")


def test_dump_then_load_round_trips() -> None:
    variables = [Variable("image", default="busybox"), Variable("n", "integer", 3, help="h"),
                 Variable("c", "choice", "a", choices=("a", "b"))]
    text = dump_template(body='project = "p"\n\n[services.s]\nimage = "${image}"\n',
                         title="P", categories=["x"], variables=variables, notes=["lost"])
    assert text.index("[template]") < text.index("[services.s]")
    back = load_template(text, name="p")
    assert back.variables == tuple(variables) and back.notes == ("lost",)
    assert render_text(back.body, back.values()) == \
        'project = "p"\n\n[services.s]\nimage = "busybox"\n'


def test_render_template_validates_and_renames_the_project() -> None:
    template = load_template(TEMPLATE, name="shop")
    rendered = render_template(template, {"token": "t"}, project="shop-2")
    assert rendered.project == "shop-2" and Boltfile.loads(rendered.text).project == "shop-2"
    broken = load_template(TEMPLATE.replace('ports = ["${port}:80"]', 'ports = ["${mode}"]'),
                           name="shop")
    with pytest.raises(InvalidTemplateBoltfile) as caught:
        render_template(broken, {"token": "t"})
    assert any(d.key == "services.web.ports" for d in caught.value.diagnostics)


def test_the_curated_templates_pass_the_validator(tmp_path: Path) -> None:
    library = TemplateLibrary(tmp_path)
    templates = library.templates()
    assert {t.name for t in templates} == {"minecraft", "valheim", "factorio",
                                          "steam-proton", "jellyfin", "ollama"}
    for template in templates:
        assert template.source == CURATED
        assert template.variable("image").default  # tests swap it for the test image
        assert template.variable("command").type == "command"
        for gpu in ([True, False] if any(v.name == "gpu" for v in template.variables)
                    else [None]):
            rendered = render_template(template, {} if gpu is None else {"gpu": gpu})
            diagnostics = validate(Boltfile.loads(rendered.text))
            assert not [d for d in diagnostics if d.severity == "error"], template.name


@pytest.mark.parametrize(("name", "policy"), [("steam-proton", "exclusive"),
                                              ("jellyfin", "shared"),
                                              ("ollama", "exclusive")])
def test_gpu_templates_ask_the_allocator_for_a_gpu_unless_turned_off(
        tmp_path: Path, name: str, policy: str) -> None:
    template = TemplateLibrary(tmp_path).get(name)
    for gpu, wanted in ((True, True), (False, False)):
        data = Boltfile.loads(render_template(template, {"gpu": gpu}).text).to_dict()
        service, table = next(iter(data["services"].items()))
        request = gpu_wanted(service, table)
        assert (request is not None) is wanted
        if request is not None:
            assert request.policy == policy and request.count in (None, 1)


def test_library_categories_and_lookup(tmp_path: Path) -> None:
    library = TemplateLibrary(tmp_path)
    assert {"games", "media", "ai", "gpu"} <= set(library.categories())
    assert [t.name for t in library.templates(category="AI")] == ["ollama"]
    assert library.get("curated/valheim").name == "valheim"
    with pytest.raises(TemplateError, match="no template 'nothing'"):
        library.get("nothing")


@pytest.mark.parametrize("text", [
    # A dotted key: no [template] header to cut; tomlkit takes the table out.
    'project = "x"\ntemplate.title = "T"\n\n[services.a]\nimage = "b"\n',
    # A header-like line inside a multi-line string must stay in the body.
    'project = "x"\n\n[template]\ntitle = "T"\n\n[services.a]\nimage = "b"\n'
    'labels = { note = """\n[template]\nkept""" }\n',
    # Quoted table names, and a [template.*] table after the services.
    'project = "x"\n\n[services.a]\nimage = "b"\n\n["template"]\ntitle = "T"\n\n'
    '[ template.variables.n ]\ndefault = "1"\n',
])
def test_the_template_table_is_taken_out_whatever_its_form(text: str) -> None:
    template = load_template(text, name="x")
    assert template.title == "T"
    data = Boltfile.loads(template.body).to_dict()
    assert "template" not in data and data["services"]["a"]["image"] == "b"
    if "kept" in text:
        assert data["services"]["a"]["labels"]["note"] == "[template]\nkept"


def test_the_examples_in_the_docstrings_hold() -> None:
    import doctest

    from ghostpanel_kernel import templates
    from ghostpanel_kernel.templates import _model, _portainer

    for module in (templates, _model, _portainer):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0, module
