"""One Surge run per project and environment, with the engine itself as the mutex.

Two runs that change one project on one engine at once undo each other's work (the
loser's rollback removes what the winner made). A lock file on this machine would not
stop a run from another machine, so the lock lives on the engine: a container named
``{project}.surge-lock`` that is created and never started. Docker and Podman both
refuse a second container of one name (Docker with 409, Podman 4.3.1 with 500 "... is
already in use"), so whichever run creates it first holds the lock, from any machine. A
volume would not do: a second create of a volume name is answered with the existing
volume (Podman 4.3.1's compatible API, as Docker's). The container is made from an
image the engine already has (one of the project's when possible; the first of the
project's images is pulled only on an engine that has no image at all) and joins no
network.

Its labels say who holds it -- :data:`LABEL_LOCK` (the project), and the holder's host,
process id, start time, operation and run id -- so that the error a second run gets
names the holder, and says when the holder looks gone: its process no longer runs on
this host, or it has held the lock for longer than :data:`STALE_AFTER`. Nothing breaks a
lock by itself (a slow run is not a dead one); ``break_lock=True`` (``--break-lock``)
removes the old lock and takes it. A run removes only the lock container it created (by
id), so a lock broken and taken by another run is left to that run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from ..engine import Conflict, Container, EngineAPIError, Environment, GhostPanelError, NotFound

__all__ = [
    "LABEL_LOCK",
    "STALE_AFTER",
    "LockHolder",
    "ProjectLocked",
    "RunIdentity",
    "acquire_lock",
    "lock_name",
    "release_lock",
    "release_locks",
    "take_locks",
]

#: The label that makes a container a Surge lock; its value is the project.
LABEL_LOCK: Final = "io.ghostpanel.surge.lock"
_HOST: Final = f"{LABEL_LOCK}.host"
_PID: Final = f"{LABEL_LOCK}.pid"
_SINCE: Final = f"{LABEL_LOCK}.since"
_OPERATION: Final = f"{LABEL_LOCK}.operation"
_RUN: Final = f"{LABEL_LOCK}.run"

#: A lock held longer than this is reported as probably stale (no apply takes an hour).
STALE_AFTER: Final = timedelta(hours=1)

#: Creates that lose a race with a lock being removed are tried again this many times.
_ATTEMPTS: Final = 3


def lock_name(project: str) -> str:
    """The lock container of ``project``: ``{project}.surge-lock``.

    The dot keeps it out of Bolt's names (``{project}_{service}``), which Surge adopts.

    Examples
    --------
    >>> lock_name("shop")
    'shop.surge-lock'
    """
    return f"{project}.surge-lock"


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is: written on the lock it takes, and on the containers it creates.

    Attributes
    ----------
    operation
        ``apply``, ``scale`` or ``destroy``.
    run_id
        Unique to the run (32 hex digits).
    host, pid, since
        This machine's name, this process, and when the run began (UTC).
    """

    operation: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def labels(self, project: str) -> dict[str, str]:
        """The lock container's labels."""
        return {LABEL_LOCK: project, _HOST: self.host, _PID: str(self.pid),
                _SINCE: self.since.isoformat(timespec="seconds"),
                _OPERATION: self.operation, _RUN: self.run_id}


@dataclass(frozen=True)
class LockHolder:
    """What a lock container says about the run that holds it.

    Examples
    --------
    >>> holder = LockHolder.from_labels({"io.ghostpanel.surge.lock.host": "ci-7",
    ...                                  "io.ghostpanel.surge.lock.pid": "4242"})
    >>> holder.host, holder.pid, holder.since is None
    ('ci-7', 4242, True)
    """

    host: str
    pid: int | None
    since: datetime | None
    operation: str
    run_id: str

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> LockHolder:
        """Read the holder from a lock container's labels (missing ones stay unknown)."""
        pid = labels.get(_PID, "")
        try:
            since: datetime | None = datetime.fromisoformat(labels.get(_SINCE, ""))
        except ValueError:
            since = None
        return cls(host=labels.get(_HOST, "?"), pid=int(pid) if pid.isdigit() else None,
                   since=since, operation=labels.get(_OPERATION, "a Surge run"),
                   run_id=labels.get(_RUN, ""))

    def stale_reason(self, *, now: datetime | None = None,
                     this_host: str | None = None) -> str | None:
        """Why the holder looks gone, or None when it may still be running.

        Its process is checked only when it ran on this machine (a pid means nothing
        elsewhere); any holder is suspect after :data:`STALE_AFTER`.
        """
        now = now or datetime.now(UTC)
        if self.pid is not None and self.host == (this_host or socket.gethostname()):
            try:
                os.kill(self.pid, 0)  # signal 0: only asks whether the process exists
            except ProcessLookupError:
                return f"process {self.pid} no longer runs on {self.host}"
            except PermissionError:
                pass  # it exists, as another user
        if self.since is not None and now - self.since > STALE_AFTER:
            return f"it has held the lock since {self.since:%Y-%m-%d %H:%M} UTC"
        return None

    def describe(self, *, now: datetime | None = None) -> str:
        """``apply (pid 4242 on ci-7, since 2026-12-07 16:40:05 UTC, 12 s ago)``."""
        now = now or datetime.now(UTC)
        parts = [f"pid {self.pid if self.pid is not None else '?'} on {self.host}"]
        if self.since is not None:
            parts.append(f"since {self.since:%Y-%m-%d %H:%M:%S} UTC, "
                         f"{_age(now - self.since)} ago")
        return f"{self.operation} ({', '.join(parts)})"


def _age(age: timedelta) -> str:
    """``12 s``, ``5 min``, ``3 h``: as precise as a person reading the error needs.

    Examples
    --------
    >>> _age(timedelta(seconds=59)), _age(timedelta(minutes=5)), _age(timedelta(hours=3))
    ('59 s', '5 min', '3 h')
    """
    seconds = max(0, int(age.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


class ProjectLocked(GhostPanelError):
    """Another Surge run holds the project's lock on an environment; nothing was changed.

    Attributes
    ----------
    environment
        Where the lock is held.
    project
        The project.
    holder
        Who holds it, as its labels say.
    stale
        Why the holder looks gone, or None.
    """

    def __init__(self, environment: str, project: str, holder: LockHolder,
                 stale: str | None) -> None:
        self.environment = environment
        self.project = project
        self.holder = holder
        self.stale = stale
        advice = (f"it looks stale ({stale}); if no Surge run of {project!r} is going on, "
                  "break it with --break-lock (break_lock=True)") if stale else \
            "wait for that run to end (if it is gone, break the lock with --break-lock)"
        super().__init__(f"project {project!r} is locked on {environment!r} by "
                         f"{holder.describe()}: {advice}")


async def _lock_image(environment: Environment, candidates: Sequence[str]) -> str | None:
    # Any image will do for a container that never starts; the project's own are
    # likeliest to be there. None: the engine holds no image and none can be pulled
    # (then it runs no container a race could harm).
    for reference in candidates:
        with contextlib.suppress(NotFound):
            await environment.images.get(reference)
            return reference
    for image in await environment.images.list():
        return image.tags[0] if image.tags else image.id
    pullable = [reference for reference in candidates
                if not reference.startswith("localhost/")]
    if not pullable:
        return None
    await environment.images.pull(pullable[0])  # the apply runs it anyway
    return pullable[0]


def _name_taken(error: EngineAPIError) -> bool:
    """Whether a create failed because the name is in use.

    Docker answers 409; Podman 4.3.1 answers 500, its message ending "that name is
    already in use" (see ``docs/engine-facts.md``).
    """
    return isinstance(error, Conflict) or "already in use" in error.message


async def _holder_of(environment: Environment, name: str, project: str) -> Container:
    existing = await environment.containers.get(name)
    if existing.labels.get(LABEL_LOCK) != project:
        raise GhostPanelError(f"a container {name!r} that is no Surge lock exists on "
                              f"{environment.name!r}; Surge keeps the lock of {project!r} "
                              "under that name: rename or remove that container")
    return existing


async def acquire_lock(environment: Environment, project: str, identity: RunIdentity, *,
                       images: Sequence[str] = (), break_lock: bool = False,
                       report: Callable[[str], None] | None = None) -> Container | None:
    """Take ``project``'s lock on ``environment``.

    Parameters
    ----------
    environment
        Where.
    project
        The project.
    identity
        The run taking it (its labels go on the lock).
    images
        References to make the lock container from, first found first.
    break_lock
        Remove a lock another run holds, then take it.
    report
        Called with a message when a lock is broken.

    Returns
    -------
    Container or None
        The lock container, for :func:`release_lock`; None when the engine has no image
        at all to make it from (it then runs no container a race could harm).

    Raises
    ------
    ProjectLocked
        Another run holds the lock (and ``break_lock`` is false).
    """
    image = await _lock_image(environment, images)
    if image is None:
        return None
    name = lock_name(project)
    for _ in range(_ATTEMPTS):
        try:
            return await environment.containers.create(
                image=image, name=name, labels=identity.labels(project),
                command=["ghostpanel-surge-lock"], network="none")
        except EngineAPIError as error:
            if not _name_taken(error):
                raise
        except BaseException:
            # The engine may have made it before the answer was lost (or the run was
            # cancelled meanwhile): a lock bearing this run's id is ours to remove.
            with contextlib.suppress(Exception):
                made = await environment.containers.get(name)
                if made.labels.get(_RUN) == identity.run_id:
                    await made.remove(force=True)
            raise
        try:
            holder = await _holder_of(environment, name, project)
        except NotFound:
            continue  # released between our create and this look: try again
        about = LockHolder.from_labels(holder.labels)
        if not break_lock:
            raise ProjectLocked(environment.name, project, about, about.stale_reason())
        with contextlib.suppress(NotFound):
            await holder.remove(force=True)
        if report is not None:
            report(f"broke the lock of {about.describe()}")
    raise ProjectLocked(environment.name, project,
                        LockHolder("?", None, None, "another run", ""),
                        "the lock changed hands while it was being taken")


async def release_lock(lock: Container | None) -> None:
    """Remove a lock :func:`acquire_lock` took (by id: never another run's)."""
    if lock is None:
        return
    with contextlib.suppress(NotFound):
        await lock.remove(force=True)


def _notice(notices: list[str], environment: str, message: str) -> None:
    notices.append(f"{environment}: {message}")


async def take_locks(environments: Sequence[Environment], project: str,
                     identity: RunIdentity, held: dict[str, Container | None], *,
                     images: Sequence[str], break_lock: bool, notices: list[str]
                     ) -> dict[str, BaseException]:
    """Lock the project on every environment (into ``held``); errors stop at the first.

    Environments are locked in name order, so that two runs over the same ones meet at
    the same first lock instead of each taking some. A lock broken is noted in
    ``notices`` (it ends in the result's warnings: someone should know).
    """
    for environment in sorted(environments, key=lambda env: env.name):
        try:
            held[environment.name] = await acquire_lock(
                environment, project, identity, images=images,
                break_lock=break_lock,
                report=functools.partial(_notice, notices, environment.name))
        except Exception as error:  # the run fails having changed nothing
            return {environment.name: error}
    return {}


async def release_locks(environments: Sequence[Environment],
                        held: dict[str, Container | None], project: str) -> list[str]:
    """Give back the locks in ``held``; return warnings for those that stay."""
    warnings: list[str] = []
    for environment in environments:
        if environment.name not in held:
            continue
        try:
            await release_lock(held.pop(environment.name))
        except Exception as error:  # the run is over; a lock left is reported, not raised
            warnings.append(f"{environment.name}: could not release the lock "
                            f"{lock_name(project)} ({error}); the next run must break it "
                            "with --break-lock")
    return warnings
