"""The little bit of plumbing every bookstore server shares, on the standard library only.

An app is one function, ``handle(request) -> Response``; ``serve(name, handle)`` runs it:

- binds ``$HOST:$PORT`` (defaults: 127.0.0.1 and the app's own port);
- answers ``GET /healthz`` itself (200 while serving), so every app has a readiness check;
- logs one line per request to stdout;
- on SIGTERM (or Ctrl-C) stops accepting, lets the requests in flight finish, and exits 0.

``forwarded_headers(request)`` gives the trace headers to pass on to those calls.

``call(url)`` is how an app talks to another service: a plain ``http://catalog/books/1``. There is
no service discovery here. ``urllib`` sends every request to ``$HTTP_PROXY`` when it is set, so in
the mesh the sidecar beside the app receives it, picks the destination, and adds mutual TLS,
retries and timeouts on the way; run by hand without a proxy, the name must resolve by itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

DRAIN_SECONDS = 20.0  # how long a SIGTERM waits for the requests in flight


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, indent=2).encode() + b"\n"
    return Response(status, body, "application/json", dict(headers or {}))


def html_response(text: str, status: int = 200) -> Response:
    return Response(status, text.encode(), "text/html; charset=utf-8")


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


@dataclass(frozen=True)
class Reply:
    """What another service answered: its status and JSON body, or ``error`` when nothing came back."""

    status: int
    data: Any
    headers: Mapping[str, str]
    error: str | None = None


def call(
    url: str,
    method: str = "GET",
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """Call another service and read its JSON answer; never raises for HTTP or network errors."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if body is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, _json_or_text(response.read()), dict(response.headers))
    except urllib.error.HTTPError as exc:  # the service (or the mesh) answered 4xx/5xx
        return Reply(exc.code, _json_or_text(exc.read()), dict(exc.headers))
    except (OSError, ValueError) as exc:  # refused, reset, timed out, bad URL
        return Reply(0, None, {}, error=f"{type(exc).__name__}: {exc}")


TRACE_HEADERS = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
)
"""What an app copies from the request it serves onto the calls it makes, so that the sidecars join
them into one trace (as with Istio, the mesh cannot tell which outgoing call belongs to which
incoming request; the app can)."""


def forwarded_headers(request: Request, also: tuple[str, ...] = ()) -> dict[str, str]:
    """The trace headers of ``request`` (and the headers named in ``also``), for the calls it causes."""
    return {name: request.headers[name] for name in (*TRACE_HEADERS, *also) if name in request.headers}


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()


def serve(name: str, handle: Callable[[Request], Response], default_port: int) -> None:
    """Serve ``handle`` on ``$HOST:$PORT`` until SIGTERM or SIGINT, then drain and return."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", str(default_port)))
    in_flight = _Counter()
    draining = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the sidecar in front of the app expects
        disable_nagle_algorithm = True  # headers and body go out as two writes: send each at once
        server_version = name

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            started = time.monotonic()
            with in_flight:
                target = urlsplit(self.path)  # "/books/1?x=y" (or "http://catalog/books/1")
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, target.path or "/", target.query, self.headers, body)
                try:
                    if request.path == "/healthz":
                        response = json_response({"status": "ok", "service": name})
                    else:
                        response = handle(request)
                except Exception as exc:  # a bug in the app: answer 500 and say so in the log
                    response = error(500, f"{type(exc).__name__}: {exc}")
                self._send(response)
            elapsed_ms = (time.monotonic() - started) * 1000
            print(
                f'{name} {self.client_address[0]} "{self.command} {self.path}" '
                f"{response.status} {len(response.body)}B {elapsed_ms:.1f}ms",
                flush=True,
            )

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("content-type", response.content_type)
            self.send_header("content-length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            if draining.is_set():
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request is printed by _dispatch

        def log_error(self, format: str, *args: object) -> None:
            print(f"{name} {self.client_address[0]} error: {format % args}", file=sys.stderr, flush=True)

    server = ThreadingHTTPServer((host, port), Handler)
    # Idle keep-alive connections must not hold the exit; the requests in flight are waited for below.
    server.daemon_threads = True

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not draining.is_set():
            print(f"{name} got {signal.Signals(signum).name}: draining", flush=True)
            draining.set()
            # shutdown() waits for serve_forever() to return, so it runs on another thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound_host, bound_port = server.server_address[:2]
    print(f"{name} listening on http://{bound_host}:{bound_port}", flush=True)
    server.serve_forever()
    left = in_flight.wait_idle(DRAIN_SECONDS)
    server.server_close()
    print(f"{name} stopped" + (f" ({left} requests still in flight)" if left else ""), flush=True)


class _Counter:
    """How many requests are being handled right now; ``with counter:`` around each one."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        with self._idle:
            self._idle.wait_for(lambda: self._count == 0, timeout)
            return self._count
