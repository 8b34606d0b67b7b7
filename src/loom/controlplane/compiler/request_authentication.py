"""RequestAuthentication → a workload's ``security.jwt_rules``, with Istio's selection and fields.

**Which policies apply.** Those of the workload's namespace and of the root namespace
(``meshConfig.rootNamespace``, Loom's default ``loom-system``) whose ``selector.matchLabels`` the
workload's labels include — no selector: every workload of the namespace (of the mesh, for the root
namespace). The jwtRules of all that apply are enforced together, in source order (Istio: creation
order). A policy attached with ``targetRef``/``targetRefs`` is for gateways and waypoints, not
sidecars: reported and not applied.

**Fields** (``JWTRule`` → ``loom.snapshot.security.JwtRule``):

| Istio | snapshot |
| --- | --- |
| ``issuer``, ``audiences`` | the same |
| ``jwks`` | ``jwks``, as written |
| ``jwksUri`` | ``jwks``: the text the control plane fetched (``loom.controlplane.jwks.JwksCache``) |
| ``fromHeaders`` (``name``, ``prefix``) | ``from_headers`` |
| ``fromParams`` | ``from_params`` |
| ``forwardOriginalToken`` | ``forward_original_token`` (default false: the token is removed) |
| ``outputClaimToHeaders`` | ``output_claim_to_headers`` (header → claim) |
| ``timeout`` | how long the control plane waits for ``jwksUri`` (default 5 s) |
| ``fromCookies``, ``outputPayloadToHeader`` | not supported: reported |

**Keys fail closed.** When the keys of a rule are not at hand — ``jwksUri`` not fetched yet, or its
fetch failed with no earlier copy, or a ``jwks`` that is not a key set — the rule is compiled with an
empty key set and a warning: every token from that issuer is then refused (401) rather than let
through unverified, as Istio does with its placeholder key set. Requests without a token still pass.

Compiling stays pure: fetched key sets come in as a mapping (URI → JWKS text) with the last error
per URI, both given to ``MeshInputs.build``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loom.api import Resource
from loom.api.resources.istio_security import JWTRule, RequestAuthenticationSpec
from loom.controlplane.compiler.diagnostics import CompileWarning, Warnings
from loom.controlplane.compiler.names import labels_match
from loom.controlplane.compiler.settings import DEFAULT_ROOT_NAMESPACE, source_order
from loom.snapshot.security import JwtHeader, JwtRule

if TYPE_CHECKING:
    from loom.controlplane.compiler.inputs import MeshInputs
    from loom.controlplane.workloads import Workload

NO_KEYS = '{"keys": []}'
"""The key set of a rule whose keys are not at hand: it verifies no token."""
DEFAULT_FETCH_TIMEOUT = 5.0
"""Istio's default ``timeout`` for fetching ``jwksUri``."""
NOT_FETCHED = "not fetched yet"


@dataclass(frozen=True, slots=True)
class RequestAuthentications:
    """The RequestAuthentications that can apply to sidecars, by namespace, and the fetched key sets."""

    by_namespace: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)
    """Namespace → its policies without ``targetRef``, in source order."""
    root_namespace: str = DEFAULT_ROOT_NAMESPACE
    jwks: Mapping[str, str] = field(default_factory=dict)
    """``jwksUri`` → the JWKS text last fetched from it."""
    jwks_errors: Mapping[str, str] = field(default_factory=dict)
    """``jwksUri`` → why its last fetch failed."""

    @classmethod
    def build(
        cls,
        resources: Sequence[Resource],
        root_namespace: str,
        warnings: Warnings,
        jwks: Mapping[str, str] | None = None,
        jwks_errors: Mapping[str, str] | None = None,
    ) -> RequestAuthentications:
        found: dict[str, list[Resource]] = defaultdict(list)
        for resource in sorted(resources, key=source_order):
            spec = resource.spec
            if not isinstance(spec, RequestAuthenticationSpec):
                continue
            if spec.target_ref is not None or spec.target_refs:
                path = "spec.targetRef" if spec.target_ref is not None else "spec.targetRefs"
                warnings.add(
                    "a policy attached with targetRef applies to gateways and waypoints, not to sidecars; "
                    "not applied (select workloads with `selector` instead)",
                    resource,
                    path,
                )
                continue
            found[resource.namespace].append(resource)
        return cls(
            by_namespace={ns: tuple(items) for ns, items in sorted(found.items())},
            root_namespace=root_namespace,
            jwks=dict(jwks or {}),
            jwks_errors=dict(jwks_errors or {}),
        )

    def applying_to(self, namespace: str, labels: Mapping[str, str]) -> list[Resource]:
        """The policies that apply to a workload of ``namespace`` with ``labels``, in source order."""
        namespaces = (namespace,) if namespace == self.root_namespace else (namespace, self.root_namespace)
        chosen = [
            resource
            for ns in namespaces
            for resource in self.by_namespace.get(ns, ())
            if labels_match(_selector(resource), labels)
        ]
        return sorted(chosen, key=source_order) if len(namespaces) > 1 else chosen


def jwt_rules_for(inputs: MeshInputs, proxy: Workload, warnings: Warnings) -> list[JwtRule]:
    """The snapshot's ``jwt_rules`` for ``proxy``; each policy is compiled once per ``inputs``."""
    index = inputs.request_authentications
    rules: list[JwtRule] = []
    for resource in index.applying_to(proxy.namespace, proxy.labels):
        key = ("request_authentication", resource.key)
        compiled = inputs.memo(key)
        if compiled is None:
            compiled = compile_policy(resource, index)
            inputs.remember(key, compiled)
        policy_rules, policy_warnings = compiled
        rules.extend(policy_rules)
        warnings.extend(policy_warnings)
    return rules


def compile_policy(
    resource: Resource, index: RequestAuthentications
) -> tuple[tuple[JwtRule, ...], tuple[CompileWarning, ...]]:
    spec = resource.spec
    assert isinstance(spec, RequestAuthenticationSpec)
    warnings = Warnings()
    rules = []
    for i, rule in enumerate(spec.jwt_rules):
        compiled = _rule(rule, resource, f"spec.jwtRules[{i}]", index, warnings)
        if compiled is not None:
            rules.append(compiled)
    return tuple(rules), warnings.result()


def jwks_uris(resources: Sequence[Resource]) -> dict[str, float]:
    """Every ``jwksUri`` the RequestAuthentications name → how long to wait for it (the shortest
    ``timeout`` among the rules naming it)."""
    uris: dict[str, float] = {}
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, RequestAuthenticationSpec):
            continue
        for rule in spec.jwt_rules:
            if rule.jwks_uri:
                timeout = float(rule.timeout) if rule.timeout else DEFAULT_FETCH_TIMEOUT
                uris[rule.jwks_uri] = min(timeout, uris.get(rule.jwks_uri, timeout))
    return uris


def is_key_set(text: str) -> bool:
    """Whether ``text`` is a JSON Web Key Set (an object with a ``keys`` array), as the snapshot requires."""
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("keys"), list)


def _rule(
    rule: JWTRule, resource: Resource, path: str, index: RequestAuthentications, warnings: Warnings
) -> JwtRule | None:
    if not rule.issuer:
        warnings.add("a jwtRule needs an `issuer`; rule not applied", resource, f"{path}.issuer")
        return None
    if rule.from_cookies and not rule.from_headers and not rule.from_params:
        warnings.add(
            "tokens in cookies are not supported; this rule reads only cookies, so it is not applied "
            "(tokens there are not verified — add `fromHeaders` or `fromParams`)",
            resource,
            f"{path}.fromCookies",
        )
        return None
    if rule.from_cookies:
        warnings.add(
            "tokens in cookies are not supported; `fromCookies` ignored", resource, f"{path}.fromCookies"
        )
    if rule.output_payload_to_header:
        warnings.add(
            "`outputPayloadToHeader` is not supported; ignored (use `outputClaimToHeaders`)",
            resource,
            f"{path}.outputPayloadToHeader",
        )
    claim_headers: dict[str, str] = {}
    for j, item in enumerate(rule.output_claim_to_headers):
        header = item.header.lower()
        if header in claim_headers:
            warnings.add(
                f"header {item.header!r} is already filled from claim {claim_headers[header]!r}; ignored",
                resource,
                f"{path}.outputClaimToHeaders[{j}]",
            )
            continue
        claim_headers[header] = item.claim
    return JwtRule(
        issuer=rule.issuer,
        audiences=list(rule.audiences),
        jwks=_keys(rule, resource, path, index, warnings),
        from_headers=[JwtHeader(name=h.name, prefix=h.prefix or "") for h in rule.from_headers],
        from_params=list(rule.from_params),
        forward_original_token=bool(rule.forward_original_token),
        output_claim_to_headers=claim_headers,
    )


def _keys(
    rule: JWTRule, resource: Resource, path: str, index: RequestAuthentications, warnings: Warnings
) -> str:
    refused = f"every token from {rule.issuer} is refused until it is"
    if rule.jwks is not None:
        if is_key_set(rule.jwks):
            return rule.jwks
        warnings.add(
            f'`jwks` is not a JSON Web Key Set (an object with a "keys" array); {refused} fixed',
            resource,
            f"{path}.jwks",
        )
        return NO_KEYS
    uri = rule.jwks_uri
    if uri is None:
        warnings.add(
            f"neither `jwks` nor `jwksUri` is set (OpenID discovery is not supported); {refused} given keys",
            resource,
            f"{path}.issuer",
        )
        return NO_KEYS
    text = index.jwks.get(uri)
    if text is not None and is_key_set(text):
        return text
    reason = index.jwks_errors.get(uri, NOT_FETCHED)
    warnings.add(
        f"the keys at {uri} are not available ({reason}); {refused} fetched", resource, f"{path}.jwksUri"
    )
    return NO_KEYS


def _selector(resource: Resource) -> Mapping[str, str]:
    spec = resource.spec
    assert isinstance(spec, RequestAuthenticationSpec)
    return spec.selector.match_labels if spec.selector is not None else {}
