"""Create-container form: what one keystroke costs, and what the form's import costs.

    PYTHONPATH=. .venv/bin/python bench/create_form_check.py [--repeats 200]

A script, not a test; no engine is needed (the form's first listing fails against a
socket nobody serves, which only shows in its status line). ``CreateContainerForm``
reads all of its fields again on every change (``continuous_update``: every key typed),
so that an error shows beside its field at once and the previews follow. Measured,
medians over ``--repeats`` with min..max, on a form with every field filled:

- reading and checking the fields (``check_fields``);
- the Boltfile service text of the preview (``RunSpec.boltfile_text``);
- the Boltfile validator on that text (``RunSpec.validate_service``);
- the ``docker run`` line;
- the whole change as the widget handles it (``form._check()``: the above plus the
  error labels, the previews and the buttons);
- in fresh interpreters (5 runs): the time to import ``ghostpanel_widgets._create_form``
  and whether it loads SQLAlchemy, Panel or the GPU kernel (it must not: the GPU kernel
  is loaded only where the host has GPUs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

FIELDS = {
    "image": "localhost/busybox:latest", "name": "web-1", "command": "sh -c 'echo hi'",
    "env": "MODE=prod\nURL=postgres://db/x", "ports": "8080:80\n8443:443\n5353:53/udp",
    "volumes": "/srv/site:/site:ro\ncache:/cache", "restart": "on-failure:3",
    "labels": "team=ops\ncom.example.tier=front", "cpus": "1.5", "memory": "512m",
}
_IMPORT = ("import sys, time, json; t = time.perf_counter(); "
           "import ghostpanel_widgets._create_form; "
           "print(json.dumps([(time.perf_counter() - t) * 1000, "
           "[m for m in ('sqlalchemy', 'panel', 'ghostpanel_kernel.gpus') "
           "if m in sys.modules]]))")


def _times(work: Callable[[], Any], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def _row(what: str, samples: list[float]) -> str:
    return (f"| {what} | {statistics.median(samples):.2f} | "
            f"{min(samples):.2f}..{max(samples):.2f} | {len(samples)} |")


async def _form_rows(repeats: int) -> list[str]:
    from ghostpanel_widgets._create_form import CreateContainerForm

    from ghostpanel_kernel import connect
    from ghostpanel_kernel.engine._run_spec import check_fields

    spec, errors = check_fields(FIELDS)
    assert spec is not None, errors
    text = spec.boltfile_text()
    rows = [
        _row("check_fields (every field)", _times(lambda: check_fields(FIELDS), repeats)),
        _row("boltfile_text", _times(spec.boltfile_text, repeats)),
        _row("validate_service (the validator)",
             _times(lambda: spec.validate_service(text=text), repeats)),
        _row("to_docker_run", _times(spec.to_docker_run, repeats)),
    ]
    env = connect("unix:///nonexistent/bench.sock", name="bench")
    form = CreateContainerForm(env)
    try:
        if form.task is not None:
            await asyncio.gather(form.task, return_exceptions=True)
        form.set_fields(**FIELDS)
        assert form.valid, form.errors
        rows.append(_row("the form's whole change (form._check)",
                         _times(form._check, repeats)))
    finally:
        form.close()
        await env.aclose()
    return rows


def _import_rows(runs: int) -> list[str]:
    samples: list[float] = []
    loaded: set[str] = set()
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True,
                             text=True, check=True).stdout
        took, modules = json.loads(out)
        samples.append(float(took))
        loaded.update(modules)
    row = _row("import ghostpanel_widgets._create_form (fresh interpreter)", samples)
    return [row, f"\nHeavy modules the import loads: {', '.join(sorted(loaded)) or 'none'}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--imports", type=int, default=5)
    options = parser.parse_args()
    rows = asyncio.run(_form_rows(options.repeats))
    print("| what | median ms | min..max ms | runs |")
    print("|---|---:|---|---:|")
    print("\n".join([*rows, *_import_rows(options.imports)]))


if __name__ == "__main__":
    main()
