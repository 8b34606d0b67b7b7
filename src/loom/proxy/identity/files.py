"""A proxy run from a snapshot file takes its certificate from the files the snapshot names, and
loads them again when they change (a certificate renewed by another tool)."""

from __future__ import annotations

import os

from loom.proxy.identity.store import IdentityError, IdentityStore
from loom.snapshot import Problem, Snapshot, SnapshotError
from loom.snapshot.security import Identity, MtlsMode

Stamp = tuple[tuple[int, int], ...]


def tls_user(snapshot: Snapshot) -> str | None:
    """The first part of the snapshot that needs a workload certificate, as a field path."""
    for i, listener in enumerate(snapshot.listeners):
        if listener.mtls is not MtlsMode.DISABLE:
            return f"listeners[{i}].mtls"
    for i, cluster in enumerate(snapshot.clusters):
        if any(endpoint.mtls for endpoint in cluster.endpoints):
            return f"clusters[{i}].endpoints"
    return None


class IdentityFiles:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store
        self.loaded: Identity | None = None
        self.stamp: Stamp = ()

    def apply(self, snapshot: Snapshot) -> None:
        """Load the snapshot's identity files if they are new; refuse a snapshot that needs a
        certificate this proxy does not have. Raises SnapshotError; the store keeps what it had."""
        identity = snapshot.identity
        if identity is not None and (identity != self.loaded or _stamp(identity) != self.stamp):
            self._load(identity)
        user = tls_user(snapshot)
        if user is not None and not self.store.ready:
            raise SnapshotError(
                "snapshot",
                [
                    Problem(
                        user,
                        "mutual TLS needs a workload certificate: set identity (cert_file, key_file, "
                        "trust_bundle_file), or run the proxy under a control plane",
                    )
                ],
            )

    def changed(self) -> bool:
        return self.loaded is not None and _stamp(self.loaded) != self.stamp

    def reload(self) -> None:
        """The files changed on disk: load them again (IdentityError if they are now bad)."""
        assert self.loaded is not None
        self.stamp = _stamp(self.loaded)
        self.store.update(self.loaded.cert_file, self.loaded.key_file, self.loaded.trust_bundle_file)

    def _load(self, identity: Identity) -> None:
        try:
            stamp = _stamp(identity)
            self.store.update(identity.cert_file, identity.key_file, identity.trust_bundle_file)
        except (IdentityError, OSError) as exc:
            raise SnapshotError("snapshot", [Problem("identity", str(exc))]) from None
        self.loaded, self.stamp = identity, stamp


def _stamp(identity: Identity) -> Stamp:
    stamps = []
    for path in (identity.cert_file, identity.key_file, identity.trust_bundle_file):
        try:
            st = os.stat(path)
        except OSError:
            stamps.append((0, 0))
        else:
            stamps.append((st.st_mtime_ns, st.st_size))
    return tuple(stamps)
