"""``gateway.networking.k8s.io`` (v1, v1beta1): HTTPRoute, as the GAMMA initiative uses it for a mesh —
a route whose ``parentRefs`` name a Service (``group: ""``, ``kind: Service``) applies to traffic sent to
that Service.

Field names, enums and limits follow the Gateway API reference (``apis/v1/httproute_types.go``);
defaults (``PathPrefix /``, weight 1, ``Exact`` header matches, redirect 302) are in
``loom.api.defaults`` and applied by the compiler. Durations follow GEP-2257.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.values import Bool, GatewayDuration, Int, Port, Str, invalid

HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


class ParentReference(ApiModel):
    group: Str | None = None
    kind: Str | None = None
    namespace: Str | None = None
    name: Str
    section_name: Str | None = None
    port: Port | None = None


class HTTPPathMatch(ApiModel):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] | None = None
    value: Annotated[Str, Field(max_length=1024)] | None = None


class HTTPHeaderMatch(ApiModel):
    type: Literal["Exact", "RegularExpression"] | None = None
    name: Str
    value: Annotated[Str, Field(max_length=4096)]


class HTTPQueryParamMatch(ApiModel):
    type: Literal["Exact", "RegularExpression"] | None = None
    name: Str
    value: Annotated[Str, Field(max_length=1024)]


class HTTPRouteMatch(ApiModel):
    path: HTTPPathMatch | None = None
    headers: Annotated[tuple[HTTPHeaderMatch, ...], Field(max_length=16)] = ()
    query_params: Annotated[tuple[HTTPQueryParamMatch, ...], Field(max_length=16)] = ()
    method: HTTPMethod | None = None


class HTTPHeader(ApiModel):
    name: Str
    value: Str


class HTTPHeaderFilter(ApiModel):
    set: Annotated[tuple[HTTPHeader, ...], Field(max_length=16)] = ()
    add: Annotated[tuple[HTTPHeader, ...], Field(max_length=16)] = ()
    remove: Annotated[tuple[Str, ...], Field(max_length=16)] = ()


class HTTPPathModifier(ApiModel):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: Str | None = None
    replace_prefix_match: Str | None = None

    @model_validator(mode="after")
    def _value_for_type(self) -> HTTPPathModifier:
        wanted = "replaceFullPath" if self.type == "ReplaceFullPath" else "replacePrefixMatch"
        full, prefix = self.replace_full_path is not None, self.replace_prefix_match is not None
        if (self.type == "ReplaceFullPath" and (prefix or not full)) or (
            self.type == "ReplacePrefixMatch" and (full or not prefix)
        ):
            raise invalid(f"type {self.type} needs `{wanted}` (and only it)", f"set `{wanted}: /new/path`")
        return self


class HTTPRequestRedirectFilter(ApiModel):
    scheme: Literal["http", "https"] | None = None
    hostname: Str | None = None
    path: HTTPPathModifier | None = None
    port: Port | None = None
    status_code: Literal[301, 302, 303, 307, 308] | None = None


class HTTPURLRewriteFilter(ApiModel):
    hostname: Str | None = None
    path: HTTPPathModifier | None = None


class BackendObjectReference(ApiModel):
    group: Str | None = None
    kind: Str | None = None
    name: Str
    namespace: Str | None = None
    port: Port | None = None


class Fraction(ApiModel):
    numerator: Annotated[Int, Field(ge=0)]
    denominator: Annotated[Int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _proper(self) -> Fraction:
        if self.numerator > (self.denominator or 100):
            raise invalid(
                "the numerator is larger than the denominator", "a fraction of requests is at most 1"
            )
        return self


class HTTPRequestMirrorFilter(ApiModel):
    backend_ref: BackendObjectReference
    percent: Annotated[Int, Field(ge=0, le=100)] | None = None
    fraction: Fraction | None = None

    @model_validator(mode="after")
    def _one_share(self) -> HTTPRequestMirrorFilter:
        if self.percent is not None and self.fraction is not None:
            raise invalid("`percent` and `fraction` cannot be used together", "keep one of them")
        return self


class LocalObjectReference(ApiModel):
    group: Str
    kind: Str
    name: Str


class HTTPCORSFilter(ApiModel):
    allow_origins: tuple[Str, ...] = ()
    allow_credentials: Bool | None = None
    allow_methods: tuple[Str, ...] = ()
    allow_headers: tuple[Str, ...] = ()
    expose_headers: tuple[Str, ...] = ()
    max_age: Annotated[Int, Field(ge=1)] | None = None


_FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
    "CORS": "cors",
}


class HTTPRouteFilter(ApiModel):
    """One filter; ``type`` names the one configuration field that must be set."""

    type: Literal[
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestMirror",
        "RequestRedirect",
        "URLRewrite",
        "ExtensionRef",
        "CORS",
    ]
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    extension_ref: LocalObjectReference | None = None
    cors: HTTPCORSFilter | None = None

    @model_validator(mode="after")
    def _config_matches_type(self) -> HTTPRouteFilter:
        wanted = _FILTER_FIELDS[self.type]
        given = [
            info.alias or name
            for name, info in type(self).model_fields.items()
            if name != "type" and getattr(self, name) is not None
        ]
        if wanted not in given:
            raise invalid(
                f"a {self.type} filter needs `{wanted}`", f"add `{wanted}:` next to `type: {self.type}`"
            )
        others = [alias for alias in given if alias != wanted]
        if others:
            raise invalid(
                f"{', '.join(f'`{a}`' for a in others)} does not belong to a {self.type} filter",
                "use one filter entry per type",
            )
        return self


class HTTPBackendRef(ApiModel):
    group: Str | None = None
    kind: Str | None = None
    name: Str
    namespace: Str | None = None
    port: Port | None = None
    weight: Annotated[Int, Field(ge=0, le=1_000_000)] | None = None
    filters: tuple[HTTPRouteFilter, ...] = ()


class HTTPRouteTimeouts(ApiModel):
    request: GatewayDuration | None = None
    backend_request: GatewayDuration | None = None

    @model_validator(mode="after")
    def _backend_within_request(self) -> HTTPRouteTimeouts:
        if self.request and self.backend_request and self.backend_request > self.request:
            raise invalid(
                "`backendRequest` is longer than `request`",
                "the backend timeout covers one try and must not exceed the whole request's timeout",
            )
        return self


class HTTPRouteRetry(ApiModel):
    codes: tuple[Annotated[Int, Field(ge=400, le=599)], ...] = ()
    attempts: Annotated[Int, Field(ge=0)] | None = None
    backoff: GatewayDuration | None = None


class CookieConfig(ApiModel):
    lifetime_type: Literal["Permanent", "Session"] | None = None


class SessionPersistence(ApiModel):
    session_name: Str | None = None
    absolute_timeout: GatewayDuration | None = None
    idle_timeout: GatewayDuration | None = None
    type: Literal["Cookie", "Header"] | None = None
    cookie_config: CookieConfig | None = None


class HTTPRouteRule(ApiModel):
    name: Str | None = None
    matches: Annotated[tuple[HTTPRouteMatch, ...], Field(max_length=64)] = ()
    filters: Annotated[tuple[HTTPRouteFilter, ...], Field(max_length=16)] = ()
    backend_refs: Annotated[tuple[HTTPBackendRef, ...], Field(max_length=16)] = ()
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None
    session_persistence: SessionPersistence | None = None


class HTTPRouteSpec(ApiModel):
    parent_refs: Annotated[tuple[ParentReference, ...], Field(max_length=32)] = ()
    hostnames: Annotated[tuple[Str, ...], Field(max_length=16)] = ()
    rules: Annotated[tuple[HTTPRouteRule, ...], Field(max_length=16)] = ()
