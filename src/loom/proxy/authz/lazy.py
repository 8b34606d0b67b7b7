"""The authorizer of a snapshot, loading the authorization modules only when it has policies."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loom.proxy.authz.engine import Authorizer
    from loom.snapshot.security import AuthzPolicy


class NoPolicies:
    """A snapshot without authorization policies: every request and connection goes on."""

    enabled = False
    needs_dest_ip = False
    needs_sni = False


NO_POLICIES = NoPolicies()


def compile_authorizer(policies: list[AuthzPolicy]) -> Authorizer | NoPolicies:
    if not policies:
        return NO_POLICIES
    from loom.proxy.authz.engine import Authorizer

    return Authorizer(policies)
