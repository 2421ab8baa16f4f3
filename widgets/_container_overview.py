"""What :class:`~._container_page.ContainerPage` shows of a container at a glance: its
header (name, state badge, health, image) and its Overview tab, made from the engine's
inspect JSON.

Pure functions, no ipywidgets: the page calls them after each inspect, and the unit
tests call them on inspect answers of their own.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ghostpanel_kernel._units import human_size

from ._container_inspector import _command, _restart_policy, port_rows
from ._format import format_time, html_table

__all__ = ["STATE_COLOURS", "header_html", "health_of", "last_health_line", "link_host",
           "mounts_summary", "overview_html", "port_links", "resources"]

#: Badge colour of each state; others (``removing``, ``unknown``...) are grey.
STATE_COLOURS = {"running": "#1b7f3b", "paused": "#a15c00", "restarting": "#a15c00",
                 "created": "#1f5fa8", "exited": "#b00020", "stopped": "#b00020",
                 "dead": "#b00020", "removed": "#555555"}
_HEALTH_COLOURS = {"healthy": "#1b7f3b", "unhealthy": "#b00020", "starting": "#a15c00"}
# Host addresses that mean "every interface": a link goes to the engine's host instead.
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})


def _state(attrs: Mapping[str, Any]) -> dict[str, Any]:
    state = attrs.get("State")
    return state if isinstance(state, dict) else {}


def health_of(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``State.Health`` object (Podman 4 also names it ``Healthcheck``), or ``{}``."""
    state = _state(attrs)
    health = state.get("Health") or state.get("Healthcheck") or {}
    return health if isinstance(health, dict) else {}


def last_health_line(attrs: Mapping[str, Any]) -> str:
    """The last healthcheck's exit code and the last line of its output, ``""`` when
    no check has run.

    Examples
    --------
    >>> last_health_line({"State": {"Health": {"Log": [
    ...     {"ExitCode": 1, "Output": "connecting...\\nrefused\\n"}]}}})
    'exit 1: refused'
    """
    log = health_of(attrs).get("Log") or []
    if not log:
        return ""
    entry = log[-1]
    lines = [line for line in str(entry.get("Output") or "").splitlines() if line.strip()]
    return f"exit {entry.get('ExitCode', '?')}: {lines[-1].strip() if lines else '(no output)'}"


def link_host(engine_url: str, host_ip: str) -> str:
    """The host a browser reaches a published port on: the binding's own address, or
    the engine's host when the port is bound to every interface.

    Examples
    --------
    >>> link_host("unix:///run/podman/podman.sock", "0.0.0.0")
    'localhost'
    >>> link_host("tcp://bolt-7.lan:2375", ""), link_host("tcp://bolt-7.lan:2375", "10.0.0.5")
    ('bolt-7.lan', '10.0.0.5')
    >>> link_host("unix:///run/podman/podman.sock", "::1")
    '[::1]'
    """
    if host_ip not in _ANY_ADDRESS:
        return f"[{host_ip}]" if ":" in host_ip else host_ip
    parts = urlsplit(engine_url)
    if parts.scheme in ("unix", "npipe", "") or not parts.hostname:
        return "localhost"  # a local socket: the engine's host is the browser's too
    host = parts.hostname
    return f"[{host}]" if ":" in host else host


def port_links(attrs: Mapping[str, Any], engine_url: str) -> list[tuple[str, str]]:
    """``(text, url)`` of each port; ``url`` is ``""`` for a port that is only exposed,
    or not TCP (a browser cannot open it).

    Examples
    --------
    >>> port_links({"NetworkSettings": {"Ports": {"80/tcp": [
    ...     {"HostIp": "", "HostPort": "8080"}], "53/udp": None}}}, "tcp://h:2375")
    [('53/udp (not published)', ''), ('h:8080 \u2192 80/tcp', 'http://h:8080/')]
    """
    links = []
    for inner, host_ip, host_port in port_rows(attrs):
        if not host_port:
            links.append((f"{inner} (not published)", ""))
            continue
        host = link_host(engine_url, host_ip)
        text = f"{host}:{host_port} \u2192 {inner}"
        url = f"http://{host}:{host_port}/" if inner.endswith("/tcp") or "/" not in inner \
            else ""
        links.append((text, url))
    return links


def resources(attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The container's CPU, memory and process limits, ``unlimited`` where unset.

    Examples
    --------
    >>> resources({"HostConfig": {"NanoCpus": 1500000000, "Memory": 268435456}})
    [('CPUs', '1.5'), ('Memory', '256 MiB'), ('Memory reservation', 'none'), \
('PIDs', 'unlimited')]
    """
    host = attrs.get("HostConfig") or {}
    cpus = ""
    if host.get("NanoCpus"):
        cpus = f"{int(host['NanoCpus']) / 1e9:g}"
    elif host.get("CpuQuota") and host.get("CpuPeriod"):  # Podman sets these for --cpus
        cpus = f"{int(host['CpuQuota']) / int(host['CpuPeriod']):g}"
    if host.get("CpusetCpus"):
        cpus = f"{cpus} (on CPUs {host['CpusetCpus']})".strip()
    memory = int(host.get("Memory") or 0)
    reservation = int(host.get("MemoryReservation") or 0)
    pids = int(host.get("PidsLimit") or 0)  # 0 and -1 both mean no limit
    return [("CPUs", cpus or "unlimited"),
            ("Memory", human_size(memory, binary=True, space=True) if memory > 0
             else "unlimited"),
            ("Memory reservation", human_size(reservation, binary=True, space=True)
             if reservation > 0 else "none"),
            ("PIDs", str(pids) if pids > 0 else "unlimited")]


def mounts_summary(attrs: Mapping[str, Any]) -> list[str]:
    """One line per mount: ``volume data → /data (ro)``.

    Examples
    --------
    >>> mounts_summary({"Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/w",
    ...                             "RW": False}]})
    ['bind /srv \u2192 /w (ro)']
    """
    lines = []
    for mount in attrs.get("Mounts") or []:
        source = mount.get("Name") or mount.get("Source") or ""
        access = "rw" if mount.get("RW", True) else "ro"
        lines.append(f"{mount.get('Type') or 'mount'} {source} \u2192 "
                     f"{mount.get('Destination') or ''} ({access})")
    return lines


def _badge(text: str, colour: str, css_class: str) -> str:
    return (f'<span class="{css_class}" style="background: {colour}; color: white; '
            f'border-radius: 8px; padding: 1px 8px; font-size: 0.85em">'
            f"{html.escape(text)}</span>")


def header_html(name: str, attrs: Mapping[str, Any], *, state: str) -> str:
    """The page's title line: name, state badge, health badge, image.

    ``state`` is what the page knows (``removed``, or the state an event said before
    the inspect that follows it).
    """
    health = str(health_of(attrs).get("Status") or "") if state != "removed" else ""
    image = str((attrs.get("Config") or {}).get("Image") or attrs.get("ImageName") or "")
    parts = [f'<b style="font-size: 1.25em">{html.escape(name)}</b>',
             _badge(state or "unknown", STATE_COLOURS.get(state, "#555555"), "gp-state-badge")]
    if health:
        parts.append(_badge(health, _HEALTH_COLOURS.get(health, "#555555"),
                            "gp-health-badge"))
    if image:
        parts.append(f"<code>{html.escape(image)}</code>")
    return '<div class="gp-page-title">' + " &nbsp;".join(parts) + "</div>"


def _value(text: str) -> str:
    return f"<code>{html.escape(text)}</code>" if text else "<i>none</i>"


def _rows_table(rows: Sequence[tuple[str, str]], css_class: str) -> str:
    """Setting/value rows whose values are HTML already (links, lists)."""
    cell = 'style="text-align: left; padding: 2px 14px 2px 0; vertical-align: top"'
    body = "".join(f'<tr><th {cell}>{html.escape(key)}</th><td {cell}>{value}</td></tr>'
                   for key, value in rows)
    return (f'<table class="{css_class}" style="border-collapse: collapse; margin: 2px 0">'
            f"<tbody>{body}</tbody></table>")


def overview_html(attrs: Mapping[str, Any], *, engine_url: str, state: str) -> str:
    """The Overview tab: state, health, ports as links, image, command, entrypoint,
    restart policy, resources, times, mounts and labels."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    status = _state(attrs)
    state_text = state or str(status.get("Status") or "")
    if state_text in ("exited", "stopped", "dead") and "ExitCode" in status:
        state_text += f" (exit code {status['ExitCode']})"
    if status.get("Error"):
        state_text += f": {status['Error']}"
    health = health_of(attrs)
    check = (config.get("Healthcheck") or {}).get("Test") or []
    if not check or check == ["NONE"]:
        health_text = "<i>no healthcheck</i>"
    else:
        line = last_health_line(attrs)
        health_text = _value(str(health.get("Status") or "not checked yet")) + \
            (f"<br><span class=\"gp-health-line\">{html.escape(line)}</span>" if line else "")
    links = port_links(attrs, engine_url)
    ports = "<br>".join(
        f'<a class="gp-port-link" href="{html.escape(url)}" target="_blank" '
        f'rel="noopener">{html.escape(text)}</a>' if url else html.escape(text)
        for text, url in links) or "<i>none</i>"
    mounts = "<br>".join(html.escape(line) for line in mounts_summary(attrs)) or \
        "<i>none</i>"
    finished = format_time(status.get("FinishedAt")) if state != "running" else ""
    rows = [
        ("State", _value(state_text)),
        ("Health", health_text),
        ("Ports", ports),
        ("Image", _value(str(config.get("Image") or attrs.get("ImageName") or ""))),
        ("Command", _value(_command(config.get("Cmd")))),
        ("Entrypoint", _value(_command(config.get("Entrypoint")))),
        ("Restart policy", _value(_restart_policy(host))),
        *[(name, _value(value)) for name, value in resources(attrs)],
        ("Created", _value(format_time(attrs.get("Created")))),
        ("Started", _value(format_time(status.get("StartedAt")))),
        *([("Finished", _value(finished))] if finished else []),
        ("Mounts", mounts),
    ]
    labels = sorted((config.get("Labels") or {}).items())
    return (_rows_table(rows, "gp-overview")
            + "<b>Labels</b>"
            + html_table(["Label", "Value"], labels, empty="No labels.",
                         css_class="gp-overview-labels"))
