"""Which containers a widget watches, and how it names and colours them: the targets
of :class:`~._log_stream.LogStream` and :class:`~._stats_monitor.StatsMonitor`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ghostpanel_kernel.engine import Environment

__all__ = ["PALETTE", "container_targets", "target_labels"]

#: One colour per container (the container column, a chart's line), repeated past eight.
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#ff7f0e")


def container_targets(target: Environment | Iterable[tuple[Environment, str]],
                      containers: str | Iterable[str] | None = None,
                      ) -> list[tuple[Environment, str]]:
    """The ``(environment, container)`` pairs a widget watches, from its arguments.

    ``(env, "web")``, ``(env, ["web", "db"])`` and ``([(env_a, "web"), (env_b,
    "api")])`` all work; the same container named twice is watched once.

    Raises
    ------
    TypeError
        The arguments have none of these shapes.
    ValueError
        No container is named, a name is empty, or two different environments share a
        name (their lines could not be told apart).

    Examples
    --------
    >>> env = Environment("unix:///run/podman/podman.sock", name="a")
    >>> [(e.name, c) for e, c in container_targets(env, ["web", "db", "web"])]
    [('a', 'web'), ('a', 'db')]
    """
    pairs: list[tuple[Environment, str]]
    if isinstance(target, Environment):
        if containers is None:
            raise TypeError("name the containers to watch: (env, 'web') or "
                            "(env, ['web', 'db'])")
        names = [containers] if isinstance(containers, str) else list(containers)
        pairs = [(target, name) for name in names]
    else:
        if containers is not None:
            raise TypeError("give either an environment and container names, or a list "
                            "of (environment, container) pairs, not both")
        if isinstance(target, str):
            raise TypeError("the first argument is an environment (or a list of "
                            f"(environment, container) pairs), not the string {target!r}")
        pairs = []
        for item in target:
            if (not isinstance(item, tuple) or len(item) != 2
                    or not isinstance(item[0], Environment)):
                raise TypeError("expected (environment, container name) pairs, got "
                                f"{item!r}")
            pairs.append((item[0], item[1]))
    unique: list[tuple[Environment, str]] = []
    seen: dict[tuple[str, str], Environment] = {}
    by_name: dict[str, Environment] = {}
    for environment, name in pairs:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a container name must be a non-empty string, not {name!r}")
        other = by_name.setdefault(environment.name, environment)
        if other is not environment:
            raise ValueError(f"two environments are both named {environment.name!r}; "
                             "give them distinct names so their containers can be told apart")
        if (environment.name, name) not in seen:
            seen[(environment.name, name)] = environment
            unique.append((environment, name))
    if not unique:
        raise ValueError("no container to watch: name at least one")
    return unique


def target_labels(targets: Sequence[tuple[Environment, str]]) -> list[str]:
    """How each target is shown: its name, or ``env/name`` when several engines mix."""
    if len({id(environment) for environment, _ in targets}) <= 1:
        return [name for _, name in targets]
    return [f"{environment.name}/{name}" for environment, name in targets]
