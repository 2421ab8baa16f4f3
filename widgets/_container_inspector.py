"""``ContainerInspector``: one container's configuration, environment, mounts, ports,
health and raw inspect JSON, in tabs.

Environment values whose key looks secret (``DB_PASSWORD``, ``API_TOKEN``...) are
masked until the operator asks to see them; the Raw JSON tab masks them too, so that a
screen share or a saved notebook does not leak them by another route.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets
from traitlets import Bool, observe

from ghostpanel_kernel._units import format_duration_ns
from ghostpanel_kernel.engine import Container, Environment

from ._base import ContainerWidget
from ._format import format_time, html_table

__all__ = ["MASK", "SECRET_KEY_PATTERN", "ContainerInspector", "is_secret_key",
           "mask_secrets", "port_rows"]

#: Words that make an environment variable's value secret (matched case-insensitively
#: anywhere in the key: ``DB_PASSWORD``, ``aws_secret_access_key``, ``GH_TOKEN``).
SECRET_KEY_PATTERN = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)

#: What a masked value shows.
MASK = "\u2022" * 8

# Secret values shorter than this are masked in Env only: replacing every "1" or "ab"
# elsewhere in the raw JSON would garble it.
_MIN_MASKED_ELSEWHERE = 4

_TABS = ("Config", "Env", "Mounts", "Ports", "Health", "History", "Raw JSON")
#: The History tab's chart is built when the tab is first opened: it loads Panel and
#: Bokeh and reads the metrics store, which an inspector that is never asked for its
#: history should not pay for.
_HISTORY = _TABS.index("History")


def is_secret_key(key: str) -> bool:
    """Whether an environment variable called ``key`` holds a secret.

    Examples
    --------
    >>> is_secret_key("DB_PASSWORD"), is_secret_key("api_key"), is_secret_key("PATH")
    (True, True, False)
    """
    return bool(SECRET_KEY_PATTERN.search(key))


def _env_pairs(attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
    entries = (attrs.get("Config") or {}).get("Env") or []
    pairs = []
    for entry in entries:
        key, _, value = str(entry).partition("=")
        pairs.append((key, value))
    return pairs


def mask_secrets(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a container's inspect JSON with the secret environment values masked.

    ``Config.Env`` entries of secret keys become ``KEY=••••••••``; the same values are
    masked wherever else they appear (Podman's ``CreateCommand`` repeats ``-e`` flags).
    """
    masked = copy.deepcopy(dict(attrs))
    secrets = sorted({value for key, value in _env_pairs(attrs)
                      if is_secret_key(key) and value}, key=len, reverse=True)
    if not secrets:
        return masked

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                if len(secret) >= _MIN_MASKED_ELSEWHERE:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        return value

    config = masked.get("Config")
    if isinstance(config, dict) and config.get("Env"):
        config["Env"] = [f"{key}={MASK}" if is_secret_key(key) and value else f"{key}={value}"
                         for key, value in _env_pairs(masked)]
    result: dict[str, Any] = scrub(masked)
    return result


def _command(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        return value
    return shlex.join(str(part) for part in value)


def _duration(nanoseconds: Any) -> str:
    """A healthcheck interval as Go writes it (``"1m30s"``), ``""`` when unset."""
    return format_duration_ns(int(nanoseconds)) if nanoseconds else ""


def _restart_policy(host_config: Mapping[str, Any]) -> str:
    policy = host_config.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    retries = policy.get("MaximumRetryCount")
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def _config_html(attrs: Mapping[str, Any]) -> str:
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    state = attrs.get("State") or {}
    rows = [
        ("Name", str(attrs.get("Name") or "").lstrip("/")),
        ("Id", str(attrs.get("Id") or "")),
        ("Image", str(config.get("Image") or attrs.get("ImageName") or "")),
        ("Command", _command(config.get("Cmd"))),
        ("Entrypoint", _command(config.get("Entrypoint"))),
        ("Working dir", str(config.get("WorkingDir") or "")),
        ("User", str(config.get("User") or "") or "(image default)"),
        ("Restart policy", _restart_policy(host)),
        ("State", str(state.get("Status") or "") if isinstance(state, dict) else str(state)),
        ("Created", format_time(attrs.get("Created"))),
        ("Started", format_time(state.get("StartedAt")) if isinstance(state, dict) else ""),
    ]
    labels = sorted((config.get("Labels") or {}).items())
    return (html_table(["Setting", "Value"], rows, css_class="gp-config")
            + "<b>Labels</b>"
            + html_table(["Label", "Value"], labels, empty="No labels.",
                         css_class="gp-labels"))


def _env_html(attrs: Mapping[str, Any], *, reveal: bool) -> str:
    rows = [(key, value if reveal or not is_secret_key(key) or not value else MASK)
            for key, value in _env_pairs(attrs)]
    return html_table(["Variable", "Value"], rows, empty="No environment variables.",
                      css_class="gp-env")


def _mounts_html(attrs: Mapping[str, Any]) -> str:
    rows = []
    for mount in attrs.get("Mounts") or []:
        source = mount.get("Name") or mount.get("Source") or ""
        rows.append((str(mount.get("Type") or ""), str(source),
                     str(mount.get("Destination") or ""),
                     "rw" if mount.get("RW", True) else "ro", str(mount.get("Mode") or "")))
    return html_table(["Type", "Source", "Destination", "Access", "Mode"], rows,
                      empty="No mounts.", css_class="gp-mounts")


def port_rows(attrs: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(container port, host IP, host port)`` of each published or exposed port.

    A created container that never ran has no ``NetworkSettings.Ports`` on some
    engines: its ``HostConfig.PortBindings`` say the same.
    """
    network = attrs.get("NetworkSettings") or {}
    bindings: Mapping[str, Any] = network.get("Ports") or \
        (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    rows: list[tuple[str, str, str]] = []
    for inner, published in bindings.items():
        if not published:
            rows.append((inner, "", ""))
            continue
        for binding in published:
            rows.append((inner, str(binding.get("HostIp") or "0.0.0.0"),
                         str(binding.get("HostPort") or "")))
    for inner in (attrs.get("Config") or {}).get("ExposedPorts") or {}:
        if inner not in bindings:
            rows.append((inner, "", ""))
    return sorted(rows, key=lambda row: (_port_number(row[0]), row))


def _port_number(spec: str) -> int:
    number = spec.split("/", 1)[0]
    return int(number) if number.isdigit() else 0


def _ports_html(attrs: Mapping[str, Any]) -> str:
    return html_table(["Container port", "Host IP", "Host port"], port_rows(attrs),
                      empty="No ports published or exposed.", css_class="gp-ports")


_HEALTH_COLOURS = {"healthy": "#1b7f3b", "unhealthy": "#b00020", "starting": "#a15c00"}


def _health_html(attrs: Mapping[str, Any], *, last: int = 5) -> str:
    state = attrs.get("State") if isinstance(attrs.get("State"), dict) else {}
    assert isinstance(state, dict)
    health = state.get("Health") or state.get("Healthcheck") or {}
    check = (attrs.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test == ["NONE"]:
        return "<i>No healthcheck configured.</i>"
    status = str(health.get("Status") or "not checked yet")
    colour = _HEALTH_COLOURS.get(status, "#555555")
    if test[0] == "CMD-SHELL":  # one string for the shell, as written
        command = " ".join(str(part) for part in test[1:])
    else:
        command = _command(test[1:] if test[0] == "CMD" else test)
    settings = [("Status", status), ("Failing streak", str(health.get("FailingStreak") or 0)),
                ("Test", f"{test[0]} {command}"), ("Interval", _duration(check.get("Interval"))),
                ("Timeout", _duration(check.get("Timeout"))),
                ("Retries", str(check.get("Retries") or "")),
                ("Start period", _duration(check.get("StartPeriod")))]
    log = list(health.get("Log") or [])[-last:]
    entries = [(format_time(entry.get("Start")), str(entry.get("ExitCode", "")),
                str(entry.get("Output") or "").strip()) for entry in reversed(log)]
    return (f'<div class="gp-health-status" style="color: {colour}; font-weight: bold">'
            f"{html.escape(status)}</div>"
            + html_table(["Setting", "Value"], [s for s in settings if s[1]],
                         css_class="gp-health")
            + f"<b>Last {len(entries)} checks</b>"
            + html_table(["Started", "Exit code", "Output"], entries,
                         empty="No check has run yet.", css_class="gp-health-log"))


def _raw_html(attrs: Mapping[str, Any], *, reveal: bool) -> str:
    shown = dict(attrs) if reveal else mask_secrets(attrs)
    text = json.dumps(shown, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return ('<pre class="gp-raw-json" style="max-height: 480px; overflow: auto; margin: 0">'
            f"{html.escape(text)}</pre>")


class ContainerInspector(ContainerWidget):
    """One container, inspected: Config, Env, Mounts, Ports, Health, History (its metrics
    over time) and Raw JSON tabs.

    Parameters
    ----------
    env
        The environment (``ghostpanel_kernel.connect(...)``).
    container
        The container's name or id, or a :class:`~ghostpanel_kernel.engine.Container`.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> env = connect("unix:///run/podman/podman.sock")                  # doctest: +SKIP
    >>> ContainerInspector(env, "web")                                   # doctest: +SKIP
    """

    reveal_secrets = Bool(False, help="Show the values of secret-looking environment "
                          "variables (masked by default).").tag(sync=True)

    def __init__(self, env: Environment, container: str | Container, **kwargs: Any) -> None:
        self.attrs: dict[str, Any] = {}
        self.title = ipywidgets.HTML()
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.reveal_button = ipywidgets.ToggleButton(
            value=False, description="Reveal secrets", icon="eye",
            tooltip="Show the values of PASSWORD/SECRET/TOKEN/KEY variables")
        self.config_view = ipywidgets.HTML()
        self.env_view = ipywidgets.HTML()
        self.mounts_view = ipywidgets.HTML()
        self.ports_view = ipywidgets.HTML()
        self.health_view = ipywidgets.HTML()
        self.raw_view = ipywidgets.HTML()
        self.history_box = ipywidgets.VBox()
        self.history_chart: Any = None  # a MetricsChart, once the History tab is opened
        self.tabs = ipywidgets.Tab(
            children=[self.config_view, ipywidgets.VBox([self.reveal_button, self.env_view]),
                      self.mounts_view, self.ports_view, self.health_view,
                      self.history_box, self.raw_view],
            titles=_TABS)
        self.tabs.observe(self._tab_selected, "selected_index")
        super().__init__(env, container, **kwargs)
        self.add_class("gp-container-inspector")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.reveal_button.observe(self._reveal_toggled, "value")
        self.children = [ipywidgets.HBox([self.title, self.refresh_button]), self.status,
                         self.tabs]
        self.title.value = f"<b>{html.escape(self.container_name)}</b>"
        self._start("Inspect", self.refresh)

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button,)

    def _tab_selected(self, change: dict[str, Any]) -> None:
        if change["new"] == _HISTORY and self.history_chart is None:
            from ._metrics_chart import MetricsChart

            # The container's CPU and memory history from the metrics store (the local
            # one, or the agent's: docs/metrics.md); the chart has its own window picker.
            self.history_chart = MetricsChart(self.env, self.container_name)
            self.history_box.children = [self.history_chart]

    def _reveal_toggled(self, change: dict[str, Any]) -> None:
        self.reveal_secrets = bool(change["new"])

    @observe("reveal_secrets")
    def _reveal_changed(self, change: dict[str, Any]) -> None:
        self.reveal_button.value = bool(change["new"])
        self.reveal_button.icon = "eye-slash" if change["new"] else "eye"
        self.reveal_button.description = "Hide secrets" if change["new"] else "Reveal secrets"
        self._render()

    async def refresh(self) -> Container | None:
        """Inspect the container again; ``None`` (the error shown, the last inspect kept)
        when the engine failed."""
        with self.status.reporting(f"Inspect {self.container_name}"), \
                self._forgetting_on_not_found():
            self._container = None
            container = await self.container()
            self.attrs = dict(container.attrs)
            self._render()
            self.status.clear()
            return container
        return None

    def _render(self) -> None:
        attrs = self.attrs
        if not attrs:
            return
        reveal = self.reveal_secrets
        name = str(attrs.get("Name") or self.container_name).lstrip("/")
        state = attrs.get("State") if isinstance(attrs.get("State"), dict) else {}
        assert isinstance(state, dict)
        status = str(state.get("Status") or "")
        health = str((state.get("Health") or state.get("Healthcheck") or {}).get("Status")
                     or "")
        image = str((attrs.get("Config") or {}).get("Image") or "")
        self.title.value = (f"<b>{html.escape(name)}</b> &middot; <code>"
                            f"{html.escape(image)}</code> &middot; {html.escape(status)}"
                            + (f" ({html.escape(health)})" if health else ""))
        self.config_view.value = _config_html(attrs)
        self.env_view.value = _env_html(attrs, reveal=reveal)
        self.mounts_view.value = _mounts_html(attrs)
        self.ports_view.value = _ports_html(attrs)
        self.health_view.value = _health_html(attrs)
        self.raw_view.value = _raw_html(attrs, reveal=reveal)
