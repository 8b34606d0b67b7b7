"""The control plane: stores operator YAML, tracks workloads, compiles and pushes snapshots."""
