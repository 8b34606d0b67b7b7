"""The kinds Loom reads (API group, versions, kind → model) and ``Resource``, one loaded object.

A document is validated as a whole (``apiVersion``, ``kind``, ``metadata``, ``spec``) by the
document model of its kind, so every problem in it is reported in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from loom.api import paths
from loom.api.resources import core, gateway, istio_networking, istio_security, mesh, runtime, smi, telemetry
from loom.api.resources.base import ApiModel
from loom.api.resources.meta import ObjectMeta, OptionalNameMeta
from loom.api.resources.values import Str

SpecT = TypeVar("SpecT", bound=ApiModel)

TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")


class Document(ApiModel, Generic[SpecT]):
    """A whole YAML document of one kind. ``status`` (written by a cluster) is accepted and ignored."""

    api_version: Str
    kind: Str
    metadata: ObjectMeta
    spec: SpecT
    status: Any = None


class IstioOperatorDocument(ApiModel):
    """``istioctl install -f`` takes an IstioOperator without a name, or without metadata at all."""

    api_version: Str
    kind: Str
    metadata: OptionalNameMeta | None = None
    spec: mesh.IstioOperatorSpec = mesh.IstioOperatorSpec()
    status: Any = None


UNNAMED_ISTIO_OPERATOR = "default"
"""The name given to an IstioOperator that has none."""


@dataclass(frozen=True)
class KindInfo:
    group: str  # "" for the Kubernetes core group (apiVersion "v1")
    versions: tuple[str, ...]
    kind: str
    document: type[ApiModel]

    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{version}" if self.group else version for version in self.versions)


_ISTIO_NETWORKING = ("networking.istio.io", ("v1alpha3", "v1beta1", "v1"))
_ISTIO_SECURITY = ("security.istio.io", ("v1beta1", "v1"))

KINDS: tuple[KindInfo, ...] = (
    KindInfo(*_ISTIO_NETWORKING, "VirtualService", Document[istio_networking.VirtualServiceSpec]),
    KindInfo(*_ISTIO_NETWORKING, "DestinationRule", Document[istio_networking.DestinationRuleSpec]),
    KindInfo(*_ISTIO_NETWORKING, "WorkloadEntry", Document[istio_networking.WorkloadEntrySpec]),
    KindInfo(*_ISTIO_NETWORKING, "ServiceEntry", Document[istio_networking.ServiceEntrySpec]),
    KindInfo(*_ISTIO_SECURITY, "PeerAuthentication", Document[istio_security.PeerAuthenticationSpec]),
    KindInfo(*_ISTIO_SECURITY, "AuthorizationPolicy", Document[istio_security.AuthorizationPolicySpec]),
    KindInfo(*_ISTIO_SECURITY, "RequestAuthentication", Document[istio_security.RequestAuthenticationSpec]),
    KindInfo("gateway.networking.k8s.io", ("v1", "v1beta1"), "HTTPRoute", Document[gateway.HTTPRouteSpec]),
    KindInfo(
        "split.smi-spec.io",
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        "TrafficSplit",
        Document[smi.TrafficSplitSpec],
    ),
    KindInfo("", ("v1",), "Service", Document[core.ServiceSpec]),
    KindInfo("telemetry.istio.io", ("v1", "v1alpha1"), "Telemetry", Document[telemetry.TelemetrySpec]),
    KindInfo("install.istio.io", ("v1alpha1",), "IstioOperator", IstioOperatorDocument),
    KindInfo("runtime.loom.dev", ("v1alpha1",), "Workload", Document[runtime.WorkloadSpec]),
)


class UnknownKind(Exception):
    """``apiVersion``/``kind`` name nothing Loom reads; ``path`` is the field to fix."""

    def __init__(self, path: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.path, self.message, self.hint = path, message, hint


def lookup(api_version: str, kind: str) -> KindInfo:
    """The kind registered for ``apiVersion`` and ``kind``, or ``UnknownKind`` saying what to write."""
    group, _, version = api_version.rpartition("/")
    same_kind = [info for info in KINDS if info.kind == kind]
    if not same_kind:
        names = sorted({info.kind for info in KINDS})
        lowered = {name.lower(): name for name in names}
        close = difflib.get_close_matches(kind.lower(), list(lowered), n=1, cutoff=0.6)
        hint = f"supported kinds: {', '.join(names)}"
        if close:
            hint = f"did you mean `{lowered[close[0]]}`? ({hint})"
        raise UnknownKind("kind", f"unknown kind `{kind}`", hint)
    for info in same_kind:
        if info.group == group:
            if version in info.versions:
                return info
            raise UnknownKind(
                "apiVersion",
                f"{kind} is not served at `{api_version}`",
                f"use one of: {', '.join(info.api_versions())}",
            )
    expected = ", ".join(api for info in same_kind for api in info.api_versions())
    raise UnknownKind("apiVersion", f"{kind} does not belong to `{api_version}`", f"use one of: {expected}")


def supported() -> list[str]:
    """``Kind (apiVersion, ...)`` for every kind, for messages and ``--help`` texts."""
    return [f"{info.kind} ({', '.join(info.api_versions())})" for info in KINDS]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a resource was read: the file (``-`` → ``<stdin>``), its first line, its position among
    the file's non-empty documents (0-based)."""

    file: str
    line: int
    document_index: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Resource:
    """One loaded object.

    ``field_lines`` maps every field path of the document (``spec.http[0].route[1].weight``) to its
    line, so an analyzer can point at any field; ``line_of`` falls back to the nearest ancestor.
    ``extensions`` lists the non-Istio fields used (paths), ``extension_notes`` what each means.
    """

    api_version: str
    kind: str
    name: str
    namespace: str
    namespace_given: bool
    spec: ApiModel
    source: Source
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    field_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    extensions: tuple[str, ...] = ()
    extension_notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """``(kind, namespace, name)``: what identifies the resource in a store."""
        return (self.kind, self.namespace, self.name)

    @property
    def ref(self) -> str:
        """``Kind namespace/name``, as messages write it."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def line_of(self, path: str) -> int:
        """The line of ``path`` in the source file (or of its nearest ancestor present in the file)."""
        return paths.line_of(path, self.field_lines, self.source.line)

    def __hash__(self) -> int:
        return hash((self.key, self.source))
