"""Host names as Istio resolves them, relative to the namespace of the resource that writes them.

| written | resolved (in a resource of namespace ``ns``) |
| --- | --- |
| ``reviews`` | ``reviews.ns.svc.cluster.local`` |
| ``reviews.other`` | ``reviews.other.svc.cluster.local`` if that Service is known, else as written |
| ``reviews.other.svc`` | ``reviews.other.svc.cluster.local`` |
| ``reviews.other.svc.cluster.local``, ``api.example.com`` | as written |
| ``*``, ``*.example.com`` | as written: a wildcard |

Names are lower-cased and a trailing dot is dropped.
"""

from __future__ import annotations

from collections.abc import Container


def service_host(name: str, namespace: str, cluster_domain: str) -> str:
    """The FQDN of the Kubernetes Service ``name`` in ``namespace``."""
    return f"{name}.{namespace}.svc.{cluster_domain}".lower()


def resolve(host: str, namespace: str, cluster_domain: str, known: Container[str]) -> str:
    """The name ``host`` stands for when written in a resource of ``namespace``."""
    name = host.strip().lower().rstrip(".")
    if is_wildcard(name):
        return name
    parts = name.split(".")
    if len(parts) == 1:
        return service_host(name, namespace, cluster_domain)
    if len(parts) == 2:
        candidate = f"{name}.svc.{cluster_domain}"
        return candidate if candidate in known else name
    if len(parts) == 3 and parts[2] == "svc":
        return f"{name}.{cluster_domain}"
    return name


def is_wildcard(host: str) -> bool:
    return host == "*" or host.startswith("*.")


def covers(pattern: str, host: str) -> bool:
    """``pattern`` (a name or a wildcard) covers ``host``: equal, ``*``, or ``*.suffix`` with a longer name.

    A wildcard host is covered by an equal or wider wildcard (``*.example.com`` by ``*.com``).
    """
    if pattern == host or pattern == "*":
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        subject = host[1:] if host.startswith("*.") else host
        return subject.endswith(suffix) and len(subject) > len(suffix)
    return False


def overlap(a: str, b: str) -> bool:
    """Some name is covered by both ``a`` and ``b``."""
    return covers(a, b) or covers(b, a)


def short(host: str, cluster_domain: str) -> str:
    """``reviews.default.svc.cluster.local`` → ``reviews.default``; other names unchanged."""
    suffix = f".svc.{cluster_domain}"
    return host[: -len(suffix)] if host.endswith(suffix) else host
