"""App templates: Portainer's JSON (v2, v3) and GhostPanel's TOML templates, deployed
with Surge.

A template is a Boltfile with a ``[template]`` table (title, description, categories,
logo, typed variables); its strings hold ``${name}`` placeholders that a deployment
fills. Sources are named: ``curated`` (shipped in this package) and each one imported
(a Portainer file, a TOML template or a folder of them, by path or URL), kept under
``$GHOSTPANEL_HOME/templates``.

>>> from ghostpanel_kernel.templates import TemplateLibrary, render_template
>>> library = TemplateLibrary()
>>> minecraft = library.get("minecraft")
>>> rendered = render_template(minecraft, {"port": 25570}, project="mc")
>>> 'ports = ["25570:25565"]' in rendered.text
True
>>> await deploy_template(rendered, [env], progress=print)    # doctest: +SKIP

Modules: ``_model`` (variables, templates, placeholders), ``_toml`` (the TOML form),
``_portainer`` (Portainer's JSON), ``_sources`` (the library of named sources),
``_deploy`` (render, validate, apply). See docs/templates.md.
"""

from ._deploy import (
    InvalidTemplateBoltfile,
    RenderedTemplate,
    deploy_template,
    deployed_path,
    render_template,
)
from ._model import VARIABLE_TYPES, Template, TemplateError, Variable, VariableError
from ._portainer import PortainerImport, Refusal, import_portainer, slug
from ._sources import CURATED, ImportResult, SourceRecord, TemplateLibrary
from ._toml import dump_template, load_template

__all__ = [
    "CURATED",
    "VARIABLE_TYPES",
    "ImportResult",
    "InvalidTemplateBoltfile",
    "PortainerImport",
    "Refusal",
    "RenderedTemplate",
    "SourceRecord",
    "Template",
    "TemplateError",
    "TemplateLibrary",
    "Variable",
    "VariableError",
    "deploy_template",
    "deployed_path",
    "dump_template",
    "import_portainer",
    "load_template",
    "render_template",
    "slug",
]
