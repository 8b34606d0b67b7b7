"""How the checks reach the control plane: HTTPS verified by the trust bundle, each path fetched once.

A failure to reach it is a ``ProbeError`` that says what happened and what to do, told apart the way
an operator needs: the bundle cannot be read, the control plane's certificate does not verify against
it, nothing answers at the URL, or it answered with an error.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from loom.cli.connection import AccessError, ControlPlaneAccess

TIMEOUT_SECONDS = 10.0
WHERE_HINT = "give the control plane's URL with --control-plane or $LOOM_CONTROL_PLANE"
BUNDLE_HINT = (
    "use that control plane's trust bundle: its state directory's root-cert.pem (--state-dir, "
    "$LOOM_STATE_DIR) or a copy of it in $LOOM_CA_FILE"
)


class ProbeError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    date: float | None
    """The ``Date`` header: the control plane's clock, to the second."""
    sent: float
    received: float
    """Local clock when the request left and when its answer was read."""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Probe:
    def __init__(
        self,
        access: ControlPlaneAccess,
        *,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.access = access
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self._answers: dict[str, Answer] = {}
        self._context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return self.access.url

    def get(self, path: str, *, fresh: bool = False) -> Answer:
        """``GET path`` (an answer with any HTTP status), once unless ``fresh``; ProbeError when no
        answer could be had."""
        if not fresh and path in self._answers:
            return self._answers[path]
        answer = self._answers[path] = self._fetch(path)
        return answer

    def get_json(self, path: str, *, fresh: bool = False) -> Any:
        answer = self.get(path, fresh=fresh)
        if answer.status != 200:
            hint = "a control plane older than this loom?" if answer.status == 404 else ""
            raise ProbeError(f"GET {path} answered HTTP {answer.status}", hint)
        try:
            return answer.json()
        except ValueError as exc:
            raise ProbeError(f"GET {path} answered something that is not JSON: {exc}") from None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self._context is None:
            try:
                self._context = self.access.ssl_context()
            except AccessError:
                raise ProbeError(f"cannot read the trust bundle {self.access.bundle}", BUNDLE_HINT) from None
        return self._context

    def _fetch(self, path: str) -> Answer:
        context = self._ssl_context()
        request = urllib.request.Request(f"{self.url}{path}")
        sent = self.clock()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, headers, body = exc.code, exc.headers, exc.read()
        except urllib.error.URLError as exc:
            raise _unreachable(self.url, self.access, exc.reason) from None
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            raise _unreachable(self.url, self.access, exc) from None
        return Answer(status, body, _date(headers.get("Date")), sent, self.clock())


def _unreachable(url: str, access: ControlPlaneAccess, reason: object) -> ProbeError:
    if isinstance(reason, ssl.SSLCertVerificationError):
        why = reason.verify_message or reason.reason or str(reason)
        hint = BUNDLE_HINT
        if "mismatch" in why.lower():  # "Hostname mismatch", "IP address mismatch"
            hint = "the name the control plane is dialled by must be in its certificate (--san NAME)"
        return ProbeError(
            f"the certificate of {url} does not verify against the trust bundle {access.bundle}: {why}", hint
        )
    if isinstance(reason, ssl.SSLError):
        return ProbeError(f"the TLS handshake with {url} failed: {reason}", WHERE_HINT)
    if isinstance(reason, TimeoutError):
        reason = "no answer in time"
    return ProbeError(
        f"cannot reach the control plane at {url}: {reason}",
        f"is `loom controlplane` running there? {WHERE_HINT}",
    )


def _date(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
