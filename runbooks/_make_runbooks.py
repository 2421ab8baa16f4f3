"""Write the curated runbooks (``python runbooks/_make_runbooks.py``).

The notebooks are generated from this file so that their cells stay small and reviewable
here; edit this file, run it, and commit both. Each has a Markdown title (the runbook's
title in ``ghostpanel runbook ls``), a ``parameters``-tagged cell (papermill) and code
cells that use the library as a notebook user would (top-level ``await``). A comment
in the parameters cell must not contain an equals sign: papermill's inspection then
drops the parameter (tests/unit/test_runbooks.py checks every one is seen).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

OPEN = '''from ghostpanel_kernel import connect

env = connect(environment or None)
print(f"environment: {env.name} ({env.url})")'''

RUNBOOKS: dict[str, tuple[str, str, list[str]]] = {
    "health_report": (
        "# Health report\n\nThe engine, and every container's state and health; with "
        "`fail_on_unhealthy`, the run fails when one is unhealthy or exited with an error.",
        '''environment = ""  # registered environment name; empty: the default one
fail_on_unhealthy = False  # fail the run when a container is unhealthy or exited non-zero
label = ""  # only containers with this label (a key, or key-equals-value); empty: all''',
        [OPEN,
         '''version = await env.version()
print(f"engine: {version.kind} {version.version}, API {version.api_version}, "
      f"{version.os}/{version.arch}")''',
         '''filters = {"label": [label]} if label else None
containers = await env.containers.list(all=True, filters=filters)
bad = []
print(f"{'NAME':32} {'STATE':10} {'HEALTH':10} STATUS")
for container in sorted(containers, key=lambda c: c.name):
    print(f"{container.name:32} {container.state:10} {container.health or '-':10} "
          f"{container.status}")
    exited_badly = container.state == "exited" and "(0)" not in container.status
    if container.health == "unhealthy" or exited_badly:
        bad.append(container.name)
print(f"{len(containers)} containers, {len(bad)} need attention: {', '.join(bad) or '-'}")''',
         '''if fail_on_unhealthy and bad:
    raise RuntimeError(f"unhealthy or failed containers: {', '.join(bad)}")
await env.aclose()''']),
    "image_prune": (
        "# Image prune\n\nRemove the images no container uses: dangling (untagged) ones, "
        "or every unused one. `dry_run` (the default) only lists them.",
        '''environment = ""  # registered environment name; empty: the default one
dangling_only = True  # only untagged images; False: every image no container uses
dry_run = True  # list what would be removed, remove nothing''',
        [OPEN,
         '''images = await env.images.list()
used = {container.image for container in await env.containers.list(all=True)}
candidates = [image for image in images
              if (not image.tags if dangling_only else
                  not (set(image.tags) & used) and image.id not in used)]
total = sum(image.size for image in candidates)
print(f"{len(candidates)} of {len(images)} images unused, {total / 1e6:.1f} MB")
for image in candidates:
    print(f"  {image.short_id}  {', '.join(image.tags) or '<none>'}  {image.size / 1e6:.1f} MB")''',
         '''if dry_run:
    print("dry run: nothing removed (run with -p dry_run=false)")
else:
    result = await env.images.prune(dangling_only=dangling_only)
    removed = result.get("ImagesDeleted") or []
    print(f"removed {len(removed)} images, reclaimed "
          f"{(result.get('SpaceReclaimed') or 0) / 1e6:.1f} MB")
await env.aclose()''']),
    "volume_backup": (
        "# Volume backup\n\nTake a snapshot (BTRFS or ZFS, `docs/snapshots.md`) of each "
        "volume named, then keep only the newest `keep` snapshots of the runbook's own.",
        '''environment = ""  # registered environment name; empty: the default one
volumes = ""  # comma-separated volume names; empty: every volume
pause = False  # pause the containers using a volume while it is snapshotted
keep = 7  # snapshots taken by this runbook kept per volume (0: keep all)''',
        [OPEN,
         '''from ghostpanel_kernel.snapshots import SnapshotManager

names = [name.strip() for name in volumes.split(",") if name.strip()]
if not names:
    names = [volume.name for volume in await env.volumes.list()]
manager = SnapshotManager(env)
print(f"volumes: {', '.join(names) or 'none'}")''',
         '''failures = {}
for name in names:
    try:
        taken = await manager.create(f"volume:{name}", trigger="runbook", pause=pause,
                                     description="volume_backup runbook")
        print(f"{name}: snapshot {taken[0].name}")
        if keep:
            ours = [snap for snap in await manager.list(f"volume:{name}")
                    if snap.trigger == "runbook"]
            for old in sorted(ours, key=lambda snap: snap.created)[:-keep]:
                await manager.delete(f"volume:{name}", old.name)
                print(f"{name}: removed old snapshot {old.name}")
    except Exception as error:  # one volume's failure is reported below; the others go on
        failures[name] = error
        print(f"{name}: FAILED: {error}")''',
         '''await env.aclose()
if failures:
    raise RuntimeError(f"{len(failures)} of {len(names)} volumes not backed up: "
                       + "; ".join(f"{name}: {error}" for name, error in failures.items()))''']),
    "bulk_redeploy": (
        "# Bulk redeploy\n\nApply Boltfiles through Surge with their images pulled again "
        "(only what changed is recreated), and restart the containers carrying a label.",
        '''environment = ""  # registered environment name; empty: the default one
boltfiles = ""  # comma-separated Boltfile paths to apply with fresh images
label = ""  # restart the containers with this label (a key, or key-equals-value); empty: none
pull = True  # pull the Boltfiles' images before applying
dry_run = False  # show the plan and the containers, change nothing''',
        [OPEN,
         '''from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.surge import apply_surge, plan_surge

failed = []
for path in [p.strip() for p in boltfiles.split(",") if p.strip()]:
    boltfile = Boltfile.load(path)
    if dry_run:
        print(f"{path}: plan {await plan_surge(boltfile, [env])}")
        continue
    result = await apply_surge(boltfile, [env], pull=pull, progress=print)
    print(f"{path}: {'ok' if result.ok else 'FAILED'}: {'; '.join(result.summary())}")
    if not result.ok:
        failed.append(path)''',
         '''restarted = []
if label:
    for container in await env.containers.list(filters={"label": [label]}):
        if not dry_run:
            await container.restart()
        restarted.append(container.name)
print(f"{'would restart' if dry_run else 'restarted'}: {', '.join(restarted) or 'none'}")''',
         '''await env.aclose()
if failed:
    raise RuntimeError(f"Surge apply failed for {', '.join(failed)}")''']),
}


def write(name: str, title: str, parameters: str, cells: list[str]) -> None:
    notebook = new_notebook(
        cells=[new_markdown_cell(title),
               new_code_cell(parameters, metadata={"tags": ["parameters"]}),
               *(new_code_cell(source) for source in cells)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"},
                  "language_info": {"name": "python"}})
    # Stable cell ids: regenerating a runbook changes only what its cells say.
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name}-{index}"
    nbformat.write(notebook, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    for book, (heading, params, code) in RUNBOOKS.items():
        write(book, heading, params, code)
