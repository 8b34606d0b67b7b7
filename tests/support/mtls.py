"""Two sidecars talking mutual TLS, run from snapshot files: client → server → backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.support.certs import CertAuthority, spiffe, write_identity
from tests.support.proxy import ProxyProcess
from tests.support.snapshots import Doc, cluster, route_to, sidecar

ProxyFactory = Callable[..., Awaitable[ProxyProcess]]

CLIENT_ID = spiffe("default", "client")
SERVER_ID = spiffe("default", "catalog")


def server_doc(backend_port: int, identity: dict[str, str] | None, mode: str = "STRICT", **node: Any) -> Doc:
    """The destination's sidecar: an inbound listener in ``mode`` in front of the backend."""
    doc = sidecar([route_to(("app", 1))], [cluster("app", [backend_port])], direction="inbound")
    doc["listeners"][0]["mtls"] = mode
    doc["node"] = {"workload": "catalog-v1", "namespace": "default", "service_account": "catalog", **node}
    if identity is not None:
        doc["identity"] = identity
    return doc


def client_doc(
    server_port: int,
    identity: dict[str, str] | None,
    *,
    expect: str = SERVER_ID,
    mtls: bool = True,
    limits: Doc | None = None,
) -> Doc:
    """The calling sidecar: outbound to the server sidecar's inbound port with mutual TLS."""
    target = cluster("catalog", [server_port], tls={"server_identities": [expect]})
    for endpoint in target["endpoints"]:
        endpoint["mtls"] = mtls
    if limits is not None:
        target["limits"] = limits
    doc = sidecar([route_to(("catalog", 1))], [target])
    doc["node"] = {"workload": "client", "namespace": "default", "service_account": "client"}
    if identity is not None:
        doc["identity"] = identity
    return doc


async def start_pair(
    tmp_path: Path,
    proxy: ProxyFactory,
    backend_port: int,
    ca: CertAuthority,
    *,
    mode: str = "STRICT",
    client_limits: Doc | None = None,
) -> tuple[ProxyProcess, ProxyProcess]:
    server_identity = write_identity(tmp_path, "server", ca, SERVER_ID)
    client_identity = write_identity(tmp_path, "client", ca, CLIENT_ID)
    server = await proxy(server_doc(backend_port, server_identity, mode), "server")
    client = await proxy(client_doc(server.port("inbound"), client_identity, limits=client_limits), "client")
    return client, server
