"""The control plane's HTTPS API as a local mesh uses it: mint join tokens (with the operator
token from the control plane's state directory) and read every proxy's sync status."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 10.0


class PlaneError(Exception):
    """The control plane did not answer as expected."""


@dataclass(frozen=True)
class PlaneClient:
    url: str
    state_dir: Path

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.state_dir / "root-cert.pem"))

    def _request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self._context())
        )
        try:
            with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise PlaneError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PlaneError(f"{method} {path}: {exc}") from None

    def mint_token(self, namespace: str, service_account: str, ttl: str = "24h") -> str:
        operator = (self.state_dir / "operator-token").read_text().strip()
        answer = self._request(
            "POST",
            "/v1/tokens",
            {"namespace": namespace, "service_account": service_account, "ttl": ttl},
            token=operator,
        )
        return str(answer["token"])

    def proxy_status(self) -> dict[tuple[str, str], str]:
        """``(namespace, workload) → SYNCED / STALE / NACKED``."""
        rows = self._request("GET", "/v1/proxy-status")
        return {(row["namespace"], row["workload"]): str(row["status"]) for row in rows}

    def routable(self) -> set[tuple[str, str]]:
        """The workloads whose sidecar is SYNCED and reports its app ready: peers route to them."""
        rows = self._request("GET", "/v1/proxy-status")
        return {
            (row["namespace"], row["workload"])
            for row in rows
            if row["status"] == "SYNCED" and row.get("ready", True)
        }
