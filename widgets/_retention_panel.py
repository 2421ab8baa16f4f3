"""The retention part of the ``SnapshotPicker``: policy fields, the plan they give, and
the HTML that shows which snapshots it keeps or removes, and why.

The plan comes from the kernel's ``plan_retention`` (restic's ``forget`` rules,
docs/snapshots.md), so the preview is exactly what a prune then does.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets

from ghostpanel_kernel.snapshots import RetentionPlan, Snapshot

__all__ = ["POLICY_FIELDS", "RetentionPanel", "plan_html"]

#: The ``[snapshots.retention]`` keys the panel edits, with their labels.
POLICY_FIELDS: dict[str, str] = {
    "keep_hourly": "Hourly",
    "keep_daily": "Daily",
    "keep_weekly": "Weekly",
    "keep_monthly": "Monthly",
    "keep_yearly": "Yearly",
    "max_total": "Max total",
}

_KEEP = "#1b7f3b"
_REMOVE = "#b00020"


def plan_html(plan: RetentionPlan, snapshots: Sequence[Snapshot]) -> str:
    """The plan as a table: each snapshot, kept (with the rules that keep it) or removed.

    Examples
    --------
    >>> from ghostpanel_kernel.snapshots import plan_retention
    >>> plan = plan_retention([{"name": "a", "time": "2026-12-07T02:00:00Z"},
    ...                        {"name": "b", "time": "2026-12-07T01:00:00Z"}],
    ...                       {"keep_daily": 1})
    >>> text = plan_html(plan, [])
    >>> "keep_daily" in text and "remove" in text
    True
    """
    created = {s.name: s.created for s in snapshots}
    rows = [(name, "keep", ", ".join(plan.reasons.get(name, []))) for name in plan.keep]
    rows += [(name, "remove", "no rule keeps it") for name in plan.remove]
    # Newest first across both lists, as the timeline shows them.
    rows.sort(key=lambda row: (created[row[0]].timestamp() if row[0] in created else 0,
                               row[0]), reverse=True)
    if not rows:
        return "<i>No snapshots: nothing to keep or remove.</i>"
    body = "".join(
        f'<tr><td style="color: {_KEEP if action == "keep" else _REMOVE}; '
        f'padding-right: 12px"><b>{action}</b></td>'
        f'<td style="padding-right: 12px"><code>{html.escape(name)}</code></td>'
        f"<td>{html.escape(why)}</td></tr>" for name, action, why in rows)
    summary = (f"<b>{len(plan.remove)}</b> would be deleted, <b>{len(plan.keep)}</b> kept"
               if plan.remove else f"Nothing would be deleted ({len(plan.keep)} kept)")
    return (f'<div class="gp-retention-plan">{summary}.<table style="border-collapse: '
            f'collapse"><thead><tr><th align="left">Action</th><th align="left">Snapshot'
            f'</th><th align="left">Why</th></tr></thead><tbody>{body}</tbody></table></div>')


class RetentionPanel(ipywidgets.VBox):
    """Policy fields (``keep_*`` counts, ``max_total``), Preview and Prune buttons, and
    the plan's table.

    A field left at 0 is not part of the policy (0 switches a rule off, and an empty
    policy deletes nothing); -1 keeps every bucket of that rule.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.fields = {key: ipywidgets.IntText(value=0, description=label,
                                               layout=ipywidgets.Layout(width="160px"),
                                               style={"description_width": "70px"})
                       for key, label in POLICY_FIELDS.items()}
        self.preview_button = ipywidgets.Button(description="Preview", icon="eye",
                                                tooltip="Show what the policy keeps and "
                                                        "removes; deletes nothing")
        self.prune_button = ipywidgets.Button(description="Prune", icon="eraser",
                                              button_style="warning", disabled=True,
                                              tooltip="Delete what the previewed plan removes")
        self.plan_view = ipywidgets.HTML()
        fields = list(self.fields.values())
        super().__init__([
            ipywidgets.HTML("<b>Retention</b> (0: rule off, -1: all)"),
            ipywidgets.HBox(fields[:3]), ipywidgets.HBox(fields[3:]),
            ipywidgets.HBox([self.preview_button, self.prune_button]),
            self.plan_view], **kwargs)
        self.add_class("gp-retention")
        self.previewed: Mapping[str, int] | None = None
        for field in fields:
            field.observe(lambda _: self.forget_preview(), "value")

    @property
    def policy(self) -> dict[str, int]:
        """The policy the fields give: every field that is not 0."""
        return {key: int(field.value) for key, field in self.fields.items() if field.value}

    @policy.setter
    def policy(self, policy: Mapping[str, Any]) -> None:
        unknown = set(policy) - set(self.fields)
        if unknown:
            raise ValueError(f"unknown retention key(s) {', '.join(sorted(unknown))}: "
                             f"the panel has {', '.join(self.fields)}")
        for key, field in self.fields.items():
            field.value = int(policy.get(key, 0))

    def show_plan(self, plan: RetentionPlan, snapshots: Sequence[Snapshot],
                  policy: Mapping[str, int]) -> None:
        """Show ``plan``; Prune is offered only when it removes something."""
        self.plan_view.value = plan_html(plan, snapshots)
        self.previewed = dict(policy)
        self.prune_button.disabled = not plan.remove

    def forget_preview(self) -> None:
        """The fields changed: the plan shown is no longer the one a prune would run."""
        self.previewed = None
        self.prune_button.disabled = True
        if self.plan_view.value:
            self.plan_view.value = "<i>The policy changed: press Preview again.</i>"
