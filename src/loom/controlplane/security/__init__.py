"""The control plane's identity machinery: the CA that issues SPIFFE workload certificates, the
join tokens that bind a sidecar to one identity, and the state directory that keeps their keys."""
