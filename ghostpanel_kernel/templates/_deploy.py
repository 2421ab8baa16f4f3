"""Deploy a template: values → Boltfile text → validated Boltfile → Surge apply.

The rendered Boltfile is saved under ``$GHOSTPANEL_HOME/templates/deployed/<project>/
Boltfile.toml`` before the apply, so the project Surge creates names a file that is
there (its containers carry the path, as with any Surge apply): ``ghostpanel surge
status|destroy -f`` that file, and the stacks page, work on it like on any other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bolt import Boltfile, Diagnostic, validate
from ..engine import Environment
from ..surge import CancelCallback, SurgeResult, apply_surge
from ..surge._progress import ProgressCallback
from ._model import Template, TemplateError
from ._sources import default_home

__all__ = ["InvalidTemplateBoltfile", "RenderedTemplate", "deploy_template", "deployed_path",
           "render_template"]


class InvalidTemplateBoltfile(TemplateError):
    """The Boltfile a template renders to fails the validator.

    Attributes
    ----------
    diagnostics
        The validator's errors.
    """

    def __init__(self, template: Template, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(f"{template.qualified_name} renders a Boltfile the validator "
                         f"refuses: " + "; ".join(f"{d.key}: {d.message}" for d in diagnostics))


@dataclass(frozen=True)
class RenderedTemplate:
    """A template rendered for given values: the Boltfile text, validated.

    Attributes
    ----------
    template
        The template.
    values
        Every variable's value (given over the defaults).
    text
        The Boltfile text that would be applied.
    warnings
        The validator's warnings (errors make :func:`render_template` raise).
    """

    template: Template
    values: dict[str, Any]
    text: str
    warnings: list[Diagnostic]

    @property
    def project(self) -> str:
        """The project name the Boltfile gives."""
        return Boltfile.loads(self.text).project or self.template.name


def render_template(template: Template, values: Mapping[str, Any] | None = None, *,
                    project: str | None = None) -> RenderedTemplate:
    """Render ``template`` for ``values`` and validate the Boltfile it gives.

    Parameters
    ----------
    template
        The template.
    values
        Variable name -> value (text or typed); the defaults fill the others.
    project
        The project name to deploy as (default: the template's ``project``); two
        deployments of one template need two names.

    Raises
    ------
    VariableError
        A value does not fit its variable (each problem by variable name).
    InvalidTemplateBoltfile
        The rendered Boltfile has validator errors.
    """
    resolved = template.values(values)
    text = template.render(resolved)
    boltfile = Boltfile.loads(text, path=f"<template {template.qualified_name}>")
    if project is not None:
        boltfile.set_project(project)
        text = boltfile.dumps()
    diagnostics = validate(boltfile)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise InvalidTemplateBoltfile(template, errors)
    return RenderedTemplate(template, resolved, text,
                            [d for d in diagnostics if d.severity != "error"])


def deployed_path(project: str, home: Path | None = None) -> Path:
    """Where the Boltfile of a template deployed as ``project`` is kept."""
    return (home or default_home()) / "templates" / "deployed" / project / "Boltfile.toml"


async def deploy_template(rendered: RenderedTemplate, environments: Sequence[Environment],
                          *, progress: ProgressCallback | None = None,
                          home: Path | None = None, on_cancel: CancelCallback | None = None,
                          **apply_options: Any) -> SurgeResult:
    """Apply a rendered template with Surge (all or nothing, as ``surge apply``).

    Parameters
    ----------
    rendered
        From :func:`render_template`.
    environments
        Where to deploy.
    progress
        Called after each step with a :class:`~ghostpanel_kernel.surge.SurgeProgress`.
    home
        GhostPanel's home (default: :func:`~._sources.default_home`), where the
        Boltfile is saved (see :func:`deployed_path`).
    on_cancel
        As :func:`~ghostpanel_kernel.surge.apply_surge`'s.
    **apply_options
        Passed to :func:`~ghostpanel_kernel.surge.apply_surge` (``stop_timeout``,
        ``health_timeout``, ``pull``...).
    """
    path = deployed_path(rendered.project, home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Only its owner may read it: a template's secrets (passwords) are in it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(rendered.text)
    boltfile = Boltfile.load(path)
    return await apply_surge(boltfile, environments, progress=progress, on_cancel=on_cancel,
                             **apply_options)
