"""Reading a mesh folder for `loom up`, and the environment its apps get."""

from __future__ import annotations

from pathlib import Path

import pytest

from loom.runtime.appenv import app_env
from loom.runtime.plan import PlanError, read_plan

WORKLOAD = """
apiVersion: runtime.loom.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, namespace: shop}}
spec:
  labels: {{app: catalog}}
  replicas: {replicas}
  port: 9080
  command: [python, app.py]
  workingDir: apps
"""


def test_one_replica_per_index_with_the_working_dir_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.yaml").write_text(WORKLOAD.format(name="catalog", replicas=2))
    plan = read_plan(tmp_path)
    assert [r.name for r in plan.replicas] == ["catalog-0", "catalog-1"]
    assert {r.working_dir for r in plan.replicas} == {(tmp_path / "sub" / "apps").resolve()}
    assert plan.replicas[0].service_account == "default" and plan.replicas[0].port == 9080


def test_a_folder_that_does_not_load_is_refused_with_its_problems(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(WORKLOAD.format(name="catalog", replicas="two"))
    with pytest.raises(PlanError) as raised:
        read_plan(tmp_path)
    assert [(p.file.endswith("w.yaml"), p.line, p.field_path) for p in raised.value.problems] == [
        (True, 7, "spec.replicas")
    ]


def test_a_folder_without_workloads_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {}\n")
    with pytest.raises(PlanError, match="no Workload"):
        read_plan(tmp_path)


def test_colliding_replica_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(WORKLOAD.format(name="catalog", replicas=2))
    (tmp_path / "b.yaml").write_text(WORKLOAD.format(name="catalog", replicas=1))
    with pytest.raises(PlanError, match="collide"):
        read_plan(tmp_path)


def test_the_env_contract() -> None:
    env = app_env(
        address="127.0.0.3",
        port=9080,
        outbound_port=15001,
        workload="catalog-v2-0",
        namespace="shop",
        extra={"PORT": "1234", "X": "y"},
        base={"PATH": "/bin", "LOOM_JOIN_TOKEN": "secret", "HTTPS_PROXY": "http://elsewhere"},
    )
    assert env["HOST"] == "127.0.0.3" and env["PORT"] == "1234" and env["X"] == "y"
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:15001"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1"
    assert (env["LOOM_WORKLOAD"], env["LOOM_NAMESPACE"], env["PATH"]) == ("catalog-v2-0", "shop", "/bin")
    assert "LOOM_JOIN_TOKEN" not in env and "HTTPS_PROXY" not in env
    client = app_env(
        address="127.0.0.4",
        port=0,
        outbound_port=1,
        workload="t",
        namespace="d",
        extra={},
        base={"PORT": "9"},
    )
    assert "PORT" not in client
