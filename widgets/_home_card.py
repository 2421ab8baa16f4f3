"""One card of the Home view: an environment's engine in a few lines, and its Open button.

:func:`card_html` is pure (a summary in, HTML out), so what a card says is tested without
an engine; :class:`HomeCard` is the widget: that HTML and a button, in a bordered box.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets

from ._format import format_size, plural
from ._status import LEVELS, describe_error

if TYPE_CHECKING:
    from ghostpanel_kernel.environments._summary import EnvironmentSummary

__all__ = ["HomeCard", "card_html"]

_GREEN, _GREY = "#1b7f3b", "#777777"
_RED = LEVELS["error"][0]
_AMBER = LEVELS["warning"][0]


def _clock(summary: EnvironmentSummary) -> str:
    return summary.refreshed.strftime("%H:%M:%S UTC")


def _count(value: int, noun: str, css: str, *, alert: bool = False) -> str:
    colour = f' style="color: {_AMBER}"' if alert and value else ""
    return (f'<span class="gp-home-{css}"{colour}><b>{value}</b></span> '
            f"{html.escape(noun)}")


def _usage(summary: EnvironmentSummary) -> str:
    """CPU and memory in use, against the host's, and which containers they cover."""
    if summary.cpu_cores is None:
        cpu = "measuring\u2026"  # Podman: from the second refresh on
    else:
        cpu = f"{summary.cpu_cores:.2f}"
        if summary.host_cpus:
            cpu += f" of {summary.host_cpus}"
        cpu += " cores"
    memory = "\u2014" if summary.memory_bytes is None else format_size(summary.memory_bytes)
    if summary.memory_bytes is not None and summary.host_memory:
        memory += f" of {format_size(summary.host_memory)}"
    covered = ""
    if summary.sampled < summary.running:
        covered = (f' <span class="gp-home-partial">({summary.sampled} of '
                   f"{summary.running} running containers sampled)</span>")
    return (f'<div>CPU <span class="gp-home-cpu">{html.escape(cpu)}</span> \u00b7 '
            f'memory <span class="gp-home-memory">{html.escape(memory)}</span>'
            f"{covered}</div>")


def card_html(name: str, url: str, summary: EnvironmentSummary | None, *,
              last_answer: EnvironmentSummary | None = None) -> str:
    """What a card shows of environment ``name``: its last summary, or that none came yet.

    Parameters
    ----------
    name, url
        The environment and its endpoint (shown, so that an unreachable one says which
        socket or URL did not answer).
    summary
        The latest summary; None before the first one arrived.
    last_answer
        The latest summary in which the engine answered: an unreachable card says when
        that was.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from ghostpanel_kernel.environments._summary import EnvironmentSummary
    >>> dead = EnvironmentSummary("gpu-1", "tcp://10.0.0.9:2375",
    ...     datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC), error=OSError("connection refused"))
    >>> "Unreachable: connection refused" in card_html("gpu-1", dead.url, dead)
    True
    """
    if summary is None:
        dot, state = _GREY, "connecting\u2026"
    elif summary.reachable:
        dot, state = _GREEN, "reachable"
    else:
        dot, state = _RED, "unreachable"
    engine = ""
    if summary is not None and summary.reachable:
        engine = f"{summary.engine} {summary.version}".strip()
    parts = [
        f'<div class="gp-home-title" style="font-size: 1.15em">'
        f'<span style="color: {dot}">\u25cf</span> <b>{html.escape(name)}</b> '
        f'<span class="gp-home-state" style="color: {dot}">{state}</span></div>',
        f'<div class="gp-home-url" style="color: {_GREY}; overflow-wrap: anywhere">'
        f"<code>{html.escape(url)}</code></div>",
    ]
    if summary is None:
        parts.append("<div><i>Waiting for the engine's first answer.</i></div>")
    elif summary.reachable:
        parts += [
            f'<div class="gp-home-engine">{html.escape(engine)}</div>',
            "<div>Containers: " + " \u00b7 ".join([
                _count(summary.running, "running", "running"),
                _count(summary.stopped, "stopped", "stopped"),
                _count(summary.unhealthy, "unhealthy", "unhealthy", alert=True)]
                + ([_count(summary.paused, "paused", "paused")] if summary.paused else []))
            + "</div>",
            f"<div>{_count(summary.images, 'images', 'images')} \u00b7 "
            f"{_count(summary.volumes, 'volumes', 'volumes')}</div>",
            _usage(summary),
        ]
    else:
        why = describe_error(summary.error or OSError())
        # The card shows the endpoint above: the error need not end by naming it again.
        why = why.removesuffix(f" (engine at {url})")
        parts.append(f'<div class="gp-home-error" style="color: {_RED}; '
                     f'overflow-wrap: anywhere">Unreachable: {html.escape(why)}</div>')
        if last_answer is not None:
            parts.append(f"<div>Last answered at {_clock(last_answer)}: "
                         f"{plural(last_answer.containers, 'container')}, "
                         f"{last_answer.running} running.</div>")
    if summary is not None:
        parts.append(f'<div class="gp-home-time" style="color: {_GREY}; font-size: 0.9em">'
                     f"Refreshed {_clock(summary)} ({summary.elapsed:.2f} s)</div>")
    return f'<div class="gp-home-card-body" style="line-height: 1.6">{"".join(parts)}</div>'


class HomeCard(ipywidgets.VBox):
    """One environment's card: :func:`card_html` and an Open button.

    Parameters
    ----------
    name, url
        The environment and its endpoint.
    """

    def __init__(self, name: str, url: str, **kwargs: Any) -> None:
        self.name, self.url = name, url
        self.summary: EnvironmentSummary | None = None
        self.last_answer: EnvironmentSummary | None = None
        self.body = ipywidgets.HTML(card_html(name, url, None))
        self.open_button = ipywidgets.Button(
            description=f"Open {name}", icon="arrow-right",
            tooltip=f"Show the containers of {name}",
            layout=ipywidgets.Layout(width="auto"))
        self.open_button.add_class("gp-home-open")
        super().__init__([self.body, self.open_button], layout=ipywidgets.Layout(
            border="1px solid #c8c8c8", padding="6px 12px 10px 12px", min_width="0"),
            **kwargs)
        self.add_class("gp-home-card")

    def show(self, summary: EnvironmentSummary) -> None:
        """Show ``summary`` (a card keeps the last one in which the engine answered)."""
        self.summary = summary
        if summary.reachable:
            self.last_answer = summary
        self.body.value = card_html(self.name, self.url, summary,
                                    last_answer=self.last_answer)
        up = "gp-home-card-up" if summary.reachable else "gp-home-card-down"
        down = "gp-home-card-down" if summary.reachable else "gp-home-card-up"
        self.remove_class(down)
        self.add_class(up)
        self.layout.border = f"1px solid {'#c8c8c8' if summary.reachable else _RED}"
