"""``Authorizer``: a workload's authorization policies, decided in Istio's order.

1. AUDIT policies only mark the request (``Decision.audited``; the access log shows it).
2. Any matching DENY policy denies it.
3. If the workload has any ALLOW policy, the request must match one; otherwise it is allowed.

(Istio's CUSTOM action delegates to an external authorizer; the control plane reports it and
does not put it in snapshots.) Decisions are made from precomputed ``Decision`` objects, so
deciding allocates nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from loom.proxy.authz.compile import CompiledPolicy, compile_policy
from loom.proxy.authz.request import AuthzRequest
from loom.snapshot import Problem, SnapshotError
from loom.snapshot.security import AuthzAction, AuthzPolicy


class Decision:
    __slots__ = ("allowed", "audited", "policy")

    def __init__(self, allowed: bool, audited: bool, policy: str | None = None) -> None:
        self.allowed = allowed
        self.audited = audited
        self.policy = policy
        """The DENY policy that matched (``namespace/name``); None otherwise."""

    def __repr__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        audited = " audited" if self.audited else ""
        return f"<Decision {verdict}{audited}{f' by {self.policy}' if self.policy else ''}>"


ALLOWED = Decision(True, False)
ALLOWED_AUDITED = Decision(True, True)
NOT_ALLOWED = Decision(False, False)
"""The workload has ALLOW policies and none matched."""
NOT_ALLOWED_AUDITED = Decision(False, True)


class _Deny:
    __slots__ = ("audited", "denied", "policy")

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.denied = Decision(False, False, policy.name)
        self.audited = Decision(False, True, policy.name)


class Authorizer:
    """Raises ``SnapshotError`` (every problem, with its field path) for policies it cannot use."""

    __slots__ = ("allow", "audit", "deny", "enabled", "needs_dest_ip", "needs_sni", "policies")

    def __init__(self, policies: Sequence[AuthzPolicy]) -> None:
        problems: list[Problem] = []
        compiled = [
            compile_policy(p, f"security.authorization[{i}]", problems) for i, p in enumerate(policies)
        ]
        if problems:
            raise SnapshotError("snapshot", problems)
        self.policies = tuple(compiled)
        self.audit = tuple(p for p in compiled if p.action is AuthzAction.AUDIT)
        self.deny = tuple(_Deny(p) for p in compiled if p.action is AuthzAction.DENY)
        self.allow = tuple(p for p in compiled if p.action is AuthzAction.ALLOW)
        self.enabled = bool(compiled)
        """False when there is nothing to check: every request is allowed without looking."""
        keys = {check.key for policy in compiled for check in policy.checks()}
        self.needs_dest_ip = "destination.ip" in keys
        """Some condition compares the connection's local address."""
        self.needs_sni = "connection.sni" in keys
        """Some condition compares the TLS server name the peer asked for."""

    def check(self, request: AuthzRequest) -> Decision:
        audited = False
        for policy in self.audit:
            if policy.matches(request):
                audited = True
                break
        for deny in self.deny:
            if deny.policy.matches(request):
                return deny.audited if audited else deny.denied
        if not self.allow:
            return ALLOWED_AUDITED if audited else ALLOWED
        for policy in self.allow:
            if policy.matches(request):
                return ALLOWED_AUDITED if audited else ALLOWED
        return NOT_ALLOWED_AUDITED if audited else NOT_ALLOWED
