"""A way out: a Boltfile as Kubernetes manifests, :func:`to_kubernetes`.

Each service with an ``image`` becomes a Deployment (its ``replicas``, one container
with the image, entrypoint/command as command/args, env, ports, volume mounts,
resource limits -- a GPU request as an ``nvidia.com/gpu`` limit -- and liveness and
readiness exec probes from its health check); a service that publishes ports gets a
Service of the same name, listening on the container ports so that other services
reach it by name as they do under Bolt; each named volume a PersistentVolumeClaim
(``{project}-{volume}``); bind mounts become hostPath volumes. Everything goes in one
multi-document YAML. What Kubernetes has no equivalent for (restart policies other than
always, ``depends_on``, the gaming settings, snapshots, GhostPanel's own tables...) is
said in :attr:`KubernetesExport.notes`, each naming the Boltfile key. The rules are in
docs/conversions.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ghostpanel_kernel.bolt._boltfile import Boltfile
from ghostpanel_kernel.bolt._kubernetes_pod import (
    PodParts,
    ServiceContext,
    dns_label,
    pod_parts,
)
from ghostpanel_kernel.bolt._validator import validate

__all__ = ["SERVICE_TYPES", "KubernetesExport", "KubernetesExportError", "to_kubernetes"]

ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
SERVICE_TYPES: Final = ("ClusterIP", "NodePort", "LoadBalancer")
_NAME_LABEL: Final = "app.kubernetes.io/name"
_PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
_TOP_LEVEL_NOTES: Final = {
    "networks": "Kubernetes has one pod network; drivers, subnets and isolation have no "
                "equivalent (write NetworkPolicies)",
    "snapshots": "volume snapshots are the CSI driver's (VolumeSnapshot objects); "
                 "nothing is exported",
    "quic_fabric": "GhostPanel's agent transport; not exported",
    "dns_config": "Kubernetes gives every Service a DNS name itself",
    "alerts": "GhostPanel's agent alert rules; not exported",
}


class KubernetesExportError(ValueError):
    """The Boltfile cannot be exported: the validator finds an error in it, or no
    service has an image."""


@dataclass(frozen=True)
class KubernetesExport:
    """A Boltfile as Kubernetes manifests.

    Attributes
    ----------
    yaml_text
        One multi-document YAML (``kubectl apply -f``, ``podman kube play``), with a
        comment header listing the notes.
    documents
        The same objects as Python data, in order.
    notes
        What has no Kubernetes equivalent, each starting with the Boltfile key.
    """

    yaml_text: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _metadata(name: str, labels: Mapping[str, str], namespace: str | None
              ) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(labels)
    return metadata


def _claims(data: Mapping[str, Any], project: str, notes: list[str]
            ) -> tuple[dict[str, str], set[str]]:
    """Named volume -> claim name, and the claims to create (not the external ones)."""
    found = data.get("volumes")
    declared: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    names: set[str] = set(declared)
    for service in (data.get("services") or {}).values():
        for spec in service.get("volumes") or []:
            source = str(spec).split(":", 1)[0] if ":" in str(spec) else ""
            if source and source[0] not in "/.~":
                names.add(source)
    claims: dict[str, str] = {}
    created: set[str] = set()
    for name in sorted(names):
        table = declared.get(name) or {}
        if table.get("external"):
            claims[name] = dns_label(str(table.get("name") or name))
            notes.append(f"volumes.{name}: external; the PersistentVolumeClaim "
                         f"{claims[name]} must exist")
            continue
        claims[name] = dns_label(f"{project}-{name}")
        created.add(name)
        if table.get("driver") not in (None, "local") or table.get("driver_opts"):
            notes.append(f"volumes.{name}: the driver and its options have no equivalent; "
                         "the cluster's storage class provides the volume")
    return claims, created


def _claim_document(name: str, labels: Mapping[str, str], size: str, access: str,
                    namespace: str | None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _metadata(name, labels, namespace),
            "spec": {"accessModes": [access],
                     "resources": {"requests": {"storage": size}}}}


def _deployment(name: str, labels: Mapping[str, str], replicas: int, parts: PodParts,
                annotations: Mapping[str, str], namespace: str | None) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        template_meta["annotations"] = dict(annotations)
    pod: dict[str, Any] = {**parts.pod, "containers": [parts.container]}
    if parts.volumes:
        pod["volumes"] = parts.volumes
    spec: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": dict(labels)}}
    # A host port or a ReadWriteOnce claim cannot be held by the old and the new pod at
    # once: replace pods instead of rolling them.
    if parts.claims_used or any("hostPort" in p for p in parts.container.get("ports", [])):
        spec["strategy"] = {"type": "Recreate"}
    spec["template"] = {"metadata": template_meta, "spec": pod}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _metadata(name, labels, namespace), "spec": spec}


def _service_document(name: str, labels: Mapping[str, str], parts: PodParts,
                      service_type: str, namespace: str | None) -> dict[str, Any] | None:
    ports: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    for mapping in parts.ports:
        if (mapping.container, mapping.protocol) in seen:
            continue
        seen.add((mapping.container, mapping.protocol))
        ports.append({"name": f"{mapping.protocol}-{mapping.container}",
                      "port": mapping.container, "targetPort": mapping.container,
                      "protocol": mapping.protocol.upper()})
    if not ports:
        return None
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _metadata(name, labels, namespace),
            "spec": {"type": service_type, "selector": dict(labels), "ports": ports}}


def _dump(documents: list[dict[str, Any]]) -> str:
    import yaml  # here: reading Boltfiles never needs PyYAML

    class _Dumper(yaml.SafeDumper):
        # The probes share their exec command: write it twice, not as a YAML alias
        # (&id001), which some tools and most readers handle badly.
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text: str = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False,
                              default_flow_style=False)
    return text


def _load(source: Boltfile | str | os.PathLike[str]) -> Boltfile:
    if isinstance(source, Boltfile):
        return source
    return Boltfile.load(source)


def _header(path: str, notes: list[str]) -> str:
    lines = [f"# Exported from {path} by `ghostpanel boltfile export --to kubernetes`."]
    if notes:
        lines.append("# No Kubernetes equivalent (see docs/conversions.md):")
        lines += [f"#   - {note}" for note in notes]
    return "\n".join(lines) + "\n"


def to_kubernetes(boltfile: Boltfile | str | os.PathLike[str], *, host_ports: bool = False,
                  service_type: ServiceType = "ClusterIP", volume_size: str = "1Gi",
                  namespace: str | None = None,
                  base_dir: str | os.PathLike[str] | None = None) -> KubernetesExport:
    """Kubernetes manifests for a Boltfile: Deployments, Services, PersistentVolumeClaims.

    Parameters
    ----------
    boltfile
        A :class:`Boltfile`, or the path of one.
    host_ports
        Also bind each published port on the node (``hostPort``), as Bolt publishes
        it on the host; then the Deployment replaces its pods instead of rolling them.
    service_type
        The Services' type: ``ClusterIP`` (reachable inside the cluster), ``NodePort``
        or ``LoadBalancer`` (reachable from outside).
    volume_size
        The storage each PersistentVolumeClaim asks for (a Boltfile's volumes have no
        size).
    namespace
        Put every object in this namespace (default: none, ``kubectl -n`` decides).
    base_dir
        The folder relative bind sources start from (default: the Boltfile's).

    Returns
    -------
    KubernetesExport
        The YAML, the objects, and the notes on what has no equivalent.

    Raises
    ------
    KubernetesExportError
        The validator finds an error in the Boltfile, or no service has an image.
    BoltfileError
        The file cannot be read or is not TOML.
    """
    if service_type not in SERVICE_TYPES:
        raise KubernetesExportError(f"service type {service_type!r} is not one of "
                                    f"{', '.join(SERVICE_TYPES)}")
    bf = _load(boltfile)
    errors = [d for d in validate(bf) if d.is_error]
    if errors:
        first = errors[0]
        raise KubernetesExportError(f"{bf.path}:{first.line}:{first.column}: {first.message}"
                                    " (fix the Boltfile first: ghostpanel boltfile validate)")
    data = bf.to_dict()
    project = dns_label(str(data["project"]))
    folder = Path(base_dir) if base_dir is not None else (
        Path(bf.path).resolve().parent if Path(bf.path).is_file() else Path.cwd())
    notes: list[str] = []
    claims, created = _claims(data, project, notes)
    documents: list[dict[str, Any]] = []
    workloads: list[dict[str, Any]] = []
    mounted_by: dict[str, int] = {}
    taken: dict[str, str] = {}
    for service, table in data["services"].items():
        if not isinstance(table.get("image"), str):
            source = "build" if "build" in table else "capsule"
            notes.append(f"services.{service}.{source}: Kubernetes runs images; build and "
                         "push one, set image, export again (service skipped)")
            continue
        name = dns_label(service, letter_first=True)
        if name in taken:
            name = dns_label(f"{name}-{len(taken)}", letter_first=True)
        taken[name] = service
        if name != service:
            notes.append(f"services.{service}: named {name} in Kubernetes (DNS names are "
                         "lowercase letters, digits and '-')")
        ctx = ServiceContext(name=service, claims=claims, base_dir=folder,
                             host_ports=host_ports, notes=notes)
        parts = pod_parts(table, ctx)
        replicas = table.get("replicas") if isinstance(table.get("replicas"), int) else 1
        for claim in parts.claims_used:
            mounted_by[claim] = mounted_by.get(claim, 0) + max(replicas, 1)
        labels = {_NAME_LABEL: name, _PART_OF_LABEL: project}
        annotations = {str(k): str(v) for k, v in (table.get("labels") or {}).items()}
        workloads.append(_deployment(name, labels, replicas, parts, annotations, namespace))
        exposed = _service_document(name, labels, parts, service_type, namespace)
        if exposed is not None:
            workloads.append(exposed)
    if not workloads:
        raise KubernetesExportError(f"{bf.path}: no service has an image; nothing to export")
    for volume in sorted(created):
        claim = claims[volume]
        if mounted_by.get(claim, 0) > 1:
            notes.append(f"volumes.{volume}: mounted by {mounted_by[claim]} pods; "
                         "ReadWriteOnce shares it only among pods on one node (use a "
                         "ReadWriteMany storage class across nodes)")
        documents.append(_claim_document(claim, {_PART_OF_LABEL: project}, volume_size,
                                         "ReadWriteOnce", namespace))
    if created:
        notes.append(f"volumes: a Boltfile's volumes have no size; each claim asks for "
                     f"{volume_size} (--volume-size)")
    documents += workloads
    for key, text in _TOP_LEVEL_NOTES.items():
        if data.get(key):
            notes.append(f"{key}: {text}")
    body = _dump(documents)
    return KubernetesExport(yaml_text=_header(bf.path, notes) + "---\n" + body,
                            documents=documents, notes=notes)
