"""The Boltfile rules no single key can check, run over the whole file after the schema walk.

Each rule in :data:`RULES` reads the file's data and reports through the
:class:`~ghostpanel_kernel.bolt._report.Validation`: service names, exactly one of
``image``/``build``/``capsule`` per service, host ports unique across services,
``depends_on`` targets and cycles (all of which Bolt's ``BoltFile::validate`` refuses),
and networks used but not declared (a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ghostpanel_kernel.bolt._report import Validation
from ghostpanel_kernel.bolt._values import PortMapping

__all__ = ["RULES"]


def _services(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    services = data.get("services")
    if not isinstance(services, dict):
        return {}
    return {k: s for k, s in services.items() if isinstance(s, dict)}


def _rule_service_names(v: Validation, data: Mapping[str, Any]) -> None:
    services = data.get("services")
    if isinstance(services, dict) and not services:
        v.add("error", ("services",), "no service is defined; Bolt wants at least one",
              'Add a service, e.g. [services.web] with image = "nginx:latest".', at="key")
    for name in services if isinstance(services, dict) else ():
        if not name or " " in name:
            v.add("error", ("services", name), f"service name {name!r} is empty or has "
                  "spaces; Bolt refuses it", "Rename the service without spaces, e.g. "
                  f"{name.strip().replace(' ', '-') or 'web'!r}.", at="key")


def _rule_one_source(v: Validation, data: Mapping[str, Any]) -> None:
    for name, service in _services(data).items():
        sources = [k for k in ("image", "build", "capsule") if k in service]
        if not sources:
            v.add("error", ("services", name), f"service `{name}` has no image, build or "
                  "capsule; Bolt refuses the file", 'Add one of image = "nginx:latest", '
                  'build = "./dir" or capsule = "name".', at="key")
        for extra in sources[1:]:
            listed = ", ".join(f"`{s}`" for s in sources[:-1]) + f" and `{sources[-1]}`"
            v.add("error", ("services", name, extra), f"service `{name}` sets {listed}; "
                  "Bolt allows exactly one",
                  f"Keep one of {', '.join(sources)} and remove the others.", at="key")


def _rule_host_ports(v: Validation, data: Mapping[str, Any]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for name, service in _services(data).items():
        ports = service.get("ports")
        for index, spec in enumerate(ports if isinstance(ports, list) else ()):
            try:
                mapping = PortMapping.parse(spec) if isinstance(spec, str) else None
            except ValueError:
                continue  # reported by the port check
            if mapping is None:
                continue
            used = (mapping.host, mapping.protocol)
            if used in seen:
                owner = seen[used]
                by = "this service" if owner == name else f"service `{owner}`"
                v.add("error", ("services", name, "ports"), f"host port {mapping.host} is "
                      f"already published by {by}; Bolt refuses duplicate host ports",
                      f'Publish another host port, e.g. "{mapping.host + 1}:{mapping.container}".',
                      element=index)
            else:
                seen[used] = name


def _rule_dependencies(v: Validation, data: Mapping[str, Any]) -> None:
    services = _services(data)
    graph: dict[str, list[str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on")
        targets = [d for d in depends if isinstance(d, str)] if isinstance(depends, list) else []
        graph[name] = targets
        for index, target in enumerate(targets):
            if target not in services:
                known = ", ".join(services) or "none"
                v.add("error", ("services", name, "depends_on"), f"service `{name}` depends "
                      f"on `{target}`, which is not defined; Bolt refuses the file",
                      f"Use one of the defined services ({known}) or add [services.{target}].",
                      element=index)
    _report_cycles(v, graph)


def _report_cycles(v: Validation, graph: Mapping[str, list[str]]) -> None:
    """Report each dependency cycle once, at the ``depends_on`` entry that closes it.

    A depth-first search with its own stack rather than recursion: a chain of
    thousands of services must not exhaust Python's call stack.
    """
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        trail = [root]  # the current path, from the root
        positions = [0]  # per node on the trail: the next depends_on entry to follow
        while trail:
            node, index = trail[-1], positions[-1]
            targets = graph[node]
            if index == len(targets):
                state[node] = 2
                trail.pop()
                positions.pop()
                continue
            positions[-1] += 1
            target = targets[index]
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target):], target]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    v.add("error", ("services", node, "depends_on"), "dependency cycle "
                          + _cycle_text(cycle) + "; Bolt refuses circular depends_on",
                          "Remove one depends_on entry of the cycle.", element=index)
            elif target not in state:
                state[target] = 1
                trail.append(target)
                positions.append(0)


def _cycle_text(cycle: list[str]) -> str:
    """``a -> b -> a``; a long cycle keeps its ends, so that the message stays one line.

    >>> _cycle_text([f"s{i}" for i in range(1500)] + ["s0"])
    's0 -> s1 -> s2 -> ... -> s1498 -> s1499 -> s0 (1500 services)'
    """
    if len(cycle) <= 8:
        return " -> ".join(cycle)
    shown = [*cycle[:3], "...", *cycle[-3:]]
    return " -> ".join(shown) + f" ({len(cycle) - 1} services)"


_BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "default"})


def _rule_networks_declared(v: Validation, data: Mapping[str, Any]) -> None:
    declared = data.get("networks")
    names = set(declared) if isinstance(declared, dict) else set()
    for name, service in _services(data).items():
        networks = service.get("networks")
        for index, network in enumerate(networks if isinstance(networks, list) else ()):
            if isinstance(network, str) and network not in names | _BUILTIN_NETWORKS:
                v.add("warning", ("services", name, "networks"), f"network `{network}` is not "
                      "declared under [networks]; the engine cannot attach the service unless "
                      "it already exists", f"Add [networks.{network}] with a driver.",
                      element=index)


RULES: tuple[Callable[[Validation, Mapping[str, Any]], None], ...] = (
    _rule_service_names,
    _rule_one_source,
    _rule_host_ports,
    _rule_dependencies,
    _rule_networks_declared,
)
"""Rules over the whole file, run after the schema walk."""
