"""Host names, host patterns, visibility and cluster names, as Istio spells and resolves them."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

MESH_GATEWAY = "mesh"
"""The reserved gateway name that means "the sidecars" (VirtualService ``gateways``)."""


def service_fqdn(name: str, namespace: str, cluster_domain: str) -> str:
    return f"{name}.{namespace}.svc.{cluster_domain}".lower()


def resolve_host(host: str, namespace: str, cluster_domain: str, known: Container[str]) -> str:
    """A host as written in a resource of ``namespace``, as the name it stands for.

    ``reviews`` → ``reviews.<namespace>.svc.<cluster domain>`` (Istio resolves short names relative
    to the namespace of the resource, not of the service); ``reviews.other`` →
    ``reviews.other.svc.<cluster domain>`` when that service exists (else it is a DNS name such as
    ``example.com``); ``reviews.other.svc`` → ``reviews.other.svc.<cluster domain>``; wildcards
    (``*``, ``*.example.com``) and other names stay as written, lower-cased.
    """
    name = host.strip().lower().rstrip(".")
    if name == "*" or name.startswith("*."):
        return name
    parts = name.split(".")
    if len(parts) == 1:
        return f"{name}.{namespace}.svc.{cluster_domain}"
    if len(parts) == 2:
        candidate = f"{name}.svc.{cluster_domain}"
        return candidate if candidate in known else name
    if len(parts) == 3 and parts[2] == "svc":
        return f"{name}.{cluster_domain}"
    return name


def host_match(pattern: str, host: str) -> tuple[int, int] | None:
    """How specifically ``pattern`` covers ``host`` (lower is more specific), or None.

    Exact names beat ``*.suffix`` wildcards (the longer suffix the better), which beat ``*``. A
    wildcard host (a ServiceEntry's ``*.example.com``) is covered by an equal or wider pattern.
    """
    if pattern == host:
        return (0, 0)
    if pattern == "*":
        return (2, 0)
    if pattern.startswith("*."):
        suffix = pattern[1:]
        subject = host[1:] if host.startswith("*.") else host
        if subject.endswith(suffix) and len(subject) > len(suffix):
            return (1, -len(pattern))
    return None


def exported_to(export_to: Iterable[str], owner_namespace: str, namespace: str) -> bool:
    """Whether a resource of ``owner_namespace`` with ``exportTo`` is visible in ``namespace``.

    Empty: everywhere (Istio's default); ``*``: everywhere; ``.``: its own namespace; ``~``: nowhere;
    any other entry names a namespace.
    """
    targets = tuple(export_to)
    if not targets:
        return True
    for target in targets:
        if target == "*" or target == namespace:
            return True
        if target == "." and owner_namespace == namespace:
            return True
    return False


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every ``key: value`` of ``selector`` is among ``labels`` (an empty selector matches everything)."""
    return all(labels.get(key) == value for key, value in selector.items())


def outbound_cluster(port: int, subset: str | None, host: str) -> str:
    """Istio's (and Envoy's) outbound cluster name: ``outbound|80|v1|reviews.default.svc.cluster.local``."""
    return f"outbound|{port}|{subset or ''}|{host}"


def inbound_cluster(target_port: int) -> str:
    """The cluster that delivers to the local app: ``inbound|9080||``."""
    return f"inbound|{target_port}||"
