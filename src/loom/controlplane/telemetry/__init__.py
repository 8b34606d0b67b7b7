"""The sidecars' golden metrics, pushed to the control plane: the store, the rate and quantile
math, the queries and the API routes (``loom stat``, ``top``, ``tap``, ``edges``)."""

from loom.controlplane.telemetry.store import TelemetryStore

__all__ = ["TelemetryStore"]
