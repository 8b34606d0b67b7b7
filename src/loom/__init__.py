"""Loom: a service mesh — sidecar proxy, control plane, identities and golden metrics."""

__version__ = "0.1.0"
