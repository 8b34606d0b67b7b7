"""Reading and checking snapshots: every problem is reported with the field it concerns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from loom.snapshot.model import Snapshot


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class SnapshotError(ValueError):
    """A snapshot that cannot be used; ``problems`` lists every reason, not just the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid snapshot {source}:\n{lines}")


def field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_snapshot(data: object, source: str = "<snapshot>") -> Snapshot:
    """Validate a decoded document (dict) into a Snapshot, with cross-reference checks."""
    if not isinstance(data, dict):
        raise SnapshotError(source, [Problem("", "the snapshot must be a mapping at the top level")])
    try:
        snapshot = Snapshot.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(field_path(e["loc"]), e["msg"]) for e in exc.errors()]
        raise SnapshotError(source, problems) from None
    problems = cross_reference_problems(snapshot)
    if problems:
        raise SnapshotError(source, problems)
    return snapshot


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot from a YAML or JSON file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SnapshotError(str(path), [Problem("", f"not valid YAML/JSON: {exc}")]) from None
    return parse_snapshot(data, str(path))


def dump_snapshot(snapshot: Snapshot) -> str:
    return yaml.safe_dump(snapshot.model_dump(mode="json", exclude_defaults=True), sort_keys=False)


def _repeats(values: list[str]) -> list[tuple[int, int]]:
    """(index, index of its first occurrence) for every value seen before."""
    first: dict[str, int] = {}
    repeats = []
    for i, value in enumerate(values):
        if value in first:
            repeats.append((i, first[value]))
        else:
            first[value] = i
    return repeats


def cross_reference_problems(snapshot: Snapshot) -> list[Problem]:
    problems: list[Problem] = []
    clusters = {c.name for c in snapshot.clusters}
    route_configs = {r.name for r in snapshot.route_configs}

    for field, kind, names in (
        ("listeners", "listener", [item.name for item in snapshot.listeners]),
        ("route_configs", "route config", [r.name for r in snapshot.route_configs]),
        ("clusters", "cluster", [c.name for c in snapshot.clusters]),
    ):
        for i, j in _repeats(names):
            problems.append(
                Problem(
                    f"{field}[{i}].name",
                    f"{field}[{j}] is also a {kind} named {names[i]!r}; names must be unique",
                )
            )

    bound = [f"{item.address}:{item.port}" if item.port else "" for item in snapshot.listeners]
    for i, j in _repeats(bound):
        if bound[i]:
            problems.append(Problem(f"listeners[{i}].port", f"listeners[{j}] already binds {bound[i]}"))

    def need_cluster(field: str, name: str) -> None:
        if name not in clusters:
            problems.append(Problem(field, f"no cluster named {name!r}; define it under clusters"))

    for i, listener in enumerate(snapshot.listeners):
        if listener.route_config is not None and listener.route_config not in route_configs:
            problems.append(
                Problem(
                    f"listeners[{i}].route_config",
                    f"no route config named {listener.route_config!r}; define it under route_configs",
                )
            )
        if listener.tcp is not None:
            for j, dest in enumerate(listener.tcp.destinations):
                need_cluster(f"listeners[{i}].tcp.destinations[{j}].cluster", dest.cluster)

    for i, rc in enumerate(snapshot.route_configs):
        for j, vh in enumerate(rc.virtual_hosts):
            for k, route in enumerate(vh.routes):
                base = f"route_configs[{i}].virtual_hosts[{j}].routes[{k}]"
                if route.route is None:
                    continue
                for m, dest in enumerate(route.route.destinations):
                    need_cluster(f"{base}.route.destinations[{m}].cluster", dest.cluster)
                if route.route.mirror is not None:
                    need_cluster(f"{base}.route.mirror.cluster", route.route.mirror.cluster)
    return problems
