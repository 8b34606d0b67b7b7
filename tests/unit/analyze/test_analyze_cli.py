"""``loom analyze``: text and JSON output, exit codes, --fail-on, stdin, folders, load problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loom.cli.main import app
from tests.unit.analyze.cases import COMMON, SEED_EXAMPLES
from tests.unit.analyze.test_analyze_seed_examples import EXPECTED, seed_paths

runner = CliRunner()

UNDEFINED_SUBSET = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v3}
      weight: 10
"""

DENY_ALL = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: default}
spec: {}
"""

FAN_IN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec:
  hosts: [a.example.com]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 1, retryOn: connect-failure}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [b.example.com]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 1, retryOn: connect-failure}
"""


def analyze(*args: str, stdin: str | None = None) -> tuple[int, list[str], str]:
    result = runner.invoke(app, ["analyze", *args], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout.splitlines(), result.stderr


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_text_output_one_line_per_finding_and_exit_1_on_an_error(tmp_path: Path) -> None:
    routes = write(tmp_path, "routes.yaml", UNDEFINED_SUBSET)

    code, lines, stderr = analyze(
        str(routes), str(COMMON / "reviews.yaml"), str(COMMON / "reviews-rule.yaml")
    )

    assert code == 1
    assert lines == [
        f"Error [LM0101] VirtualService default/reviews ({routes}:10) "
        'spec.http[0].route[1].destination.subset: subset "v3" is not defined by any DestinationRule '
        "for host reviews (reviews.default.svc.cluster.local) — requests routed to it fail with 503 "
        "(no cluster for the subset, response flag NC). Fix: add subset v3 to DestinationRule "
        f"default/reviews ({COMMON / 'reviews-rule.yaml'}:2) or route to an existing subset (v1, v2)."
    ]
    assert stderr.strip() == "✘ 1 error, 0 warnings, 0 info in 5 resources (3 files)."


def test_json_output_is_a_list_of_objects(tmp_path: Path) -> None:
    routes = write(tmp_path, "routes.yaml", UNDEFINED_SUBSET)

    code, lines, _ = analyze(
        "-o", "json", str(routes), str(COMMON / "reviews.yaml"), str(COMMON / "reviews-rule.yaml")
    )

    assert code == 1
    (finding,) = json.loads("\n".join(lines))
    assert finding == {
        "code": "LM0101",
        "level": "Error",
        "resource": "VirtualService default/reviews",
        "file": str(routes),
        "line": 10,
        "path": "spec.http[0].route[1].destination.subset",
        "message": finding["message"],
        "fix": finding["fix"],
    }
    assert finding["message"].startswith('subset "v3"') and finding["fix"].startswith("add subset v3")


def test_warnings_pass_unless_fail_on_warning(tmp_path: Path) -> None:
    policy = write(tmp_path, "deny.yaml", DENY_ALL)

    code, lines, stderr = analyze(str(policy))
    assert code == 0
    assert [line.split(" ", 2)[:2] for line in lines] == [["Warning", "[LM1001]"]]
    assert "0 errors, 1 warning, 0 info in 1 resource (1 file)" in stderr

    code, _, _ = analyze("--fail-on", "warning", str(policy))
    assert code == 1
    code, _, _ = analyze("--fail-on", "WARNING", str(policy))
    assert code == 1


def test_info_fails_only_with_fail_on_info(tmp_path: Path) -> None:
    routes = write(tmp_path, "routes.yaml", FAN_IN)
    args = [str(routes), str(COMMON / "reviews.yaml")]

    code, lines, _ = analyze(*args)
    assert code == 0
    assert [line.split(" ", 2)[:2] for line in lines] == [["Info", "[LM0704]"]]
    assert analyze("--fail-on", "warning", *args)[0] == 0
    assert analyze("--fail-on", "info", *args)[0] == 1


def test_stdin(tmp_path: Path) -> None:
    code, lines, _ = analyze(
        "-", str(COMMON / "reviews.yaml"), str(COMMON / "reviews-rule.yaml"), stdin=UNDEFINED_SUBSET
    )

    assert code == 1
    assert lines[0].startswith("Error [LM0101] VirtualService default/reviews (<stdin>:10) ")


def test_folders_are_read_recursively(tmp_path: Path) -> None:
    write(tmp_path, "mesh/reviews.yaml", (COMMON / "reviews.yaml").read_text())
    write(tmp_path, "mesh/routing/rule.yaml", (COMMON / "reviews-rule.yaml").read_text())
    write(tmp_path, "mesh/routing/deeper/vs.yml", UNDEFINED_SUBSET.replace("v3", "v2"))
    write(tmp_path, "mesh/notes.txt", "not yaml, not read")

    code, lines, stderr = analyze(str(tmp_path / "mesh"))

    assert (code, lines) == (0, [])
    assert stderr.strip() == "✔ No issues found in 5 resources (3 files)."


def test_load_problems_are_errors_with_code_lm0001(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", UNDEFINED_SUBSET.replace("hosts:", "hostz:"))

    code, lines, _ = analyze(str(bad), str(tmp_path / "missing.yaml"))

    assert code == 1
    assert lines[0] == (
        f"Error [LM0001] VirtualService default/reviews ({bad}:5) spec.hostz: unknown field `hostz`. "
        "Fix: did you mean `hosts`?"
    )
    assert lines[1] == (
        f"Error [LM0001] ({tmp_path / 'missing.yaml'}): no such file or folder. "
        "Fix: check the path (use - for stdin)."
    )


def test_bad_options_exit_2(tmp_path: Path) -> None:
    policy = write(tmp_path, "deny.yaml", DENY_ALL)

    assert analyze("--fail-on", "fatal", str(policy))[0] == 2
    assert analyze("-o", "yaml", str(policy))[0] == 2
    assert runner.invoke(app, ["analyze"]).exit_code == 2


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_examples_pass_loom_analyze(name: str) -> None:
    code, lines, _ = analyze(*map(str, seed_paths(name)))

    assert code == 0, lines
    assert not [line for line in lines if line.startswith("Error")]


def test_the_command_runs_as_a_process_reading_stdin() -> None:
    seed = SEED_EXAMPLES / "002-orders-destinationrule.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "loom.cli.main", "analyze", "--fail-on", "warning", "-"],
        input=seed.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert [line.split(" ")[:4] for line in done.stdout.splitlines()] == [
        ["Warning", "[LM0202]", "DestinationRule", "production/orders-api"],
        ["Warning", "[LM1101]", "DestinationRule", "production/orders-api"],
        ["Warning", "[LM1101]", "DestinationRule", "production/orders-api"],
    ]
    assert "(<stdin>:20) spec.trafficPolicy.connectionPool.http.pendingRequests" in done.stdout
    assert done.stderr.strip().endswith("0 errors, 3 warnings, 0 info in 1 resource (1 file).")
