"""``security.istio.io`` (v1beta1, v1): PeerAuthentication, AuthorizationPolicy, RequestAuthentication.

Field names and enums follow Istio's reference (``security/v1beta1/*.proto``). Values in rules are
strings as Istio defines them (``ports: ["8080"]``), so a bare number is refused with a hint to quote
it, as the Kubernetes API server would.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, model_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.values import Bool, Duration, Labels, Str, invalid, only_one, yaml_type


class WorkloadSelector(ApiModel):
    match_labels: Labels = {}


class PolicyTargetReference(ApiModel):
    group: Str | None = None
    kind: Str
    name: Str
    namespace: Str | None = None


def _check_target(model: Any) -> None:
    given = [
        name
        for name, value in (("selector", model.selector), ("targetRef", model.target_ref))
        if value is not None
    ]
    if model.target_refs:
        given.append("targetRefs")
    if len(given) > 1:
        raise invalid(
            " and ".join(f"`{name}`" for name in given) + " cannot be used together",
            "select workloads by labels (selector) or attach to a resource (targetRef/targetRefs), not both",
        )


# --- PeerAuthentication ------------------------------------------------------------------------

MtlsMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class MutualTLS(ApiModel):
    mode: MtlsMode | None = None


def _port_key(value: Any) -> int:
    port = int(value) if isinstance(value, str) and value.isdigit() else value
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise invalid(
            f"{yaml_type(value)} is not a port number", "use a port number from 1 to 65535 as the key"
        )
    return port


PortKey = Annotated[int, PlainValidator(_port_key)]


class PeerAuthenticationSpec(ApiModel):
    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    port_level_mtls: dict[PortKey, MutualTLS] = {}

    @model_validator(mode="after")
    def _ports_need_selector(self) -> PeerAuthenticationSpec:
        if self.port_level_mtls and self.selector is None:
            raise invalid(
                "`portLevelMtls` needs a `selector`",
                "port-level mTLS applies to selected workloads: add `selector: {matchLabels: ...}`",
            )
        return self


# --- AuthorizationPolicy -----------------------------------------------------------------------


class Source(ApiModel):
    principals: tuple[Str, ...] = ()
    not_principals: tuple[Str, ...] = ()
    request_principals: tuple[Str, ...] = ()
    not_request_principals: tuple[Str, ...] = ()
    namespaces: tuple[Str, ...] = ()
    not_namespaces: tuple[Str, ...] = ()
    ip_blocks: tuple[Str, ...] = ()
    not_ip_blocks: tuple[Str, ...] = ()
    remote_ip_blocks: tuple[Str, ...] = ()
    not_remote_ip_blocks: tuple[Str, ...] = ()
    service_accounts: tuple[Str, ...] = ()
    not_service_accounts: tuple[Str, ...] = ()


class Operation(ApiModel):
    hosts: tuple[Str, ...] = ()
    not_hosts: tuple[Str, ...] = ()
    ports: tuple[Str, ...] = ()
    not_ports: tuple[Str, ...] = ()
    methods: tuple[Str, ...] = ()
    not_methods: tuple[Str, ...] = ()
    paths: tuple[Str, ...] = ()
    not_paths: tuple[Str, ...] = ()


class RuleFrom(ApiModel):
    source: Source


class RuleTo(ApiModel):
    operation: Operation


class Condition(ApiModel):
    key: Str
    values: tuple[Str, ...] = ()
    not_values: tuple[Str, ...] = ()

    @model_validator(mode="after")
    def _some_value(self) -> Condition:
        if not self.values and not self.not_values:
            raise invalid("a condition needs `values` or `notValues`", "add `values: [...]` under the `key`")
        return self


class Rule(ApiModel):
    from_: tuple[RuleFrom, ...] = Field(default=(), alias="from")
    to: tuple[RuleTo, ...] = ()
    when: tuple[Condition, ...] = ()


class ExtensionProvider(ApiModel):
    name: Str


class AuthorizationPolicySpec(ApiModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    rules: tuple[Rule, ...] = ()
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"] | None = None
    provider: ExtensionProvider | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AuthorizationPolicySpec:
        _check_target(self)
        if self.action == "CUSTOM" and self.provider is None:
            raise invalid("action CUSTOM needs a `provider`", "add `provider: {name: <extension provider>}`")
        if self.provider is not None and self.action != "CUSTOM":
            raise invalid(
                "`provider` is only used with action CUSTOM", "set `action: CUSTOM` or remove `provider`"
            )
        return self


# --- RequestAuthentication ---------------------------------------------------------------------


class JWTHeader(ApiModel):
    name: Str
    prefix: Str | None = None


class ClaimToHeader(ApiModel):
    header: Str
    claim: Str


class JWTRule(ApiModel):
    issuer: Str
    audiences: tuple[Str, ...] = ()
    jwks_uri: Str | None = None
    jwks: Str | None = None
    from_headers: tuple[JWTHeader, ...] = ()
    from_params: tuple[Str, ...] = ()
    from_cookies: tuple[Str, ...] = ()
    output_payload_to_header: Str | None = None
    forward_original_token: Bool | None = None
    output_claim_to_headers: tuple[ClaimToHeader, ...] = ()
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> JWTRule:
        only_one(self, ("jwksUri", "jwks"))
        return self


class RequestAuthenticationSpec(ApiModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    jwt_rules: tuple[JWTRule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> RequestAuthenticationSpec:
        _check_target(self)
        return self
