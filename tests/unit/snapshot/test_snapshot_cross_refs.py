"""Cross-reference checks: names must resolve and be unique, listeners must not share a socket."""

from __future__ import annotations

import pytest

from loom.snapshot import SnapshotError, from_builtins, parse_snapshot
from loom.snapshot.load import cross_reference_problems
from tests.unit.snapshot.builders import ROUTE, Doc, http_sidecar, with_route


def problems_of(doc: Doc) -> list[tuple[str, str]]:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(doc)
    return [(p.field, p.message) for p in caught.value.problems]


def test_a_route_to_an_unknown_cluster() -> None:
    doc = with_route({"route": {"destinations": [{"cluster": "catalog-v1"}, {"cluster": "catalog-v3"}]}})
    assert problems_of(doc) == [
        (f"{ROUTE}.route.destinations[1].cluster", "no cluster named 'catalog-v3'; define it under clusters")
    ]


def test_a_weight_zero_destination_must_still_exist() -> None:
    doc = with_route(
        {"route": {"destinations": [{"cluster": "catalog-v1"}, {"cluster": "gone", "weight": 0}]}}
    )
    assert [f for f, _ in problems_of(doc)] == [f"{ROUTE}.route.destinations[1].cluster"]


def test_a_mirror_to_an_unknown_cluster() -> None:
    doc = with_route(
        {"route": {"destinations": [{"cluster": "catalog-v1"}], "mirror": {"cluster": "shadow"}}}
    )
    assert problems_of(doc) == [
        (f"{ROUTE}.route.mirror.cluster", "no cluster named 'shadow'; define it under clusters")
    ]


def test_a_tcp_listener_to_an_unknown_cluster() -> None:
    doc = http_sidecar()
    doc["listeners"][1]["tcp"]["destinations"].append({"cluster": "db-replica"})
    assert problems_of(doc) == [
        (
            "listeners[1].tcp.destinations[1].cluster",
            "no cluster named 'db-replica'; define it under clusters",
        )
    ]


def test_a_listener_with_an_unknown_route_config() -> None:
    doc = http_sidecar()
    doc["listeners"][0]["route_config"] = "inbound"
    assert problems_of(doc) == [
        ("listeners[0].route_config", "no route config named 'inbound'; define it under route_configs")
    ]


def test_a_later_route_in_a_later_virtual_host_is_located_exactly() -> None:
    doc = http_sidecar()
    doc["route_configs"][0]["virtual_hosts"].append(
        {
            "name": "other",
            "domains": ["other"],
            "routes": [
                {"direct_response": {"status": 200}},
                {"route": {"destinations": [{"cluster": "nowhere"}]}},
            ],
        }
    )
    assert [f for f, _ in problems_of(doc)] == [
        "route_configs[0].virtual_hosts[1].routes[1].route.destinations[0].cluster"
    ]


def test_redirects_and_direct_responses_need_no_cluster() -> None:
    doc = http_sidecar()
    doc["route_configs"][0]["virtual_hosts"][0]["routes"] = [
        {"matches": [{"path": {"prefix": "/old"}}], "redirect": {"uri": "/new"}},
        {"direct_response": {"status": 404, "body": "gone"}},
    ]
    doc["clusters"] = [c for c in doc["clusters"] if c["name"] == "db"]
    parse_snapshot(doc)


@pytest.mark.parametrize(
    ("collection", "kind"),
    [("listeners", "listener"), ("route_configs", "route config"), ("clusters", "cluster")],
)
def test_duplicate_names_point_at_the_second_one(collection: str, kind: str) -> None:
    doc = http_sidecar()
    items = doc[collection]
    duplicate = dict(items[0])
    if collection == "listeners":
        duplicate["port"] = 15002  # only the name repeats
    items.append(duplicate)
    index = len(items) - 1
    name = items[0]["name"]
    assert problems_of(doc) == [
        (
            f"{collection}[{index}].name",
            f"{collection}[0] is also a {kind} named {name!r}; names must be unique",
        )
    ]


def test_every_repeat_of_a_name_is_reported() -> None:
    doc = http_sidecar()
    doc["clusters"] += [dict(doc["clusters"][2]), dict(doc["clusters"][2])]
    assert [f for f, _ in problems_of(doc)] == ["clusters[3].name", "clusters[4].name"]


def test_two_listeners_on_one_address_and_port() -> None:
    doc = http_sidecar()
    doc["listeners"][1]["port"] = 15001
    assert problems_of(doc) == [("listeners[1].port", "listeners[0] already binds 127.0.0.1:15001")]


def test_the_same_port_on_different_addresses_is_fine() -> None:
    doc = http_sidecar()
    doc["listeners"][1].update(port=15001, address="127.0.0.2")
    parse_snapshot(doc)


def test_any_number_of_listeners_may_ask_for_an_ephemeral_port() -> None:
    doc = http_sidecar()
    for listener in doc["listeners"]:
        listener["port"] = 0
    parse_snapshot(doc)


def test_all_cross_reference_problems_come_together() -> None:
    doc = http_sidecar()
    doc["listeners"][0]["route_config"] = "missing"
    doc["listeners"][1]["tcp"]["destinations"] = [{"cluster": "missing-db"}]
    doc["clusters"].append(dict(doc["clusters"][0]))
    fields = [f for f, _ in problems_of(doc)]
    assert sorted(fields) == sorted(
        ["clusters[3].name", "listeners[0].route_config", "listeners[1].tcp.destinations[0].cluster"]
    )


def test_cross_references_are_checked_only_once_the_schema_holds() -> None:
    # With a schema error, the document is not a Snapshot yet: only the schema problem is reported.
    doc = with_route({"route": {"destinations": [{"cluster": "nowhere"}], "timeout": "never"}})
    assert [f for f, _ in problems_of(doc)] == [f"{ROUTE}.route.timeout"]


def test_cross_reference_problems_of_a_valid_snapshot_are_none() -> None:
    from loom.snapshot.model import Snapshot

    assert cross_reference_problems(from_builtins(http_sidecar(), Snapshot)) == []
