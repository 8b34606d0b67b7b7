"""``Authorizer``: a workload's authorization policies, decided in Istio's order.

1. AUDIT policies only mark the request (``Decision.audit_policy``; the access log shows it).
2. Any matching DENY policy denies it.
3. If the workload has any ALLOW policy, the request must match one; otherwise it is allowed.

(Istio's CUSTOM action delegates to an external authorizer; the control plane reports it and
does not put it in snapshots.) Decisions are made from precomputed ``Decision`` objects — one per
outcome, AUDIT match and DENY policy — so deciding allocates nothing, and the access log's
response code details are formatted once, when the snapshot loads.
"""

from __future__ import annotations

from collections.abc import Sequence

from loom.proxy.authz.compile import CompiledPolicy, compile_policy
from loom.proxy.authz.request import AuthzRequest
from loom.snapshot import Problem, SnapshotError
from loom.snapshot.security import AuthzAction, AuthzPolicy

DENIED_DETAILS = "rbac_access_denied_matched_policy[{}]"
"""Envoy's RBAC filter's response code details for a denial: the DENY policy that matched, or
``none`` when no ALLOW policy did."""


class Decision:
    __slots__ = ("allowed", "audit_policy", "audited", "details", "policy")

    def __init__(self, allowed: bool, policy: str | None = None, audit_policy: str | None = None) -> None:
        self.allowed = allowed
        self.policy = policy
        """The DENY policy that matched (``namespace/name``); None otherwise."""
        self.audit_policy = audit_policy
        """The first AUDIT policy (in snapshot order) that matched; None if none did."""
        self.audited = audit_policy is not None
        self.details = None if allowed else DENIED_DETAILS.format(policy or "none")
        """The access log's ``response_code_details`` of a denial (None when allowed)."""

    def __repr__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        audited = f" audited by {self.audit_policy}" if self.audited else ""
        return f"<Decision {verdict}{f' by {self.policy}' if self.policy else ''}{audited}>"


class _Outcomes:
    """Every decision a request can get once it is known which AUDIT policy (if any) matched."""

    __slots__ = ("allowed", "denied", "not_allowed")

    def __init__(self, audit: CompiledPolicy | None, deny: Sequence[CompiledPolicy]) -> None:
        name = audit.name if audit is not None else None
        self.allowed = Decision(True, None, name)
        self.not_allowed = Decision(False, None, name)
        """The workload has ALLOW policies and none matched."""
        self.denied = tuple(Decision(False, policy.name, name) for policy in deny)
        """By the DENY policy of the same index."""


class Authorizer:
    """Raises ``SnapshotError`` (every problem, with its field path) for policies it cannot use."""

    __slots__ = ("allow", "audit", "deny", "enabled", "needs_dest_ip", "needs_sni", "plain", "policies")

    def __init__(self, policies: Sequence[AuthzPolicy]) -> None:
        problems: list[Problem] = []
        compiled = [
            compile_policy(p, f"security.authorization[{i}]", problems) for i, p in enumerate(policies)
        ]
        if problems:
            raise SnapshotError("snapshot", problems)
        self.policies = tuple(compiled)
        self.deny = tuple(p for p in compiled if p.action is AuthzAction.DENY)
        self.allow = tuple(p for p in compiled if p.action is AuthzAction.ALLOW)
        self.plain = _Outcomes(None, self.deny)
        """The decisions when no AUDIT policy matched."""
        self.audit = tuple((p, _Outcomes(p, self.deny)) for p in compiled if p.action is AuthzAction.AUDIT)
        """Each AUDIT policy, with the decisions when it is the one that matched."""
        self.enabled = bool(compiled)
        """False when there is nothing to check: every request is allowed without looking."""
        keys = {check.key for policy in compiled for check in policy.checks()}
        self.needs_dest_ip = "destination.ip" in keys
        """Some condition compares the connection's local address."""
        self.needs_sni = "connection.sni" in keys
        """Some condition compares the TLS server name the peer asked for."""

    def check(self, request: AuthzRequest) -> Decision:
        outcomes = self.plain
        for audit, marked in self.audit:
            if audit.matches(request):
                outcomes = marked
                break
        for index, policy in enumerate(self.deny):
            if policy.matches(request):
                return outcomes.denied[index]
        if not self.allow:
            return outcomes.allowed
        for policy in self.allow:
            if policy.matches(request):
                return outcomes.allowed
        return outcomes.not_allowed
