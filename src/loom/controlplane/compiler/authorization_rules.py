"""One AuthorizationPolicy's rules → snapshot ``AuthzRule``s, field by field, values checked.

The fields keep their names (``from[].source`` → ``sources``, ``to[].operation`` → ``operations``,
``when`` → ``conditions``, camelCase → snake_case) and their values as written, except:

- ``ports`` become numbers (``"8080"`` → 8080), as the snapshot has them;
- ``serviceAccounts`` (``ns/sa``, or ``sa`` in the policy's namespace) become the principals
  ``*/ns/<ns>/sa/<sa>`` (any trust domain), and ``notServiceAccounts`` likewise join
  ``not_principals``.

A value the proxy could not use — an IP block that is not one, a port that is not a number, an
invalid path template, an unknown condition key — is handled as Istio's own builder handles a rule
it cannot generate, erring towards refusing: in an ALLOW policy the whole rule is left out (it
matches nothing; a policy left without rules denies everything), in a DENY or AUDIT policy the
value is left out (the rule matches more). Each case is a compile warning at the field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from loom.api import Resource
from loom.api.resources.istio_security import Condition, Operation, Rule, Source
from loom.controlplane.compiler.diagnostics import Warnings
from loom.snapshot.security import (
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
    bracketed,
)

PLAIN_CONDITIONS = frozenset(
    {
        "source.ip",
        "remote.ip",
        "source.namespace",
        "source.principal",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "destination.ip",
        "destination.port",
        "connection.sni",
    }
)
IP_CONDITIONS = frozenset({"source.ip", "remote.ip", "destination.ip"})
HEADERS = "request.headers"
CLAIMS = "request.auth.claims"


class RuleBuilder:
    """Translates one rule; ``invalid`` turns True when an ALLOW rule has to be left out."""

    def __init__(self, resource: Resource, action: AuthzAction, warnings: Warnings) -> None:
        self.resource = resource
        self.action = action
        self.warnings = warnings
        self.invalid = False

    def bad(self, path: str, message: str) -> None:
        if self.action is AuthzAction.ALLOW:
            self.invalid = True
            consequence = "the rule is left out (an ALLOW rule Loom cannot use matches nothing, as in Istio)"
        else:
            consequence = f"the value is ignored, so this {self.action} rule matches more (as in Istio)"
        self.warnings.add(f"{message}; {consequence}", self.resource, path)

    def rule(self, rule: Rule, where: str) -> AuthzRule | None:
        sources = [self.source(item.source, f"{where}.from[{i}].source") for i, item in enumerate(rule.from_)]
        operations = [
            self.operation(item.operation, f"{where}.to[{i}].operation") for i, item in enumerate(rule.to)
        ]
        conditions = [
            found
            for i, condition in enumerate(rule.when)
            if (found := self.condition(condition, f"{where}.when[{i}]")) is not None
        ]
        if self.invalid:
            return None
        return AuthzRule(sources=sources, operations=operations, conditions=conditions)

    # sources -----------------------------------------------------------------------------

    def source(self, source: Source, where: str) -> AuthzSource:
        principals = list(source.principals)
        not_principals = list(source.not_principals)
        if source.service_accounts:
            if principals:
                self.bad(
                    f"{where}.serviceAccounts",
                    "`serviceAccounts` and `principals` cannot be combined in one source (Loom writes "
                    "service accounts as principals); put them in two sources",
                )
            else:
                principals = [self._account(a) for a in source.service_accounts]
        not_principals += [self._account(a) for a in source.not_service_accounts]
        return AuthzSource(
            principals=principals,
            not_principals=not_principals,
            request_principals=list(source.request_principals),
            not_request_principals=list(source.not_request_principals),
            namespaces=list(source.namespaces),
            not_namespaces=list(source.not_namespaces),
            ip_blocks=self.ip_blocks(source.ip_blocks, f"{where}.ipBlocks"),
            not_ip_blocks=self.ip_blocks(source.not_ip_blocks, f"{where}.notIpBlocks"),
            remote_ip_blocks=self.ip_blocks(source.remote_ip_blocks, f"{where}.remoteIpBlocks"),
            not_remote_ip_blocks=self.ip_blocks(source.not_remote_ip_blocks, f"{where}.notRemoteIpBlocks"),
        )

    def _account(self, value: str) -> str:
        namespace, slash, account = value.partition("/")
        if not slash:
            namespace, account = self.resource.namespace, value
        return f"*/ns/{namespace}/sa/{account}"

    def ip_blocks(self, values: Sequence[str], where: str) -> list[str]:
        kept = []
        for i, value in enumerate(values):
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                self.bad(f"{where}[{i}]", f"{value!r} is not an IP address or a CIDR block")
                continue
            kept.append(value.strip())
        return kept

    # operations --------------------------------------------------------------------------

    def operation(self, operation: Operation, where: str) -> AuthzOperation:
        return AuthzOperation(
            hosts=list(operation.hosts),
            not_hosts=list(operation.not_hosts),
            ports=[int(p) for p in self.ports(operation.ports, f"{where}.ports")],
            not_ports=[int(p) for p in self.ports(operation.not_ports, f"{where}.notPorts")],
            methods=list(operation.methods),
            not_methods=list(operation.not_methods),
            paths=self.paths(operation.paths, f"{where}.paths"),
            not_paths=self.paths(operation.not_paths, f"{where}.notPaths"),
        )

    def ports(self, values: Sequence[str], where: str) -> list[str]:
        kept = []
        for i, value in enumerate(values):
            text = value.strip()
            if not text.isdigit() or not 1 <= int(text) <= 65535:
                self.bad(f"{where}[{i}]", f"{value!r} is not a port number (1-65535)")
                continue
            kept.append(str(int(text)))
        return kept

    def paths(self, values: Sequence[str], where: str) -> list[str]:
        kept = []
        for i, value in enumerate(values):
            problem = template_problem(value)
            if problem is not None:
                self.bad(f"{where}[{i}]", problem)
                continue
            kept.append(value)
        return kept

    # conditions --------------------------------------------------------------------------

    def condition(self, condition: Condition, where: str) -> AuthzCondition | None:
        key = condition.key.strip()
        problem = key_problem(key)
        if problem is not None:
            self.bad(f"{where}.key", problem)
            return None
        values, not_values = list(condition.values), list(condition.not_values)
        if key in IP_CONDITIONS:
            values = self.ip_blocks(values, f"{where}.values")
            not_values = self.ip_blocks(not_values, f"{where}.notValues")
        elif key == "destination.port":
            values = self.ports(values, f"{where}.values")
            not_values = self.ports(not_values, f"{where}.notValues")
        if not values and not not_values:
            return None  # every value was left out (DENY/AUDIT): the condition no longer narrows
        return AuthzCondition(key=key, values=values, not_values=not_values)


def key_problem(key: str) -> str | None:
    """What is wrong with a condition key, or None when the proxy knows it."""
    if key in PLAIN_CONDITIONS:
        return None
    if key.startswith(HEADERS):
        names = bracketed(key[len(HEADERS) :])
        if names is None or len(names) != 1:
            return f"condition key {key!r}: write the header name in brackets, e.g. {HEADERS}[User-Agent]"
        return None
    if key.startswith(CLAIMS):
        if bracketed(key[len(CLAIMS) :]) is None:
            return (
                f"condition key {key!r}: write the claim in brackets, e.g. {CLAIMS}[groups] or {CLAIMS}[a][b]"
            )
        return None
    if key.startswith("experimental.envoy.filters."):
        return f"condition key {key!r} reads Envoy filter metadata, which Loom's proxy does not have"
    known = ", ".join([*sorted(PLAIN_CONDITIONS), f"{HEADERS}[NAME]", f"{CLAIMS}[NAME]"])
    return f"unknown condition key {key!r} (known: {known})"


def template_problem(path: str) -> str | None:
    """What is wrong with a path template (a path with ``{*}`` or ``{**}``), or None."""
    if "{*}" not in path and "{**}" not in path:
        return None
    any_seen = False
    for segment in path.split("/"):
        if segment in ("{*}", "{**}"):
            if any_seen:
                return f"path template {path!r}: {{**}} must be the last operator"
            any_seen = segment == "{**}"
        elif "*" in segment or "{" in segment or "}" in segment:
            return (
                f"path template {path!r}: an operator ({{*}} or {{**}}) must be a whole segment, and "
                "'*', '{' and '}' may not appear elsewhere"
            )
    return None
