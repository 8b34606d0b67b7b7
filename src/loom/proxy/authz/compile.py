"""An ``AuthzPolicy`` compiled once per snapshot: its rules as checks, for HTTP and for TCP.

A rule matches when every condition, any source and any operation match (an empty list matches
everything); a source or operation matches when all its fields do. A policy without rules matches
nothing; a rule ``{}`` matches every request.

A TCP connection has no method, path, Host, headers or JWT, so the fields about those
(``FieldCheck.http_only``) cannot be evaluated on it. Istio's rule, kept here, errs towards
refusing: in an ALLOW policy a rule that uses any of them never matches a TCP connection (so it
allows less); in a DENY or AUDIT policy those fields are left out of the rule and the rest is
evaluated (so it denies or audits more — ``methods: ["GET"]`` alone denies every connection).
Each policy therefore carries two rule lists, made when the snapshot loads.
"""

from __future__ import annotations

from loom.proxy.authz.fields import FieldCheck, condition_check, operation_checks, source_checks
from loom.proxy.authz.request import AuthzRequest
from loom.snapshot import Problem
from loom.snapshot.security import AuthzAction, AuthzPolicy, AuthzRule

Checks = tuple[FieldCheck, ...]


class CompiledRule:
    __slots__ = ("conditions", "operations", "sources")

    def __init__(
        self, sources: tuple[Checks, ...], operations: tuple[Checks, ...], conditions: Checks
    ) -> None:
        # A source (or operation) with no fields matches everything, and so then does the list.
        self.sources = sources if all(sources) else ()
        self.operations = operations if all(operations) else ()
        self.conditions = conditions

    def matches(self, request: AuthzRequest) -> bool:
        for check in self.conditions:
            if not check(request):
                return False
        sources = self.sources
        if sources and not _any(sources, request):
            return False
        operations = self.operations
        return not operations or _any(operations, request)

    def checks(self) -> list[FieldCheck]:
        return [
            *self.conditions,
            *(c for s in self.sources for c in s),
            *(c for o in self.operations for c in o),
        ]

    def uses_http(self) -> bool:
        return any(check.http_only for check in self.checks())

    def without_http(self) -> CompiledRule:
        return CompiledRule(
            tuple(_tcp(s) for s in self.sources),
            tuple(_tcp(o) for o in self.operations),
            _tcp(self.conditions),
        )


def _any(alternatives: tuple[Checks, ...], request: AuthzRequest) -> bool:
    for checks in alternatives:
        for check in checks:
            if not check(request):
                break
        else:
            return True
    return False


def _tcp(checks: Checks) -> Checks:
    return tuple(check for check in checks if not check.http_only)


class CompiledPolicy:
    __slots__ = ("action", "http_rules", "name", "tcp_rules")

    def __init__(self, name: str, action: AuthzAction, rules: list[CompiledRule]) -> None:
        self.name = name
        self.action = action
        self.http_rules = tuple(rules)
        if action is AuthzAction.ALLOW:
            self.tcp_rules = tuple(rule for rule in rules if not rule.uses_http())
        else:
            self.tcp_rules = tuple(rule.without_http() if rule.uses_http() else rule for rule in rules)

    def matches(self, request: AuthzRequest) -> bool:
        for rule in self.http_rules if request.head is not None else self.tcp_rules:
            if rule.matches(request):
                return True
        return False

    def checks(self) -> list[FieldCheck]:
        return [check for rule in self.http_rules for check in rule.checks()]

    def __repr__(self) -> str:
        return f"<CompiledPolicy {self.name} {self.action} rules={len(self.http_rules)}>"


def compile_policy(policy: AuthzPolicy, where: str, problems: list[Problem]) -> CompiledPolicy:
    """``where`` is the policy's field path (``security.authorization[0]``) for ``problems``."""
    rules = [_rule(rule, f"{where}.rules[{i}]", problems) for i, rule in enumerate(policy.rules)]
    return CompiledPolicy(policy.name, policy.action, rules)


def _rule(rule: AuthzRule, where: str, problems: list[Problem]) -> CompiledRule:
    sources = tuple(
        tuple(source_checks(source, f"{where}.sources[{i}]", problems))
        for i, source in enumerate(rule.sources)
    )
    operations = tuple(
        tuple(operation_checks(op, f"{where}.operations[{i}]", problems))
        for i, op in enumerate(rule.operations)
    )
    conditions = tuple(
        check
        for i, condition in enumerate(rule.conditions)
        if (check := condition_check(condition, f"{where}.conditions[{i}]", problems)) is not None
    )
    return CompiledRule(sources, operations, conditions)
