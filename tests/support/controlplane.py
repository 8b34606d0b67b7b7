"""Talking to a control plane a test started: over HTTPS verified by its trust bundle, with the
operator token for writes and join tokens, and with a workload's client certificate.

```python
plane = register_plane(url, state_dir)     # when the control plane is up (the harness does it)
rows = await get_json(f"{url}/v1/proxy-status")
token = await plane.mint_token("default", "catalog")
identity = await plane.workload_identity(tmp_path / "id", "default", "catalog")
```
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


@dataclass(frozen=True)
class WorkloadIdentity:
    """A certificate the control plane issued, with its key and the trust bundle (PEM files)."""

    cert_file: Path
    key_file: Path
    bundle_file: Path
    spiffe_id: str
    answer: dict[str, Any]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context presenting this certificate to the control plane."""
        context = ssl.create_default_context(cafile=str(self.bundle_file))
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass
class PlaneAccess:
    url: str
    state_dir: Path
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def bundle(self) -> Path:
        return self.state_dir / "root-cert.pem"

    @property
    def operator_token(self) -> str:
        return (self.state_dir / "operator-token").read_text().strip()

    def operator_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"}

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the control plane with its trust bundle; presents no client certificate."""
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.bundle))
        return self._context

    def env(self) -> dict[str, str]:
        """What a ``loom`` CLI command needs to reach this control plane (environment variables)."""
        return {"LOOM_CONTROL_PLANE": self.url, "LOOM_STATE_DIR": str(self.state_dir)}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None,
    ) -> tuple[int, Any]:
        """``(status, decoded JSON or text)`` of one request."""
        connector = aiohttp.TCPConnector(ssl=context or self.ssl_context())
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(
                method, f"{self.url}{path}", json=json_body, data=data, headers=headers or {}
            ) as response,
        ):
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def mint_token(self, namespace: str, service_account: str, ttl: str = "1h") -> str:
        status, body = await self.request(
            "POST",
            "/v1/tokens",
            json_body={"namespace": namespace, "service_account": service_account, "ttl": ttl},
            headers=self.operator_headers(),
        )
        assert status == 200, body
        return str(body["token"])

    async def workload_identity(
        self,
        directory: Path,
        namespace: str,
        service_account: str,
        *,
        token: str | None = None,
        spiffe_id: str | None = None,
    ) -> WorkloadIdentity:
        """A key and CSR made by the sidecar's own key generator, signed by the control plane with a
        join token for ``namespace``/``service_account`` (minted here unless given)."""
        status, answer = await self.request_certificate(
            directory, namespace, service_account, token=token, spiffe_id=spiffe_id
        )
        assert status == 200, answer
        cert, bundle = directory / "cert-chain.pem", directory / "root-cert.pem"
        cert.write_text(answer["certificate_chain"])
        bundle.write_text(answer["trust_bundle"])
        return WorkloadIdentity(cert, directory / "key.pem", bundle, answer["spiffe_id"], answer)

    async def request_certificate(
        self,
        directory: Path,
        namespace: str,
        service_account: str,
        *,
        token: str | None = None,
        spiffe_id: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> tuple[int, Any]:
        """``POST /v1/certificates`` with a new key's CSR for ``spiffe_id`` (default: the identity of
        ``namespace``/``service_account``), authenticated by ``token`` (minted here unless given or
        unless a client-certificate ``context`` is given)."""
        if token is None and context is None:
            token = await self.mint_token(namespace, service_account)
        wanted = spiffe_id or f"spiffe://cluster.local/ns/{namespace}/sa/{service_account}"
        csr = keygen(directory / "key.pem", wanted)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.request(
            "POST", "/v1/certificates", json_body={"csr": csr}, headers=headers, context=context
        )


def keygen(key_file: Path, spiffe_id: str) -> str:
    """The sidecar's key generator, as the sidecar runs it: the key to ``key_file``, the CSR back."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loom.proxy.identity.keygen",
            "--key-out",
            str(key_file),
            "--spiffe-id",
            spiffe_id,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


_PLANES: dict[str, PlaneAccess] = {}


def register_plane(url: str, state_dir: Path) -> PlaneAccess:
    """Remember how to reach the control plane at ``url`` (a restarted one replaces it)."""
    plane = _PLANES[url] = PlaneAccess(url, state_dir)
    return plane


def plane_at(url: str) -> PlaneAccess:
    """The control plane a URL (or a URL under it) belongs to."""
    for base, plane in _PLANES.items():
        if url == base or url.startswith(base + "/"):
            return plane
    raise AssertionError(f"no control plane started by the test harness at {url}")


async def get_json(url: str) -> Any:
    """GET a JSON document from a control plane the harness started (anonymous reads are open)."""
    plane = plane_at(url)
    status, body = await plane.request("GET", url[len(plane.url) :])
    assert status == 200, body
    return body
