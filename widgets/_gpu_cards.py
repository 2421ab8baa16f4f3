"""The HTML of the ``GpuAllocator``'s cards: one per GPU (or per MIG device of a GPU in
MIG mode), with small bars for utilisation, memory and temperature, a sparkline of the
recent utilisation, and who holds it.

Pure functions over the kernel's inventory and allocations: no ipywidgets here, so the
cards are tested as text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ghostpanel_kernel.gpus import Allocation, GpuDevice, Inventory, MigInstance

__all__ = ["Unit", "bar_html", "card_html", "message_card_html", "sparkline_svg", "units_of"]

#: Temperatures are drawn on 0..100 °C; from WARM the bar turns orange, from HOT red.
_WARM_C, _HOT_C = 70, 83
_GREEN, _ORANGE, _RED, _GREY = "#2e7d32", "#ef6c00", "#c62828", "#9e9e9e"


@dataclass(frozen=True)
class Unit:
    """What a card shows: a GPU, or one MIG device of a GPU (``mig`` set)."""

    gpu: GpuDevice
    mig: MigInstance | None = None

    @property
    def uuid(self) -> str:
        """The UUID reservations name: ``GPU-...`` or ``MIG-...``."""
        return self.gpu.uuid if self.mig is None else self.mig.uuid

    @property
    def title(self) -> str:
        """``GPU 0 · NVIDIA L4`` or ``GPU 2 MIG 1 · NVIDIA A100 ... MIG 2g.10gb``."""
        if self.mig is None:
            return f"GPU {self.gpu.index} \u00b7 {self.gpu.name}"
        return f"GPU {self.gpu.index} MIG {self.mig.index} \u00b7 {self.mig.name or self.gpu.name}"


def units_of(inventory: Inventory) -> list[Unit]:
    """The cards of an inventory: each GPU, and a GPU in MIG mode as its MIG devices
    (the allocator gives those out one per workload), the GPU itself when it has none."""
    units: list[Unit] = []
    for gpu in inventory.gpus:
        if gpu.mig_enabled and gpu.mig_instances:
            units.extend(Unit(gpu, mig) for mig in gpu.mig_instances)
        else:
            units.append(Unit(gpu))
    return units


def bar_html(label: str, fraction: float | None, text: str, colour: str = _GREEN) -> str:
    """One small horizontal bar (``fraction`` of 0..1 filled); "n/a" when unknown.

    Examples
    --------
    >>> "width: 50%" in bar_html("GPU", 0.5, "50 %")
    True
    >>> "n/a" in bar_html("Power", None, ""), "16 W" in bar_html("Power", None, "16 W")
    (True, True)
    """
    if fraction is None:  # no scale: an empty grey bar, and the reading if there is one
        fill, text, colour = 0.0, text or "n/a", _GREY
    else:
        fill = min(1.0, max(0.0, fraction))
    return (f'<div class="gp-gpu-bar" style="display: flex; align-items: center; '
            f'gap: 6px; margin: 2px 0"><span style="width: 44px; color: #555">'
            f'{html.escape(label)}</span><div style="flex: 1; height: 8px; '
            f'background: #eee; border-radius: 4px; overflow: hidden"><div style="width: '
            f'{fill * 100:.0f}%; height: 100%; background: {colour}"></div></div>'
            f'<span style="width: 110px; text-align: right; font-size: 90%">'
            f'{html.escape(text)}</span></div>')


def sparkline_svg(samples: Sequence[float | None], *, width: int = 120,
                  height: int = 24) -> str:
    """The recent utilisation (0..100 each) as a small SVG line; empty without two
    known samples.

    Examples
    --------
    >>> sparkline_svg([0, 50, 100]).startswith("<svg")
    True
    >>> sparkline_svg([None])
    ''
    """
    known = [(i, v) for i, v in enumerate(samples) if v is not None]
    if len(known) < 2:
        return ""
    step = width / max(1, len(samples) - 1)
    points = " ".join(f"{i * step:.1f},{height - min(100.0, max(0.0, v)) / 100 * height:.1f}"
                      for i, v in known)
    return (f'<svg class="gp-gpu-spark" width="{width}" height="{height}" viewBox="0 0 '
            f'{width} {height}"><polyline fill="none" stroke="{_GREEN}" stroke-width="1.5" '
            f'points="{points}"/></svg>')


def _memory(total: int | None, used: int | None) -> tuple[float | None, str]:
    if total is None or used is None or total <= 0:
        return None, ""
    return used / total, f"{used / 1024:.1f} / {total / 1024:.1f} GiB"


def _temperature_colour(celsius: int) -> str:
    return _RED if celsius >= _HOT_C else _ORANGE if celsius >= _WARM_C else _GREEN


def _holders_html(held: Sequence[Allocation], processes: Mapping[str, str]) -> str:
    if not held:
        line = '<span style="color: #2e7d32"><b>free</b></span>'
    else:
        policy = held[0].policy
        tenants = (f", {len(held)}/{min(a.tenants for a in held)} tenants"
                   if policy in ("shared", "time-sliced") else "")
        names = ", ".join(f"<b>{html.escape(a.workload)}</b>"
                          + (f" (<code>{html.escape(a.container_id[:12])}</code>)"
                             if a.container_id else "") for a in held)
        line = f"held by {names} <i>({html.escape(policy)}{tenants})</i>"
    running = ""
    if processes:
        running = "<br>running: " + ", ".join(
            f"<code>{html.escape(pid)}</code>" + (f" in <code>{html.escape(c[:12])}</code>"
                                                  if c else "")
            for pid, c in processes.items())
    return f'<div class="gp-gpu-holders" style="margin-top: 4px">{line}{running}</div>'


def card_html(unit: Unit, held: Sequence[Allocation], history: Sequence[float | None], *,
              simulated: bool) -> str:
    """A unit's card: title, bars, sparkline and holders.

    Parameters
    ----------
    held
        The reservations on the unit.
    history
        The unit's GPU's recent utilisation samples, oldest first.
    simulated
        The inventory is simulated: the card says so.
    """
    gpu = unit.gpu
    if unit.mig is None:
        total, used = gpu.memory_total_mib, gpu.memory_used_mib
    else:
        total, used = unit.mig.memory_total_mib, unit.mig.memory_used_mib
    fraction, memory_text = _memory(total, used)
    utilisation = gpu.utilization_gpu_percent
    temperature = gpu.temperature_c
    bars = [
        bar_html("GPU", None if utilisation is None else utilisation / 100,
                 f"{utilisation} %" if utilisation is not None else ""),
        bar_html("Mem", fraction, memory_text, _ORANGE if (fraction or 0) > 0.9 else _GREEN),
        bar_html("Temp", None if temperature is None else temperature / 100,
                 f"{temperature} \u00b0C" if temperature is not None else "",
                 _temperature_colour(temperature or 0)),
    ]
    if gpu.power_w is not None:
        limit = gpu.power_limit_w
        bars.append(bar_html("Power", gpu.power_w / limit if limit else None,
                             f"{gpu.power_w:.0f} W" + (f" / {limit:.0f} W" if limit else "")))
    processes = {str(p.pid): p.container_id or "" for p in gpu.processes}
    badge = (' <span class="gp-gpu-simulated" style="background: #6a1b9a; color: white; '
             'border-radius: 3px; padding: 0 4px; font-size: 80%">simulated</span>'
             if simulated else "")
    border = "#1565c0" if held else "#bbb"
    problems = "".join(f'<div style="color: #a15c00; font-size: 85%">&#x26a0; '
                       f"{html.escape(p)}</div>" for p in gpu.problems)
    return (f'<div class="gp-gpu-card" data-uuid="{html.escape(unit.uuid)}" style="border: '
            f'1px solid {border}; border-radius: 6px; padding: 6px 8px; margin: 0 8px 8px 0; '
            'width: 300px; line-height: 1.35">'
            f"<div><b>{html.escape(unit.title)}</b>{badge}</div>"
            f'<div style="font-size: 80%; color: #777"><code>{html.escape(unit.uuid)}</code>'
            f"</div>{''.join(bars)}{sparkline_svg(history)}"
            f"{_holders_html(held, processes if unit.mig is None else {})}{problems}</div>")


def message_card_html(title: str, message: str, *, level: str = "warning") -> str:
    """A card that stands for no GPU at all: no driver, no GPU, NVML failed."""
    colour = {"warning": "#a15c00", "error": "#b00020"}.get(level, "#555")
    return (f'<div class="gp-gpu-message" style="border: 1px solid {colour}; '
            f'border-radius: 6px; padding: 8px 10px; max-width: 640px">'
            f'<b style="color: {colour}">{html.escape(title)}</b>'
            f"<div>{html.escape(message)}</div></div>")
