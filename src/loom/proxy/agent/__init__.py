"""The sidecar's agent: registers with the control plane, watches for snapshots, ACKs/NACKs."""
