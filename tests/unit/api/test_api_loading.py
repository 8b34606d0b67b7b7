"""Loading: files, folders, stdin, multi-document files; positions, namespaces, problem format."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from loom.api import LoadProblem, load_paths, load_text
from loom.api.kinds import Source
from tests.unit.api.fixtures import FIXTURES

TWO_DOCUMENTS = """\
# a leading comment
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  namespace: prod
  labels: {app: reviews}
  annotations: {owner: team-a}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination:
        host: reviews
        subset: v2
      weight: 10
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
"""


def test_a_multi_document_text_gives_one_resource_per_document_with_its_position() -> None:
    result = load_text(TWO_DOCUMENTS, "app.yaml")

    assert result.ok
    service, rule = result.resources
    assert service.source == Source("app.yaml", 2, 0)
    assert rule.source == Source("app.yaml", 20, 1)
    assert str(rule.source) == "app.yaml:20"
    assert service.api_version == "networking.istio.io/v1beta1"
    assert service.key == ("VirtualService", "prod", "reviews")
    assert service.ref == "VirtualService prod/reviews"
    assert dict(service.labels) == {"app": "reviews"}
    assert dict(service.annotations) == {"owner": "team-a"}


def test_field_lines_map_every_path_to_its_line() -> None:
    service = load_text(TWO_DOCUMENTS, "app.yaml").resources[0]

    assert service.field_lines["kind"] == 3
    assert service.field_lines["metadata.name"] == 5
    assert service.field_lines["spec.http[0]"] == 12
    assert service.field_lines["spec.http[0].route[0].destination.subset"] == 13  # flow mapping: same line
    assert service.field_lines["spec.http[0].route[1].destination.subset"] == 17
    assert service.field_lines["spec.http[0].route[1].weight"] == 18
    assert service.line_of("spec.http[0].route[1].destination.port.number") == 15  # nearest ancestor
    assert service.line_of("nothing.here") == 2  # the document's first line


def test_a_missing_namespace_means_default_but_is_remembered_as_not_given() -> None:
    service, rule = load_text(TWO_DOCUMENTS).resources
    assert (service.namespace, service.namespace_given) == ("prod", True)
    assert (rule.namespace, rule.namespace_given) == ("default", False)


def test_a_folder_is_read_recursively_for_yaml_and_yml_files_in_name_order() -> None:
    result = load_paths([FIXTURES / "tree"])

    assert result.ok
    assert [r.name for r in result.resources] == ["a", "b", "c"]  # notes.txt is not read
    assert [Path(r.source.file).name for r in result.resources] == ["a.yaml", "b.yml", "c.yaml"]


def test_files_and_folders_can_be_mixed_and_strings_are_paths(tmp_path: Path) -> None:
    file = tmp_path / "one.conf"  # named explicitly: read whatever its suffix
    file.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: one}\nspec: {}\n")

    result = load_paths([str(file), FIXTURES / "tree" / "a.yaml"])

    assert [r.name for r in result.resources] == ["one", "a"]


def test_stdin_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  portz: []\n")
    )

    result = load_paths(["-"])

    assert [str(p) for p in result.problems] == [
        "<stdin>:5: Service default/x: spec.portz: unknown field `portz` (hint: did you mean `ports`?)"
    ]


def test_a_missing_path_is_a_problem_and_the_others_still_load(tmp_path: Path) -> None:
    result = load_paths([tmp_path / "missing.yaml", FIXTURES / "tree" / "a.yaml"])

    assert [r.name for r in result.resources] == ["a"]
    (problem,) = result.problems
    assert problem.file.endswith("missing.yaml")
    assert problem.message == "no such file or folder"


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    file.write_bytes("metadata: {name: caf\xe9}\n".encode("latin-1"))

    (problem,) = load_paths([file]).problems

    assert "cannot read the file" in problem.message
    assert problem.hint == "save the file as UTF-8"


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    file = tmp_path / "bom.yaml"
    file.write_bytes(b"\xef\xbb\xbfapiVersion: v1\nkind: Service\nmetadata: {name: bom}\nspec: {}\n")
    assert [r.name for r in load_paths([file]).resources] == ["bom"]


def test_problems_across_files_keep_their_own_file_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {portz: []}\n"
    )
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Servise\nmetadata: {name: b}\nspec: {}\n")

    result = load_paths([tmp_path])

    assert [(Path(p.file).name, p.line, p.field_path) for p in result.problems] == [
        ("a.yaml", 4, "spec.portz"),
        ("b.yaml", 2, "kind"),
    ]


def test_yaml_anchors_and_merge_keys_are_resolved() -> None:
    text = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  subsets:
  - name: v1
    labels: &common {app: r, version: v1}
  - name: v2
    labels:
      <<: *common
      version: v2
"""
    (rule,) = load_text(text).resources
    assert [dict(s.labels) for s in rule.spec.subsets] == [  # type: ignore[attr-defined]
        {"app": "r", "version": "v1"},
        {"app": "r", "version": "v2"},
    ]


def test_load_problem_formats_like_a_compiler_message() -> None:
    problem = LoadProblem(
        "a.yaml", 7, "VirtualService prod/r", "spec.http[0].route", "`route` is empty", "add one"
    )
    assert (
        str(problem)
        == "a.yaml:7: VirtualService prod/r: spec.http[0].route: `route` is empty (hint: add one)"
    )
    bare = LoadProblem("a.yaml", 3, None, "", "YAML syntax error: x", "")
    assert str(bare) == "a.yaml:3: YAML syntax error: x"


def test_an_istio_operator_may_leave_out_its_name() -> None:
    (operator,) = load_text("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n").resources
    assert (operator.name, operator.namespace_given) == ("default", False)
    assert operator.spec.mesh_config is None  # type: ignore[attr-defined]
