"""SPIFFE IDs of workloads: ``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from loom.snapshot.security import SPIFFE_SCHEME as SCHEME
from loom.snapshot.security import spiffe_id

DEFAULT_TRUST_DOMAIN = "cluster.local"
CONTROL_PLANE_NAMESPACE = "loom-system"
CONTROL_PLANE_SERVICE_ACCOUNT = "loom-controlplane"

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
"""A namespace or service account: a Kubernetes DNS subdomain (lower case, digits, ``-`` and ``.``)."""
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9._]{0,253}[a-z0-9])?$")


def check_name(value: str, what: str) -> str:
    """``value`` if it can be a namespace or service account; else ValueError saying why."""
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid name: lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_trust_domain(value: str) -> str:
    if not _TRUST_DOMAIN.match(value):
        raise ValueError(
            f"trust domain {value!r} is not valid: lower-case letters, digits, '-', '.' and '_' "
            "(e.g. cluster.local)"
        )
    return value


@dataclass(frozen=True, slots=True)
class SpiffeId:
    trust_domain: str
    namespace: str
    service_account: str

    @property
    def uri(self) -> str:
        return spiffe_id(self.trust_domain, self.namespace, self.service_account)

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """A workload SPIFFE ID from its URI; ValueError for any other shape."""
        if not uri.startswith(SCHEME):
            raise ValueError(f"{uri!r} is not a spiffe:// URI")
        parts = uri[len(SCHEME) :].split("/")
        if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa" or not all(parts):
            raise ValueError(f"{uri!r} is not a workload identity spiffe://<domain>/ns/<ns>/sa/<sa>")
        return cls(parts[0], parts[2], parts[4])


def control_plane_id(trust_domain: str) -> SpiffeId:
    """The control plane's own identity, in its serving certificate."""
    return SpiffeId(trust_domain, CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_SERVICE_ACCOUNT)
