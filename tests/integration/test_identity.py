"""Workload identity end to end, against a real control plane over HTTPS: join tokens and the CSRs
they allow, the operator credential, client certificates that act only for their own workload, a
sidecar that gets its certificate (and shows its expiry), renews it, keeps one connection, a
plug-in CA with an intermediate, and sidecars talking mutual TLS with what the CA issued."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography import x509

from loom.proxy.agent.http import ControlPlaneClient
from tests.support.controlplane import PlaneAccess, WorkloadIdentity
from tests.support.load import run_load
from tests.support.mesh import (
    LoomProcess,
    all_synced,
    config_dir_plane,
    free_port,
    running_mesh,
    service,
    start_plane,
    stop_all,
)
from tests.support.operator_ca import operator_ca
from tests.support.proxy import wait_until

CATALOG_ID = "spiffe://cluster.local/ns/default/sa/catalog"
REGISTRATION = {
    "name": "catalog-1",
    "namespace": "default",
    "service_account": "catalog",
    "labels": {"app": "catalog"},
    "address": "127.0.0.1",
    "app_ports": [9080],
    "sidecar": {"outbound": 15001, "inbound": {"9080": 15006}, "admin": 0},
}


class Plane:
    """A control plane process and how to reach it."""

    def __init__(self, process: LoomProcess, access: PlaneAccess, config: Path) -> None:
        self.process = process
        self.access = access
        self.config = config

    @property
    def url(self) -> str:
        return self.access.url

    def log(self) -> str:
        return self.process.log()


StartPlane = Callable[..., Awaitable[Plane]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartPlane]:
    """``await start(*extra_args)`` → a running ``loom controlplane`` on a folder with one Service;
    every process started (``processes``) is stopped after the test."""
    processes: list[LoomProcess] = []

    async def plane(*extra: str, name: str = "controlplane") -> Plane:
        config = tmp_path / f"{name}-config"
        config.mkdir()
        (config / "catalog.yaml").write_text(yaml.safe_dump(service()))
        state = tmp_path / f"{name}-state"
        args = ["controlplane", "--config-dir", str(config), "--state-dir", str(state), "--port", "0", *extra]
        process = LoomProcess(tmp_path, name, args)
        processes.append(process)
        url = await start_plane(process, state)
        return Plane(process, PlaneAccess(url, state), config)

    plane.processes = processes  # type: ignore[attr-defined]
    yield plane
    for process in processes:
        process.kill()


def sidecar(
    tmp_path: Path, plane: Plane, name: str, *extra: str, env: dict[str, str] | None = None
) -> LoomProcess:
    args = [
        "proxy", "--control-plane", plane.url, "--workload", name, "--service-account", "catalog",
        "--label", "app=catalog", "--outbound-port", str(free_port()), "--inbound", f"9080:{free_port()}",
        "--admin-port", "0", *extra,
    ]  # fmt: skip
    return LoomProcess(tmp_path, name, args, env)


def loom_cli(plane: Plane, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loom.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **plane.access.env(), **(env or {})},
    )


async def expiry_gauge(admin_port: int) -> float | None:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{admin_port}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    found = re.search(r"^loom_identity_cert_expiration_timestamp_seconds (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def mapped_files(process: LoomProcess) -> str:
    """What the process has mapped (its shared libraries among them): /proc/PID/maps."""
    assert process.process is not None
    return Path(f"/proc/{process.process.pid}/maps").read_text()


async def synced(plane: Plane, workload: str) -> bool:
    status, rows = await plane.access.request("GET", "/v1/proxy-status")
    return status == 200 and any(r["workload"] == workload and r["status"] == "SYNCED" for r in rows)


# join tokens and CSRs ----------------------------------------------------------------------------------


async def test_a_csr_for_an_identity_the_token_does_not_grant_is_refused_and_logged(
    start: StartPlane, tmp_path: Path
) -> None:
    plane = await start()
    token = await plane.access.mint_token("default", "catalog")
    admin = "spiffe://cluster.local/ns/default/sa/admin"
    status, body = await plane.access.request_certificate(
        tmp_path / "admin", "default", "catalog", token=token, spiffe_id=admin
    )
    assert status == 403, body
    assert admin in body["error"] and CATALOG_ID in body["error"]
    assert "certificate_chain" not in body

    async def logged() -> bool:
        return "WARNING" in plane.log() and f"granted {CATALOG_ID}, requested {admin}" in plane.log()

    await wait_until(logged, 5, "the refusal to be logged")
    assert "issued a certificate" not in plane.log()

    # The sidecar that holds that token but says it is another service account is refused too:
    # it stops, saying why, instead of serving without an identity.
    process = sidecar(
        tmp_path, plane, "admin-1", "--service-account", "admin", env={"LOOM_JOIN_TOKEN": token}
    )
    assert await process.run_to_exit() == 2
    assert "refused a certificate for spiffe://cluster.local/ns/default/sa/admin" in process.log()


async def test_an_expired_or_forged_token_gets_nothing(start: StartPlane, tmp_path: Path) -> None:
    plane = await start()
    token = await plane.access.mint_token("default", "catalog", ttl="1s")
    await asyncio.sleep(2.1)
    status, body = await plane.access.request_certificate(
        tmp_path / "late", "default", "catalog", token=token
    )
    assert status == 401 and "expired" in body["error"], body

    other = await start(name="other-plane")  # another control plane: another token key
    foreign = await other.access.mint_token("default", "catalog")
    status, body = await plane.access.request_certificate(
        tmp_path / "foreign", "default", "catalog", token=foreign
    )
    assert status == 401 and "not issued by this control plane" in body["error"], body
    status, body = await plane.access.request_certificate(
        tmp_path / "none", "default", "catalog", token="", context=plane.access.ssl_context()
    )
    assert status == 401, body
    assert "issued a certificate" not in plane.log()


# the operator credential ---------------------------------------------------------------------------------


async def test_nothing_is_writable_without_the_operator_token(start: StartPlane, tmp_path: Path) -> None:
    plane = await start()
    access = plane.access
    workload = await access.workload_identity(tmp_path / "catalog", "default", "catalog")
    vs = yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews"}, "spec": {}})
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/resources", {"data": vs.encode()}),
        ("DELETE", "/v1/resources/Service/default/catalog", {}),
        ("POST", "/v1/tokens", {"json_body": {"namespace": "default", "service_account": "catalog"}}),
    ]
    for method, path, body in attempts:
        for headers, context in [
            ({}, None),  # anonymous
            ({"Authorization": "Bearer not-the-token"}, None),
            ({"Authorization": f"Bearer {access.operator_token[:-1]}"}, None),
            ({}, workload.ssl_context()),  # a workload is not the operator
        ]:
            status, answer = await access.request(method, path, headers=headers, context=context, **body)
            assert status == 401, (method, path, headers, answer)
    status, body = await access.request("GET", "/v1/resources")
    assert status == 200 and [r["name"] for r in body["resources"]] == ["catalog"]  # nothing changed
    for path in ("/v1/resources", "/v1/proxy-status", "/v1/workloads", "/healthz"):
        assert (await access.request("GET", path))[0] == 200, path  # reads are open (over TLS)

    manifest = tmp_path / "reviews.yaml"
    manifest.write_text(vs)
    done = loom_cli(plane, "apply", "-f", str(manifest), env={"LOOM_OPERATOR_TOKEN": "wrong"})
    assert done.returncode == 1 and "operator" in done.stderr, done.stderr
    done = loom_cli(plane, "apply", "-f", str(manifest))  # the token from --state-dir
    assert done.returncode == 0 and "Service default/reviews applied" in done.stdout, done.stderr
    done = loom_cli(plane, "token", "create", "-n", "default", "--service-account", "catalog", "--ttl", "5m")
    assert done.returncode == 0 and done.stdout.startswith("v1."), done.stderr
    assert CATALOG_ID in done.stderr


# workloads act for themselves ------------------------------------------------------------------------------


async def test_a_workload_certificate_acts_only_for_its_own_identity(
    start: StartPlane, tmp_path: Path
) -> None:
    plane = await start()
    access = plane.access
    catalog = await access.workload_identity(tmp_path / "catalog", "default", "catalog")
    reviews = await access.workload_identity(tmp_path / "reviews", "default", "reviews")
    body = json.dumps(REGISTRATION).encode()

    async def call(
        method: str, path: str, identity: WorkloadIdentity | None, data: bytes | None = None
    ) -> int:
        context = identity.ssl_context() if identity else access.ssl_context()
        return (await access.request(method, path, data=data, context=context))[0]

    assert await call("POST", "/v1/workloads", None, body) == 401
    assert await call("POST", "/v1/workloads", reviews, body) == 403
    assert await call("POST", "/v1/workloads", catalog, body) == 200
    watch = "/v1/proxies/default/catalog-1/snapshot?wait=0"
    ack = "/v1/proxies/default/catalog-1/ack"
    acked = json.dumps({"version": "x", "error": None}).encode()
    for identity, expected in ((None, 401), (reviews, 403)):
        assert await call("GET", watch, identity) == expected
        assert await call("POST", ack, identity, acked) == expected
        assert await call("DELETE", "/v1/workloads/default/catalog-1", identity) == expected
    # the workload's name registered by the catalog account is not reviews' to take over
    taken = json.dumps({**REGISTRATION, "service_account": "reviews"}).encode()
    assert await call("POST", "/v1/workloads", reviews, taken) == 403
    assert (
        await call(
            "POST", "/v1/workloads", reviews, json.dumps({**REGISTRATION, "namespace": "prod"}).encode()
        )
        == 403
    )
    assert await call("GET", watch, catalog) in (200, 304)  # allowed (304: nothing compiled yet)

    # renewal: the certificate asks for its own identity again, with no token; not for another one
    status, answer = await access.request_certificate(
        tmp_path / "renewed", "default", "catalog", context=catalog.ssl_context()
    )
    assert status == 200 and answer["spiffe_id"] == CATALOG_ID
    status, answer = await access.request_certificate(
        tmp_path / "stolen", "default", "reviews", context=catalog.ssl_context()
    )
    assert status == 403, answer
    assert await call("DELETE", "/v1/workloads/default/catalog-1", catalog) == 200


async def test_the_agent_keeps_one_connection_for_all_its_calls(start: StartPlane, tmp_path: Path) -> None:
    plane = await start()
    catalog = await plane.access.workload_identity(tmp_path / "catalog", "default", "catalog")
    client = ControlPlaneClient(plane.url, catalog.ssl_context())
    try:
        assert (await client.call("POST", "/v1/workloads", json.dumps(REGISTRATION).encode()))[0] == 200
        status, body = await client.call("GET", "/v1/proxies/default/catalog-1/snapshot?wait=10")
        assert status == 200
        version = json.loads(body)["version"]
        ack = json.dumps({"version": version, "error": None}).encode()
        assert (await client.call("POST", "/v1/proxies/default/catalog-1/ack", ack))[0] == 200
        for _ in range(5):
            watch = f"/v1/proxies/default/catalog-1/snapshot?version={version}&wait=0.1"
            assert (await client.call("GET", watch))[0] == 304
        assert client.connections_opened == 1  # 8 requests, one TLS handshake
        client.use(catalog.ssl_context())  # a renewed certificate: the next call handshakes with it
        assert (await client.call("GET", "/v1/proxy-status"))[0] == 200
        assert client.connections_opened == 2
    finally:
        client.close_idle()


# the sidecar ------------------------------------------------------------------------------------------------


async def test_a_sidecar_gets_its_certificate_before_its_snapshot_and_shows_its_expiry(
    start: StartPlane, tmp_path: Path
) -> None:
    plane = await start()
    token_file = tmp_path / "join-token"
    done = loom_cli(plane, "token", "create", "--namespace", "default", "--service-account", "catalog")
    assert done.returncode == 0, done.stderr
    token_file.write_text(done.stdout)
    identity_dir = tmp_path / "identity"
    process = sidecar(
        tmp_path,
        plane,
        "catalog-1",
        "--join-token-file",
        str(token_file),
        "--identity-dir",
        str(identity_dir),
    )
    try:
        ready = await process.start()
        expires = await expiry_gauge(ready["admin_port"])
        assert expires is not None and abs(expires - (time.time() + 24 * 3600)) < 120, expires
        await wait_until(lambda: synced(plane, "catalog-1"), 15, "the sidecar to be SYNCED")

        assert stat.S_IMODE(identity_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((identity_dir / "key.pem").stat().st_mode) == 0o600
        [leaf] = x509.load_pem_x509_certificates((identity_dir / "cert-chain.pem").read_bytes())
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert list(sans) == [x509.UniformResourceIdentifier(CATALOG_ID)]
        assert (identity_dir / "root-cert.pem").read_bytes() == plane.access.bundle.read_bytes()
        assert "cryptography" not in mapped_files(process)  # the key was made by a child process
        log = process.log()
        assert log.index("workload certificate for") < log.index("proxy ready")
    finally:
        await stop_all([process])


async def test_the_sidecar_renews_its_certificate_and_stays_synced(start: StartPlane, tmp_path: Path) -> None:
    plane = await start("--cert-ttl", "20s")
    process = sidecar(tmp_path, plane, "catalog-1")
    try:
        ready = await process.start()
        first = await expiry_gauge(ready["admin_port"])
        assert first is not None and abs(first - (time.time() + 20)) < 5
        await wait_until(lambda: synced(plane, "catalog-1"), 15, "the sidecar to be SYNCED")
        seen = [first]

        async def renewed(times: int) -> bool:
            value = await expiry_gauge(ready["admin_port"])
            if value is not None and value > seen[-1]:
                seen.append(value)
            return len(seen) > times

        await wait_until(lambda: renewed(1), 20, "a renewal (at 40-60% of 20 s)", interval=0.5)
        await wait_until(lambda: renewed(2), 20, "a second renewal", interval=0.5)
        await asyncio.sleep(max(0.0, first - time.time()) + 0.5)  # past the first certificate's expiry
        assert plane.log().count("(client certificate)") >= 2  # renewed over mTLS, without the token

        # Still served over mutual TLS with the new certificate: a change reaches the sidecar.
        _, rows = await plane.access.request("GET", "/v1/proxy-status")
        version = next(r["version"] for r in rows if r["workload"] == "catalog-1")
        (plane.config / "reviews.yaml").write_text(yaml.safe_dump(service(name="reviews")))

        async def moved() -> bool:
            _, rows = await plane.access.request("GET", "/v1/proxy-status")
            row = next(r for r in rows if r["workload"] == "catalog-1")
            return row["version"] != version and row["status"] == "SYNCED"

        await wait_until(moved, 15, "the sidecar to apply a change after its renewals")
        assert "renewal failed" not in process.log()
    finally:
        await stop_all([process])


async def test_a_plug_in_ca_issues_through_its_intermediate(start: StartPlane, tmp_path: Path) -> None:
    operator = operator_ca(tmp_path / "operator")
    new_root = operator_ca(tmp_path / "next", "Example Corp 2027")
    plane = await start(
        "--ca-cert",
        str(operator.chain),
        "--ca-key",
        str(operator.key),
        "--trust-anchor",
        str(new_root.root_file),
    )
    bundle = x509.load_pem_x509_certificates(plane.access.bundle.read_bytes())
    assert bundle == [operator.root, new_root.root]  # two roots, as during a root rotation
    assert not (plane.access.state_dir / "ca" / "root-key.pem").exists()  # no CA key of our own
    identity_dir = tmp_path / "identity"
    process = sidecar(tmp_path, plane, "catalog-1", "--identity-dir", str(identity_dir))
    try:
        await process.start()
        await wait_until(lambda: synced(plane, "catalog-1"), 15, "the sidecar to be SYNCED")
        leaf, intermediate = x509.load_pem_x509_certificates((identity_dir / "cert-chain.pem").read_bytes())
        assert intermediate == operator.intermediate and leaf.issuer == operator.intermediate.subject
        # The control plane's own serving chain verifies against the operator's root alone.
        context = ssl.create_default_context(cafile=str(operator.root_file))
        status, _ = await plane.access.request("GET", "/healthz", context=context)
        assert status == 200
    finally:
        await stop_all([process])


async def test_sidecars_talk_mutual_tls_with_the_identities_the_ca_issued(tmp_path: Path) -> None:
    def catalog_yaml(app_port: int) -> str:
        return yaml.safe_dump(service(app_port))

    async with running_mesh(tmp_path, config_dir_plane(catalog_yaml)) as mesh:
        await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")
        result = await run_load(mesh.client, 200, concurrency=8, headers={"Host": "catalog"})
        assert result.ok == 200, (result.statuses, result.errors[:3])
        served = 0
        for version in ("v1", "v2"):
            admin = json.loads(mesh.sidecars[version].ready.read_text())["admin_port"]
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{admin}/metrics") as response,
            ):
                metrics = await response.text()
            inbound = [
                line
                for line in metrics.splitlines()
                if line.startswith("istio_requests_total{") and 'reporter="destination"' in line
            ]
            for line in inbound:
                assert 'connection_security_policy="mutual_tls"' in line, line
                assert 'source_principal="spiffe://cluster.local/ns/default/sa/default"' in line, line
                served += int(float(line.rsplit(" ", 1)[1]))
        assert served == 200
