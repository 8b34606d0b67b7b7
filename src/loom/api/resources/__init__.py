"""The resource models, one module per API group.

| module | kinds |
| --- | --- |
| ``istio_networking`` | VirtualService, DestinationRule, WorkloadEntry, ServiceEntry |
| ``istio_security`` | PeerAuthentication, AuthorizationPolicy, RequestAuthentication |
| ``telemetry`` | Telemetry (``telemetry.istio.io``): tracing |
| ``gateway`` | HTTPRoute (``gateway.networking.k8s.io``, GAMMA) |
| ``smi`` | TrafficSplit (``split.smi-spec.io``) |
| ``core`` | Service (``v1``) |
| ``mesh`` | IstioOperator's ``meshConfig`` (``install.istio.io``) |
| ``runtime`` | Workload (``runtime.loom.dev``): how ``loom up`` runs a workload locally |

Shared: ``base`` (the model base, extension fields), ``meta`` (ObjectMeta), ``values`` (durations,
quantities, ports, StringMatch, Percent).
"""
