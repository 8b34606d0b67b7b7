"""LM1001-LM1003: AuthorizationPolicies that do something other than what they seem to.

- LM1001 (Warning), deny-all: an ALLOW policy (``action`` absent or ALLOW) with no rules allows
  nothing, so every request to the workloads it covers is denied with 403. ``spec: {}`` is Istio's
  documented deny-all idiom; written by accident (rules indented wrongly, or left for later) it
  takes a service down.
- LM1002 (Warning), unknown principal: a ``principals`` or ``notPrincipals`` entry
  (``cluster.local/ns/N/sa/S``, or with ``spiffe://``; ``*`` prefixes and suffixes allowed) that
  names a service account no known workload uses, so the rule never matches it — usually a typo
  that denies a legitimate caller. Known service accounts are those of the known workloads
  (registry, WorkloadEntries) and of ServiceEntry endpoints; with none known, nothing is reported.
  The trust domain is not compared (Istio maps aliases).
- LM1003 (Error), CUSTOM: ``action: CUSTOM`` delegates the decision to an external authorizer,
  which Loom does not support: the policy is not enforced.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.api import Resource
from loom.api.resources.istio_security import AuthorizationPolicySpec

DENY_ALL = Code("LM1001", Level.WARNING, "ALLOW policy without rules denies every request")
UNKNOWN_PRINCIPAL = Code("LM1002", Level.WARNING, "principal names a service account no known workload uses")
CUSTOM_ACTION = Code("LM1003", Level.ERROR, "action CUSTOM (external authorizer) is not supported")
CODES = (DENY_ALL, UNKNOWN_PRINCIPAL, CUSTOM_ACTION)


def run(ctx: Context) -> Iterator[Finding]:
    accounts = _known_accounts(ctx)
    for resource, spec in ctx.of(AuthorizationPolicySpec):
        if spec.action == "CUSTOM":
            provider = spec.provider.name if spec.provider is not None else "?"
            message = (
                f'Loom does not support external authorizers (action CUSTOM, provider "{provider}"): this '
                "policy is not enforced, so the requests it should check reach the workload unchecked"
            )
            fix = (
                "express the checks as ALLOW or DENY rules (principals, namespaces, paths, methods; "
                "JWT claims with a RequestAuthentication), or remove the policy"
            )
            yield finding(CUSTOM_ACTION, resource, "spec.action", message, fix)
            continue
        if spec.action in (None, "ALLOW") and not spec.rules:
            message = (
                "this ALLOW policy has no rules, so it allows nothing: every request to "
                f"{_scope(ctx, resource, spec)} is denied with 403 (Istio's deny-all idiom)"
            )
            fix = (
                "if deny-all is intended, keep it and add ALLOW policies for the callers that need access; "
                "otherwise add `rules:` saying who may call (e.g. from.source.principals)"
            )
            yield finding(DENY_ALL, resource, "spec", message, fix)
        if accounts:
            yield from _principals(ctx, resource, spec, accounts)


def _principals(
    ctx: Context, resource: Resource, spec: AuthorizationPolicySpec, accounts: set[tuple[str, str]]
) -> Iterator[Finding]:
    known = sorted(f"{ctx.mesh.trust_domain}/ns/{ns}/sa/{sa}" for ns, sa in accounts)
    for i, rule in enumerate(spec.rules):
        for j, item in enumerate(rule.from_):
            source = item.source
            for field, values in (
                ("principals", source.principals),
                ("notPrincipals", source.not_principals),
            ):
                for k, principal in enumerate(values):
                    if _matches_known(principal, known):
                        continue
                    path = f"spec.rules[{i}].from[{j}].source.{field}[{k}]"
                    yield finding(UNKNOWN_PRINCIPAL, resource, path, *_unknown(principal, accounts, ctx))


def _matches_known(principal: str, known: list[str]) -> bool:
    pattern = principal.removeprefix("spiffe://")
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return any(_without_domain(k).startswith(_without_domain(pattern[:-1])) for k in known) or any(
            k.startswith(pattern[:-1]) for k in known
        )
    if pattern.startswith("*"):
        return any(k.endswith(pattern[1:]) for k in known)
    parsed = _parse(pattern)
    if parsed is None:
        return True  # not a service-account principal: nothing to compare
    return any(_parse(k) == parsed for k in known)


def _without_domain(principal: str) -> str:
    """``td/ns/N/sa/S`` → ``ns/N/sa/S`` (a prefix without a trust domain is returned unchanged)."""
    head, sep, rest = principal.partition("/ns/")
    return f"ns/{rest}" if sep and "/" not in head else principal


def _parse(principal: str) -> tuple[str, str] | None:
    parts = principal.split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa":
        return parts[2], parts[4]
    return None


def _unknown(principal: str, accounts: set[tuple[str, str]], ctx: Context) -> tuple[str, str]:
    parsed = _parse(principal.removeprefix("spiffe://"))
    if parsed is None:
        message = f'principal "{principal}" matches no known service account — the rule never matches it'
        return message, "correct the pattern (trust-domain/ns/NAMESPACE/sa/SERVICE-ACCOUNT)"
    namespace, account = parsed
    same_ns = sorted(sa for ns, sa in accounts if ns == namespace)
    known_here = (
        f" (known in {namespace}: {', '.join(same_ns)})" if same_ns else f" (none is known in {namespace})"
    )
    message = (
        f'principal "{principal}" names service account {account} in namespace {namespace}, which no known '
        f"workload uses{known_here} — the rule never matches it"
    )
    close = _closest(account, same_ns)
    meant = f"did you mean {ctx.mesh.trust_domain}/ns/{namespace}/sa/{close}? If not, " if close else ""
    return (
        message,
        f"{meant}correct the principal, or run the calling workload with service account {account}",
    )


def _closest(account: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(account, candidates, n=1, cutoff=0.7)
    return found[0] if found else None


def _known_accounts(ctx: Context) -> set[tuple[str, str]]:
    accounts = {(w.namespace, w.service_account) for w in ctx.workloads}
    for service in ctx.services:
        accounts.update((w.namespace, w.service_account) for w in service.endpoints)
    return accounts


def _scope(ctx: Context, resource: Resource, spec: AuthorizationPolicySpec) -> str:
    if spec.selector is not None and spec.selector.match_labels:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(spec.selector.match_labels.items()))
        return f"the workloads labelled {labels} in namespace {resource.namespace}"
    if spec.target_ref is not None or spec.target_refs:
        return "the resources it targets"
    if resource.namespace == ctx.mesh.root_namespace:
        return "every workload in the mesh (it is in the root namespace)"
    return f"every workload in namespace {resource.namespace}"
