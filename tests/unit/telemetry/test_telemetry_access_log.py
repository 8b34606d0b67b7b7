"""The access log: Istio's JSON and TEXT lines, buffering, and failure without raising."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest

from loom.proxy.telemetry import AccessLogEntry, AccessLogger, flags
from loom.snapshot.model import AccessLog

ISTIO_JSON_FIELDS = {
    "start_time",
    "route_name",
    "method",
    "path",
    "protocol",
    "response_code",
    "response_flags",
    "response_code_details",
    "connection_termination_details",
    "bytes_received",
    "bytes_sent",
    "duration",
    "upstream_service_time",
    "x_forwarded_for",
    "user_agent",
    "request_id",
    "authority",
    "upstream_host",
    "upstream_cluster",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "requested_server_name",
    "upstream_transport_failure_reason",
}

START = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z


def _entry(**overrides) -> AccessLogEntry:
    fields = {
        "start_time": START,
        "method": b"GET",
        "path": b"/items?page=2",
        "protocol": "HTTP/1.1",
        "response_code": 200,
        "response_flags": flags.NONE,
        "response_code_details": "via_upstream",
        "bytes_received": 12,
        "bytes_sent": 3456,
        "duration_ms": 7.9,
        "upstream_service_time_ms": 6.2,
        "user_agent": b"curl/8.5.0",
        "request_id": b"5f0c7a0e-2b1e-4f5a-9a57-1d2f7c9d4b11",
        "authority": b"catalog.shop:8080",
        "upstream_host": "10.0.0.7:8080",
        "upstream_cluster": "outbound|8080||catalog.shop.svc.cluster.local",
        "downstream_remote_address": "10.0.0.3:51234",
        "downstream_local_address": "10.96.0.10:8080",
        "route_name": "default",
    }
    fields.update(overrides)
    return AccessLogEntry(**fields)


def _logger(path: Path, encoding: str = "JSON", **kwargs) -> AccessLogger:
    return AccessLogger(AccessLog(path=str(path), encoding=encoding), **kwargs)


def test_json_lines(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path)
    logger.log(_entry())
    logger.log(
        _entry(response_code=503, response_flags="UF,URX", upstream_service_time_ms=None, user_agent=None)
    )
    logger.close()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert set(first) == ISTIO_JSON_FIELDS
    assert first == {
        "start_time": "2023-11-14T22:13:20.250Z",
        "route_name": "default",
        "method": "GET",
        "path": "/items?page=2",
        "protocol": "HTTP/1.1",
        "response_code": 200,
        "response_flags": "-",
        "response_code_details": "via_upstream",
        "connection_termination_details": None,
        "bytes_received": 12,
        "bytes_sent": 3456,
        "duration": 7,
        "upstream_service_time": "6",
        "x_forwarded_for": None,
        "user_agent": "curl/8.5.0",
        "request_id": "5f0c7a0e-2b1e-4f5a-9a57-1d2f7c9d4b11",
        "authority": "catalog.shop:8080",
        "upstream_host": "10.0.0.7:8080",
        "upstream_cluster": "outbound|8080||catalog.shop.svc.cluster.local",
        "upstream_local_address": None,
        "downstream_local_address": "10.96.0.10:8080",
        "downstream_remote_address": "10.0.0.3:51234",
        "requested_server_name": None,
        "upstream_transport_failure_reason": None,
    }
    assert (second["response_code"], second["response_flags"]) == (503, "UF,URX")
    assert second["upstream_service_time"] is None
    assert second["user_agent"] is None


def test_json_escapes_and_decodes(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path)
    logger.log(_entry(path=b'/q?x="a\\b"', user_agent=b"bad \xff bytes", authority="caf\u00e9"))
    logger.close()
    (line,) = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["path"] == '/q?x="a\\b"'
    assert record["user_agent"] == "bad \ufffd bytes"
    assert record["authority"] == "caf\u00e9"


def test_authorization_outcome_in_json_and_text(tmp_path: Path):
    denied = {
        "response_code": 403,
        "response_code_details": "rbac_access_denied_matched_policy[shop/no-admin]",
        "upstream_host": None,
        "upstream_cluster": None,
    }
    json_path, text_path = tmp_path / "access.json", tmp_path / "access.log"
    for path, encoding in ((json_path, "JSON"), (text_path, "TEXT")):
        logger = _logger(path, encoding)
        logger.log(_entry(**denied, audit_policy="shop/audit-admin"))
        logger.log(_entry(**denied))
        logger.close()
    audited, plain = (json.loads(line) for line in json_path.read_text().splitlines())
    assert audited["audit_policy"] == "shop/audit-admin"
    assert set(audited) == {*ISTIO_JSON_FIELDS, "audit_policy"}
    assert set(plain) == ISTIO_JSON_FIELDS  # the key only where an AUDIT policy matched
    assert plain["response_code_details"] == "rbac_access_denied_matched_policy[shop/no-admin]"
    # TEXT stays Istio's line: the details in their place, no audit field.
    first, second = text_path.read_text().splitlines()
    assert first == second
    assert ' 403 - rbac_access_denied_matched_policy[shop/no-admin] - "-" ' in first


def test_text_line(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path, "TEXT")
    logger.log(_entry())
    logger.close()
    assert path.read_text() == (
        '[2023-11-14T22:13:20.250Z] "GET /items?page=2 HTTP/1.1" 200 - via_upstream - "-" 12 3456 7 6 "-" '
        '"curl/8.5.0" "5f0c7a0e-2b1e-4f5a-9a57-1d2f7c9d4b11" "catalog.shop:8080" "10.0.0.7:8080" '
        "outbound|8080||catalog.shop.svc.cluster.local - 10.96.0.10:8080 10.0.0.3:51234 - default\n"
    )


def test_tcp_entry_defaults(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path, "TEXT")
    logger.log(AccessLogEntry(start_time=START, bytes_received=5, bytes_sent=9, duration_ms=1000))
    logger.close()
    line = path.read_text()
    assert re.fullmatch(
        r'\[2023-11-14T22:13:20\.250Z\] "- - -" 0 - - - "-" 5 9 1000 - "-" "-" "-" "-" "-" - - - - - -\n',
        line,
    )


def test_buffered_until_flush_bytes(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path, flush_bytes=2000)
    logger.log(_entry())
    assert path.read_text() == ""
    assert logger.buffered_bytes > 0
    while logger.buffered_bytes:
        logger.log(_entry())
    lines = path.read_text().splitlines()
    assert len(lines) > 1
    assert all(json.loads(line)["response_code"] == 200 for line in lines)
    logger.close()


async def test_timer_flushes(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path, flush_interval=0.01)
    logger.start(asyncio.get_running_loop())
    logger.log(_entry())
    for _ in range(200):
        if path.read_text():
            break
        await asyncio.sleep(0.01)
    assert json.loads(path.read_text())["method"] == "GET"
    logger.log(_entry(method=b"POST"))
    logger.close()
    assert [json.loads(line)["method"] for line in path.read_text().splitlines()] == ["GET", "POST"]


def test_unopenable_path_counts_drops(tmp_path: Path):
    logger = _logger(tmp_path / "missing-dir" / "access.log")
    for _ in range(3):
        logger.log(_entry())
    logger.close()
    assert logger.dropped == 3
    assert "cannot open" in (logger.last_error or "")


def test_open_is_retried_on_the_timer(tmp_path: Path):
    directory = tmp_path / "later"
    logger = _logger(directory / "access.log")
    logger.log(_entry())
    directory.mkdir()
    logger._tick()  # what the timer does
    logger.log(_entry())
    logger.close()
    assert logger.dropped == 1
    assert len((directory / "access.log").read_text().splitlines()) == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_write_errors_count_drops():
    logger = AccessLogger(AccessLog(path="/dev/full"))
    for _ in range(4):
        logger.log(_entry())
    logger.flush()
    assert logger.dropped == 4
    assert "cannot write" in (logger.last_error or "")
    logger.close()


def test_bad_entry_is_dropped_not_raised(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path)
    logger.log(_entry(response_code="not a number"))
    logger.log(_entry())
    logger.close()
    assert logger.dropped == 1
    assert len(path.read_text().splitlines()) == 1


def test_full_pipe_keeps_the_rest_then_drops_past_the_bound(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        logger = _logger(fifo, flush_bytes=4096, max_buffer_bytes=256 * 1024)
        logged = 0
        while logger.dropped == 0:
            logger.log(_entry())
            logged += 1
        assert logger.buffered_bytes > 0  # the pipe is full: the rest waits
        dropped = logger.dropped
        received = b""
        while logger.buffered_bytes:
            received += _read(reader)
            logger.flush()
        received += _read(reader)
        logger.close()
        assert logger.dropped == dropped  # nothing more lost once the reader catches up
        lines = received.decode().splitlines()
        assert all(json.loads(line)["bytes_sent"] == 3456 for line in lines)
        assert len(lines) + logger.dropped == logged
    finally:
        os.close(reader)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_stdout_is_fd_1_and_stays_open(capfd: pytest.CaptureFixture[str]):
    logger = AccessLogger(AccessLog(path="/dev/stdout", encoding="TEXT"))
    logger.log(_entry())
    logger.close()
    assert '"GET /items?page=2 HTTP/1.1" 200' in capfd.readouterr().out
    os.fstat(1)  # still open


def test_reopen_after_rotation(tmp_path: Path):
    path = tmp_path / "access.log"
    logger = _logger(path)
    logger.log(_entry())
    logger.flush()
    path.rename(tmp_path / "access.log.1")
    logger.reopen()
    logger.log(_entry(method=b"DELETE"))
    logger.close()
    assert json.loads((tmp_path / "access.log.1").read_text())["method"] == "GET"
    assert json.loads(path.read_text())["method"] == "DELETE"


def test_log_after_close_is_dropped(tmp_path: Path):
    logger = _logger(tmp_path / "access.log")
    logger.close()
    logger.log(_entry())
    assert logger.dropped == 1
