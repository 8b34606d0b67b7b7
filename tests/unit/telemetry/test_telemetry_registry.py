"""The proxy's own loom_* counters and gauges, and the exposition as a whole."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loom.proxy.telemetry import MeshMetrics


def test_counter_with_labels(metrics: MeshMetrics, parse):
    errors = metrics.counter("listener_errors_total", "Errors by listener.", ("listener", "kind"))
    child = errors.labels("outbound", "reset")
    assert errors.labels("outbound", "reset") is child
    child.inc()
    child.inc(2)
    errors.labels("inbound", "timeout").inc()
    samples = parse(metrics)["loom_listener_errors_total"]
    assert {(s.labels["listener"], s.labels["kind"]): s.value for s in samples} == {
        ("outbound", "reset"): 3,
        ("inbound", "timeout"): 1,
    }


def test_unlabelled_counter_and_prefix_kept(metrics: MeshMetrics, parse):
    snapshots = metrics.counter("loom_snapshots_loaded_total", "Snapshots loaded.")
    snapshots.inc()
    assert parse(metrics)["loom_snapshots_loaded_total"][0].value == 1


def test_gauge_set_inc_dec(metrics: MeshMetrics, parse):
    pending = metrics.gauge("pending_requests", "Requests waiting for a connection.", ("cluster",))
    pending.labels("catalog").set(5)
    pending.labels("catalog").inc()
    pending.labels("catalog").dec(2)
    pending.labels("reviews").set(0.5)
    samples = parse(metrics)["loom_pending_requests"]
    assert {s.labels["cluster"]: s.value for s in samples} == {"catalog": 4, "reviews": 0.5}


def test_gauge_read_at_scrape_time(metrics: MeshMetrics, parse):
    connections: list[object] = []
    metrics.gauge_fn("active_connections", "Open downstream connections.", lambda: len(connections))
    assert parse(metrics)["loom_active_connections"][0].value == 0
    connections.extend([object(), object()])
    assert parse(metrics)["loom_active_connections"][0].value == 2
    per_listener = metrics.gauge("listener_connections", "Open connections by listener.", ("listener",))
    per_listener.labels("inbound").set_function(lambda: 7)
    assert parse(metrics)["loom_listener_connections"][0].value == 7


def test_failing_gauge_function_does_not_break_the_scrape(metrics: MeshMetrics, parse):
    metrics.gauge_fn("broken", "Raises.", lambda: 1 / 0)
    metrics.counter("fine_total", "Still rendered.").inc()
    samples = parse(metrics)
    assert math.isnan(samples["loom_broken"][0].value)
    assert samples["loom_fine_total"][0].value == 1


def test_registering_again(metrics: MeshMetrics):
    first = metrics.counter("retries_total", "Retries.", ("cluster",))
    assert metrics.counter("retries_total", "Retries.", ("cluster",)) is first
    assert metrics.counter("loom_retries_total", "Retries.", ("cluster",)) is first
    with pytest.raises(ValueError, match="already registered"):
        metrics.counter("retries_total", "Retries.", ("route",))
    with pytest.raises(ValueError, match="already registered"):
        metrics.gauge("retries_total", "Retries.", ("cluster",))


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("bad-name", ()),
        ("has space", ()),
        ("ok", ("bad-label",)),
        ("ok", ("__reserved",)),
        ("ok", ("le",)),
        ("ok", ("a", "a")),
    ],
)
def test_invalid_names(metrics: MeshMetrics, name: str, labels: tuple[str, ...]):
    with pytest.raises(ValueError):
        metrics.counter(name, "help", labels)


def test_wrong_number_of_label_values(metrics: MeshMetrics):
    counter = metrics.counter("x_total", "help", ("a", "b"))
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("only-one")


def test_help_and_values_escaped(metrics: MeshMetrics):
    metrics.counter("odd_total", 'Help with \\ and\nnewline and "quotes".', ("v",)).labels('a"b\\c\nd').inc()
    (family,) = [f for f in text_string_to_metric_families(metrics.render().decode()) if f.name == "loom_odd"]
    assert family.documentation == 'Help with \\ and\nnewline and "quotes".'
    assert family.samples[0].labels == {"v": 'a"b\\c\nd'}


def test_empty_families_still_declared(metrics: MeshMetrics):
    metrics.counter("unused_total", "Nothing yet.", ("a",))
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert families["loom_unused"].type == "counter"
    assert families["loom_unused"].samples == []


def test_render_is_bytes_and_newline_terminated(metrics: MeshMetrics, catalog):
    metrics.counter("a_total", "A.").inc()
    out = metrics.render()
    assert isinstance(out, bytes)
    assert out.endswith(b"\n")
