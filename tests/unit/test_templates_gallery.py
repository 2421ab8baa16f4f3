"""TemplateGallery headless, without an engine: cards, categories, search, the deploy
form's per-field errors and its Boltfile preview."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.templates import TemplateLibrary

if TYPE_CHECKING:
    from ghostpanel_widgets import TemplateGallery


@pytest.fixture
async def gallery(tmp_path: Path) -> AsyncIterator[TemplateGallery]:
    from ghostpanel_widgets import TemplateGallery

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "hello.toml").write_text(
        'project = "hello"\n[template]\ntitle = "Hello"\ndescription = "says hello"\n'
        'categories = ["demo"]\nlogo = "https://example.org/h.png"\n'
        '[template.variables.who]\nhelp = "Whom to greet"\n'
        '[services.web]\nimage = "busybox"\ncommand = ["echo", "${who}"]\n',
        encoding="utf-8")
    library = TemplateLibrary(tmp_path / "home")
    library.import_source(str(tmp_path / "mine"), name="mine")
    env = connect("tcp://127.0.0.1:9", name="nowhere")  # never contacted here
    made = TemplateGallery(env, library=library)
    yield made
    made.close()
    await env.aclose()


async def test_cards_categories_and_search(gallery: TemplateGallery) -> None:
    assert len(gallery.cards.children) == 7
    assert list(gallery.category.options) == ["All", "ai", "demo", "games", "gpu", "media"]
    gallery.category.value = "gpu"
    assert gallery.visible_names == ["curated/jellyfin", "curated/ollama",
                                     "curated/steam-proton"]
    gallery.category.value = "All"
    gallery.search.value = "SERVER valheim"
    assert gallery.visible_names == ["curated/valheim"]
    assert len(gallery.cards.children) == 1
    gallery.search.value = "no such thing"
    assert gallery.cards.children == () and "No template matches" in gallery.empty.value
    gallery.search.value = "hello"
    card = gallery.cards.children[0]
    assert 'src="https://example.org/h.png"' in card.children[0].value


async def test_the_deploy_form_shows_errors_by_field_and_the_boltfile(
        gallery: TemplateGallery) -> None:
    gallery.search.value = "hello"
    gallery.cards.children[0].children[1].click()  # the card's Deploy… button
    assert gallery.selected is not None and gallery.selected.name == "hello"
    assert gallery.deploy_panel.layout.display == "flex"
    assert gallery.project.value == "hello"
    who = gallery._fields[0]
    assert gallery.boltfile_text == "" and "a value is required" in who.error.value
    assert await gallery.deploy() is None  # nothing sent: the field is wrong
    who.input.value = "world"
    assert who.error.value == ""
    data = Boltfile.loads(gallery.boltfile_text).to_dict()
    assert data["services"]["web"]["command"] == ["echo", "world"]
    gallery.project.value = "two words"
    assert "without spaces" in gallery.project_error.value and gallery.boltfile_text == ""
    gallery.project.value = "hello-2"
    assert Boltfile.loads(gallery.boltfile_text).project == "hello-2"
    gallery.close_deploy()
    assert gallery.deploy_panel.layout.display == "none"


async def test_choices_booleans_and_secrets_get_their_own_inputs(
        gallery: TemplateGallery) -> None:
    import ipywidgets

    gallery.open_deploy("curated/valheim")
    inputs = {f.variable.name: f.input for f in gallery._fields}
    assert isinstance(inputs["public"], ipywidgets.Checkbox)
    assert isinstance(inputs["password"], ipywidgets.Password)
    inputs["password"].value = "s3cret-word"
    assert 'SERVER_PASS = "s3cret-word"' in gallery.boltfile_text  # what is applied
    assert "s3cret-word" not in gallery.preview.value  # what is shown
    gallery.open_deploy("minecraft")
    inputs = {f.variable.name: f.input for f in gallery._fields}
    assert isinstance(inputs["difficulty"], ipywidgets.Dropdown)
    assert list(inputs["difficulty"].options) == ["peaceful", "easy", "normal", "hard"]
    inputs["difficulty"].value = "hard"
    assert 'DIFFICULTY = "hard"' in gallery.boltfile_text
    gallery.open_deploy("nothing")
    assert gallery.status.level == "error" and "nothing" in gallery.status.message


async def test_with_several_environments_the_form_asks_where(tmp_path: Path) -> None:
    from ghostpanel_widgets import TemplateGallery

    east = connect("tcp://127.0.0.1:9", name="east")
    west = connect("tcp://127.0.0.1:9", name="west")
    gallery = TemplateGallery([east, west], library=TemplateLibrary(tmp_path))
    try:
        assert list(gallery.target.options) == ["east", "west"]
        assert gallery.target.layout.display == "flex"
        gallery.target.value = "west"
        assert [e.name for e in gallery._target()] == ["west"]
    finally:
        gallery.close()
        await east.aclose()
        await west.aclose()
    single = TemplateGallery(east, library=TemplateLibrary(tmp_path))
    assert single.target.layout.display == "none"
    single.close()


async def test_a_source_is_imported_from_the_gallery(gallery: TemplateGallery,
                                                     tmp_path: Path) -> None:
    portainer = tmp_path / "team.json"
    portainer.write_text(
        '{"version": "2", "templates": [{"type": 1, "title": "Redis", "image": "redis:7",'
        ' "categories": ["database"]}, {"type": 2, "title": "Swarm thing"}]}',
        encoding="utf-8")
    gallery.import_location.value = str(portainer)
    gallery.import_name.value = "team"
    imported = await gallery.import_source()
    assert imported is not None and [t.name for t in imported] == ["redis"]
    assert gallery.status.level == "warning" and "Swarm thing" in gallery.status.message
    assert "team/redis" in [t.qualified_name for t in gallery.templates]
    assert "database" in gallery.category.options
    assert await gallery.import_source(str(tmp_path / "none.json")) is None
    assert gallery.status.level == "error" and "cannot read" in gallery.status.message
    assert await gallery.import_source("") is None and gallery.status.level == "error"
