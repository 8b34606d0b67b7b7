"""The snapshot: the versioned contract between the control plane and the proxy."""

from loom.snapshot.load import (
    Problem,
    SnapshotError,
    dump_snapshot,
    from_builtins,
    load_snapshot,
    parse_snapshot,
    snapshot_to_builtins,
)
from loom.snapshot.model import SCHEMA_VERSION, Snapshot

__all__ = [
    "SCHEMA_VERSION",
    "Problem",
    "Snapshot",
    "SnapshotError",
    "dump_snapshot",
    "from_builtins",
    "load_snapshot",
    "parse_snapshot",
    "snapshot_to_builtins",
]
