"""The README's demo, as `make demo` runs it: `loom up` of examples/bookstore (a copy, so the
run's state stays out of the repository), a caller joined with `loom run`, then `loom down`."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_up import _alive, _down, _pids, loom, mesh_state

BOOKSTORE = Path(__file__).resolve().parents[2] / "examples" / "bookstore"

CALLS = """
import json, urllib.error, urllib.request

def call(url, body=None):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()

order = json.dumps({"book_id": 1, "quantity": 2}).encode()
print(json.dumps({
    "book": call("http://frontend/api/book/1"),
    "order_via_frontend": call("http://frontend/api/order", order),
    "order_direct": call("http://orders/orders", order),
}))
"""


@pytest.fixture(scope="module")
def bookstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("demo") / "bookstore"
    shutil.copytree(BOOKSTORE, directory, ignore=shutil.ignore_patterns(".loom", "__pycache__"))
    done = loom("up", "--detach", str(directory), timeout=120)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield directory
    finally:
        _down(directory)


def test_the_bookstore_answers_and_only_the_frontend_may_order(bookstore: Path) -> None:
    shell = ["run", "--mesh", str(bookstore), "--name", "shell", "-n", "bookstore"]
    done = loom(*shell, "--", sys.executable, "-c", CALLS)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    status, page = answers["book"]
    assert status == 200 and page["book"]["id"] == 1 and page["catalog_version"] in ("v1", "v2")
    assert page["reviews"] is not None, page
    assert answers["order_via_frontend"][0] in (200, 201), answers
    assert answers["order_direct"] == [403, "RBAC: access denied"]


def test_the_traffic_generator_sees_no_failure_from_its_first_request(bookstore: Path) -> None:
    # It has no port, so it starts once every app it may call is ready and routed to.
    log = bookstore / ".loom" / "logs" / "bookstore.traffic-0.log"
    deadline = time.monotonic() + 60
    while "requests 1-100:" not in (text := log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    first = next(line for line in text.splitlines() if "requests 1-100:" in line)
    assert first.endswith("failed 0"), first


def test_down_leaves_nothing_running(bookstore: Path) -> None:
    pids = _pids(mesh_state(bookstore))
    done = loom("down", str(bookstore))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(pids) >= 16 and not any(_alive(pid) for pid in pids)
