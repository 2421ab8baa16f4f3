"""``EnvironmentPicker``: choose environments from the registry (and the detected local
engine), labels shown; other widgets observe its ``value``.

>>> picker = EnvironmentPicker()                                        # doctest: +SKIP
>>> table = ContainerList(picker.specs)                                  # doctest: +SKIP
>>> picker.observe(lambda _: table.set_environments(picker.specs), "value")
...                                                                     # doctest: +SKIP

Hand widgets ``picker.specs``: they open the environments and close them when done.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Bool, TraitError, Tuple, Unicode, observe, validate

from ._status import StatusLine, describe_error

if TYPE_CHECKING:
    from ghostpanel_kernel.engine import Environment
    from ghostpanel_kernel.environments import EnvironmentRegistry, EnvironmentSpec

__all__ = ["EnvironmentPicker", "describe_spec"]


def describe_spec(spec: EnvironmentSpec, *, default: bool = False) -> str:
    """How an environment reads in the picker: name, markers, endpoint, labels.

    Examples
    --------
    >>> from ghostpanel_kernel.environments import EnvironmentSpec
    >>> describe_spec(EnvironmentSpec("gpu-1", "tcp://10.0.0.9:2375",
    ...                               labels={"region": "eu", "tier": "gpu"}), default=True)
    'gpu-1 (default) \u2014 tcp://10.0.0.9:2375 \u00b7 region=eu, tier=gpu'
    """
    markers = [word for word, on in (("detected", spec.detected), ("default", default)) if on]
    labels = {key: value for key, value in spec.labels.items()
              if not (spec.detected and key == "detected")}
    text = spec.name + (f" ({', '.join(markers)})" if markers else "")
    text += f" \u2014 {spec.url}"
    if labels:
        text += " \u00b7 " + ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return text


class EnvironmentPicker(ipywidgets.VBox):
    """A list of the registered environments, plus the local engine when one answers, to
    pick one or several from.

    Parameters
    ----------
    registry
        Where the environments are registered; a default
        :class:`~ghostpanel_kernel.environments.EnvironmentRegistry` (closed by
        :meth:`close`) when None.
    multiple
        Several environments may be picked (a list box); False: one (a dropdown).
    value
        Names to pick first; the registry's default environment (else ``local``, else
        the first one) when None.

    Examples
    --------
    >>> picker = EnvironmentPicker()                         # doctest: +SKIP
    >>> picker.value = ("local", "us-east-1")                 # doctest: +SKIP
    >>> [env.name for env in picker.environments()]           # doctest: +SKIP
    ['local', 'us-east-1']
    """

    value = Tuple(help="Names of the picked environments, in the registry's order."
                  ).tag(sync=True)
    multiple = Bool(True, help="Whether several environments may be picked.",
                    read_only=True).tag(sync=True)
    default_name = Unicode("", help="The registry's default environment ('' if none).",
                           read_only=True).tag(sync=True)

    def __init__(self, registry: EnvironmentRegistry | None = None, *,
                 multiple: bool = True, value: Iterable[str] | None = None,
                 rows: int = 5, **kwargs: Any) -> None:
        self._owns_registry = registry is None
        if registry is None:
            # In a JupyterHub session: the gateway's environments.
            from ghostpanel_kernel.environments import session_registry

            registry = session_registry()
        self._registry = registry
        self._specs: dict[str, EnvironmentSpec] = {}
        self._syncing = False

        self.status = StatusLine()
        self.selector: ipywidgets.SelectMultiple | ipywidgets.Dropdown
        if multiple:
            self.selector = ipywidgets.SelectMultiple(
                options=[], rows=rows, description="environments",
                layout=ipywidgets.Layout(width="auto", min_width="420px"),
                style={"description_width": "initial"})
        else:
            self.selector = ipywidgets.Dropdown(
                options=[], description="environment",
                layout=ipywidgets.Layout(width="auto", min_width="420px"),
                style={"description_width": "initial"})
        self.reload_button = ipywidgets.Button(
            description="Reload", icon="sync",
            tooltip="Read the registry again (and look for a local engine)")
        self.details = ipywidgets.HTML()

        super().__init__(**kwargs)
        self.add_class("gp-environment-picker")
        self.set_trait("multiple", bool(multiple))
        self.selector.observe(self._selector_changed, "value")
        self.reload_button.on_click(lambda _: self.reload())
        self.children = [ipywidgets.HBox([self.selector, self.reload_button]), self.status,
                         self.details]
        self.reload(select=value)

    # -- traits
    @validate("value")
    def _valid_value(self, proposal: dict[str, Any]) -> tuple[str, ...]:
        given = proposal["value"]
        names = (given,) if isinstance(given, str) else tuple(given)
        unknown = [name for name in names if name not in self._specs]
        if unknown:
            known = ", ".join(self._specs) or "none"
            raise TraitError(f"no environment {', '.join(map(repr, unknown))} (known: "
                             f"{known})")
        if not self.multiple and len(set(names)) > 1:
            raise TraitError(f"this picker takes one environment, not {len(set(names))}")
        picked = set(names)
        return tuple(name for name in self._specs if name in picked)  # registry order

    @observe("value")
    def _value_changed(self, change: dict[str, Any]) -> None:
        self._syncing = True
        try:
            if isinstance(self.selector, ipywidgets.SelectMultiple):
                self.selector.value = tuple(change["new"])
            else:
                self.selector.value = change["new"][0] if change["new"] else None
        finally:
            self._syncing = False
        self._show_details()

    def _selector_changed(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        new = change["new"]
        self.value = tuple(new) if isinstance(new, tuple) else (() if new is None else (new,))

    # -- public API
    @property
    def registry(self) -> EnvironmentRegistry:
        """The registry the environments come from."""
        return self._registry

    @property
    def options(self) -> list[EnvironmentSpec]:
        """Every environment offered, as the registry lists it."""
        return list(self._specs.values())

    @property
    def specs(self) -> list[EnvironmentSpec]:
        """The picked environments, not opened."""
        return [self._specs[name] for name in self.value]

    def environments(self) -> list[Environment]:
        """The picked environments, opened (connections are made on first use); the
        caller closes them (``await env.aclose()``), or hands them to a widget that
        shows them."""
        return [spec.open() for spec in self.specs]

    def reload(self, *, select: Iterable[str] | None = None) -> None:
        """Read the registry again; keep what was picked where it is still there.

        A registry that cannot be read leaves the list as it was and says why in the
        status line.
        """
        from sqlalchemy.exc import SQLAlchemyError

        from ghostpanel_kernel.engine import GhostPanelError

        try:
            specs = self._registry.list()
            default = self._registry.default_name() or ""
        except (SQLAlchemyError, GhostPanelError, OSError, ValueError) as error:
            self.status.error(f"Cannot read the environments: {describe_error(error)}")
            return
        self.status.clear()
        self._specs = {spec.name: spec for spec in specs}
        self.set_trait("default_name", default if default in self._specs else "")
        wanted = list(select) if select is not None else [
            name for name in self.value if name in self._specs]
        if select is not None:
            unknown = [name for name in wanted if name not in self._specs]
            if unknown:
                self.status.warning(f"No environment {', '.join(map(repr, unknown))}; "
                                    "picking the default instead.")
                wanted = []
        if not wanted:
            wanted = self._first_choice()
        self._syncing = True
        try:
            self.selector.options = [(describe_spec(spec, default=spec.name == default),
                                      spec.name) for spec in specs]
        finally:
            self._syncing = False
        self.value = tuple(wanted)
        self._value_changed({"new": self.value})  # options were replaced: show it again
        if not specs:
            self.status.warning("No environment is registered and no local engine "
                                "answered: run `ghostpanel env add NAME URL`, or start "
                                "an engine, then Reload.")
        elif self.status.level != "warning":
            self.status.clear()

    def _first_choice(self) -> list[str]:
        for name in (self.default_name, "local"):
            if name and name in self._specs:
                return [name]
        return list(self._specs)[:1]

    def close(self) -> None:
        """Close the views (and the registry, when the picker made it)."""
        if self._owns_registry:
            self._registry.close()
        for child in (self.selector, self.reload_button, self.status, self.details):
            child.close()
        super().close()

    # -- rendering
    def _show_details(self) -> None:
        rows = []
        for spec in self.specs:
            labels = ", ".join(f"{html.escape(k)}={html.escape(v)}"
                               for k, v in sorted(spec.labels.items()))
            rows.append(f"<tr><td><b>{html.escape(spec.name)}</b></td>"
                        f"<td><code>{html.escape(spec.url)}</code></td>"
                        f"<td>{labels or '&mdash;'}</td></tr>")
        self.details.value = (
            '<table class="gp-environments" style="border-spacing: 12px 2px">'
            f"{''.join(rows)}</table>" if rows else "<i>No environment picked.</i>")
