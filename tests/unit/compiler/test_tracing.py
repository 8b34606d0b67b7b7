"""Telemetry ``tracing`` and meshConfig → ``telemetry.tracing``: precedence workload > namespace > root
namespace, providers, sampling, span reporting; validation of the kind."""

from __future__ import annotations

from loom.api import load_text
from loom.snapshot.model import Tracing
from tests.unit.compiler.support import by_name, compile_for, messages, resources, round_trip

OPERATOR = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    defaultConfig:
      tracing: {sampling: 5}
    extensionProviders:
    - name: otel
      opentelemetry: {service: otel-collector.observability, port: 4318, http: {path: /v1/traces}}
    - name: zipkin
      zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
"""

MESH = """
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: loom-system}
spec:
  tracing:
  - providers: [{name: zipkin}]
    randomSamplingPercentage: 10
"""

NAMESPACE = """
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: ns, namespace: default}
spec:
  tracing:
  - randomSamplingPercentage: 50
"""

WORKLOAD = """
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: orders, namespace: default}
spec:
  selector: {matchLabels: {app: orders-api}}
  tracing:
  - providers: [{name: otel}]
    randomSamplingPercentage: 100
    disableSpanReporting: false
"""

OTEL = ("otlp", "http://otel-collector.observability:4318/v1/traces")
ZIPKIN = ("zipkin", "http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans")


def tracing_of(texts: list[str], name: str) -> Tracing | None:
    compiled = compile_for(resources(*texts), by_name(name))
    round_trip(compiled.snapshot)
    return compiled.snapshot.telemetry.tracing


def collectors(tracing: Tracing | None) -> list[tuple[str, str]]:
    assert tracing is not None
    return [(c.protocol, c.url) for c in tracing.collectors]


def test_off_without_configuration() -> None:
    assert tracing_of([OPERATOR], "my-app-v1") is None


def test_enable_tracing_uses_the_mesh_sampling_percent() -> None:
    text = OPERATOR.replace("    defaultConfig:", "    enableTracing: true\n    defaultConfig:")
    tracing = tracing_of([text], "my-app-v1")
    assert tracing is not None and tracing.sampling == 5 and tracing.control_plane
    assert collectors(tracing) == []  # the control plane only


def test_precedence_workload_over_namespace_over_mesh() -> None:
    texts = [OPERATOR, MESH, NAMESPACE, WORKLOAD]
    mesh_only = tracing_of([OPERATOR, MESH], "my-app-v1")
    assert mesh_only is not None and mesh_only.sampling == 10 and collectors(mesh_only) == [ZIPKIN]
    namespace = tracing_of(texts, "my-app-v1")  # not selected: namespace over mesh, providers inherited
    assert namespace is not None and namespace.sampling == 50 and collectors(namespace) == [ZIPKIN]
    workload = tracing_of(texts, "orders-api-v1")
    assert workload is not None and workload.sampling == 100 and collectors(workload) == [OTEL]
    assert workload.report
    compiled = compile_for(resources(*texts), by_name("api-service", "production"))
    other_namespace = compiled.snapshot.telemetry.tracing  # in production: the mesh level only
    assert other_namespace is not None and other_namespace.sampling == 10


def test_disable_span_reporting() -> None:
    text = NAMESPACE.replace("randomSamplingPercentage: 50", "disableSpanReporting: true")
    tracing = tracing_of([OPERATOR, text], "my-app-v1")
    assert tracing is not None and not tracing.report and tracing.sampling == 5


def test_unknown_provider_is_reported() -> None:
    text = MESH.replace("name: zipkin}", "name: jaeger}")
    compiled = compile_for(resources(OPERATOR, text), by_name("my-app-v1"))
    assert collectors(compiled.snapshot.telemetry.tracing) == []
    [warning] = [w for w in compiled.warnings if "jaeger" in w.message]
    assert warning.path == "spec.tracing[0].providers[0].name" and "otel, zipkin" in warning.message


def test_selector_in_root_namespace_is_ignored() -> None:
    text = WORKLOAD.replace("namespace: default", "namespace: loom-system")
    compiled = compile_for(resources(OPERATOR, text), by_name("orders-api-v1"))
    assert compiled.snapshot.telemetry.tracing is None
    assert any("root namespace" in m for m in messages(compiled))


def test_grpc_provider_is_sent_over_http_with_a_warning() -> None:
    text = OPERATOR.replace(", http: {path: /v1/traces}", "")
    compiled = compile_for(resources(text, MESH.replace("zipkin}", "otel}")), by_name("my-app-v1"))
    assert collectors(compiled.snapshot.telemetry.tracing) == [OTEL]
    assert any("gRPC" in m for m in messages(compiled))


def test_validation_points_at_the_field() -> None:
    bad = MESH.replace("randomSamplingPercentage: 10", "randomSamplingPercentage: 150")
    result = load_text(bad, "telemetry.yaml")
    [problem] = result.problems
    assert problem.field_path == "spec.tracing[0].randomSamplingPercentage" and problem.line == 8
    typo = MESH.replace("randomSamplingPercentage", "randomSampling")
    [problem] = load_text(typo, "telemetry.yaml").problems
    assert problem.field_path.startswith("spec.tracing[0].randomSampling")
