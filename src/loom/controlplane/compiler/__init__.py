"""The compiler: operator resources + the workload registry → one proxy's snapshot.

```python
inputs = MeshInputs.build(resources, workloads)        # once per resource/registry change
compiled = compile_snapshot(inputs, proxy, version="42")  # per proxy: pure, deterministic
compiled.snapshot                                         # loom.snapshot.Snapshot
compiled.warnings                                         # what was dropped or not honoured
inputs.warnings                                           # ... the mesh-wide part of it
```

The semantics are Istio's (VirtualService, DestinationRule, ServiceEntry, WorkloadEntry), with
Gateway API HTTPRoutes (GAMMA) and SMI TrafficSplits where no VirtualService claims a host. Each
module's docstring gives the mapping for its part:

| module | |
| --- | --- |
| ``inputs`` | ``MeshInputs``: the prepared indexes |
| ``services`` | services and endpoints from Services, ServiceEntries, WorkloadEntries, workloads |
| ``outbound`` | the outbound listener's virtual hosts and their clusters |
| ``virtual_services``, ``gateway_routes``, ``traffic_split`` | routes from each source |
| ``destination_rules``, ``cluster_policy``, ``retries`` | traffic policy → cluster fields |
| ``inbound`` | inbound listeners to the local app |
| ``peer_authentication``, ``mtls`` | PeerAuthentication → inbound modes; auto mTLS, DestinationRule ``tls`` |
| ``request_authentication`` | RequestAuthentication → ``security.jwt_rules`` (JWKS fetched by ``jwks.py``) |
| ``authorization``, ``authorization_rules`` | AuthorizationPolicy → ``security.authorization`` |
| ``compile`` | ``compile_snapshot`` |
"""

from loom.controlplane.compiler.compile import Compiled, compile_snapshot
from loom.controlplane.compiler.diagnostics import CompileWarning
from loom.controlplane.compiler.inputs import MeshInputs
from loom.controlplane.compiler.settings import MeshSettings

__all__ = ["CompileWarning", "Compiled", "MeshInputs", "MeshSettings", "compile_snapshot"]
