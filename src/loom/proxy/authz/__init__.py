"""Authorization (Istio's AuthorizationPolicy) on inbound listeners: compiled once per snapshot,
decided per request (HTTP) or per connection (TCP) without parsing anything the codec has not.

```python
authorizer = Authorizer(snapshot.security.authorization)   # raises SnapshotError if unusable
decision = authorizer.check(AuthzRequest(peer_ip=..., peer_principal=..., dest_port=..., head=...))
decision.allowed, decision.policy, decision.audit_policy, decision.details   # details: for the access log
```

| module | |
| --- | --- |
| ``engine`` | ``Authorizer`` and ``Decision``: AUDIT, then DENY, then ALLOW |
| ``compile`` | a policy's rules as checks, with the TCP variant of each rule |
| ``fields`` | one source/operation field or condition key as a check |
| ``values``, ``paths`` | Istio's string patterns, IP blocks, ports; path templates and normalization |
| ``request`` | ``AuthzRequest``: the attributes a decision reads |
| ``tcp`` | deciding on an accepted TCP connection |

The package is loaded only when a snapshot has policies (``lazy.compile_authorizer``): a sidecar
without any keeps its memory.
"""
