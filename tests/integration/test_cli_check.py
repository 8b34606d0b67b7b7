"""``loom check`` against real control planes and sidecars: a healthy mesh passes (exit 0, a ✔ per
check), a NACKED proxy fails it, as do a control plane that cannot be reached or whose certificate the
bundle does not verify, and a workload certificate that expired because its sidecar stopped renewing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.certs import CertAuthority
from tests.support.controlplane import PlaneAccess, get_json
from tests.support.mesh import (
    LoomProcess,
    all_synced,
    config_dir_plane,
    free_port,
    proxy_status,
    running_mesh,
    service,
    sidecar_args,
    start_plane,
    stop_all,
)
from tests.support.proxy import wait_until

CHECKS = (
    "the trust bundle can be read",
    "its roots are valid and not about to expire",
    "the control plane is reachable over HTTPS",
    "its clock agrees with this machine's",
    "every registered proxy is SYNCED",
    "workload certificates are valid and renewed on time",
)


async def loom_check(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``loom check ARGS`` with ``env`` added to the environment: its exit code and its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loom.cli.main",
        "check",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250", **env},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def line_of(output: str, check: str) -> str:
    """The line a check printed (its symbol, title and, when it passed, its reason)."""
    return next(line for line in output.splitlines() if line[2:].startswith(check))


async def test_a_healthy_mesh_passes_and_a_nacked_proxy_fails(tmp_path: Path) -> None:
    async with running_mesh(tmp_path, config_dir_plane(lambda port: yaml.safe_dump(service(port)))) as mesh:
        env = PlaneAccess(mesh.url, mesh.state_dir).env()
        await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")

        code, output = await loom_check(env)
        assert code == 0, output
        for check in CHECKS:
            assert line_of(output, check).startswith("✔"), output
        assert "3 proxies, all SYNCED" in line_of(output, "every registered proxy")
        assert "3 workloads, 2 identities: every certificate valid" in line_of(
            output, "workload certificates"
        )
        assert "Status check results are ✔" in output

        # What the CA issued, and who uses it.
        body = await get_json(f"{mesh.url}/v1/identities")
        rows = {row["spiffe_id"]: row for row in body["identities"]}
        catalog = rows["spiffe://cluster.local/ns/default/sa/catalog"]
        assert catalog["workloads"] == ["default/catalog-v1", "default/catalog-v2"]
        assert catalog["certificate"]["issued_since_start"] == 2  # one per replica
        client = rows["spiffe://cluster.local/ns/default/sa/default"]
        assert client["workloads"] == ["default/client"]
        assert abs(client["certificate"]["not_after"] - (time.time() + 24 * 3600)) < 120
        assert body["cert_ttl"] == 24 * 3600 and body["since"] <= client["certificate"]["issued_at"]

        # The client's sidecar comes back fronting a port something else holds; once a Service selects
        # the client, its snapshot gains that listener and it refuses it (NACK).
        with socket_holding_a_port() as taken:
            outbound = int(mesh.client.rsplit(":", 1)[1].strip("/"))
            restarted = mesh.process(
                "client-2",
                sidecar_args(
                    mesh.url, "client", {"app": "client"}, outbound=outbound, inbound=f"7070:{taken}"
                ),
            )
            await mesh.sidecars["client"].stop()
            mesh.sidecars["client"] = restarted
            await restarted.start()
            (mesh.config / "client.yaml").write_text(yaml.safe_dump(service(7070, name="client")))

            async def nacked() -> bool:
                return any(row["status"] == "NACKED" for row in await proxy_status(mesh.url))

            await wait_until(nacked, 15, "the client's sidecar to refuse its snapshot")
            code, output = await loom_check(env)
        assert code == 1, output
        failed = output.split("✖ every registered proxy is SYNCED\n", 1)[1].splitlines()
        assert failed[0].strip() == "1 of 3 proxies not SYNCED"
        assert failed[1].strip().startswith("default/client NACKED (version ")
        hint = next(i for i, line in enumerate(failed) if line.strip().startswith("hint: "))
        assert "listen" in "\n".join(failed[1:hint])  # the error, however many lines it takes
        assert failed[hint].strip().startswith("hint: a NACKED proxy refused its snapshot")
        assert line_of(output, "workload certificates").startswith("✔")  # the others still ran
        assert "Status check results are ✖ (1 error)" in output


@contextmanager
def socket_holding_a_port() -> Iterator[int]:
    """A listening socket on 127.0.0.1: its port is taken while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
async def processes() -> AsyncIterator[list[LoomProcess]]:
    started: list[LoomProcess] = []
    yield started
    for process in started:
        process.kill()


async def plane(tmp_path: Path, processes: list[LoomProcess], *extra: str) -> PlaneAccess:
    config, state = tmp_path / "config", tmp_path / "state"
    config.mkdir()
    (config / "catalog.yaml").write_text(yaml.safe_dump(service()))
    args = ["controlplane", "--config-dir", str(config), "--state-dir", str(state), "--port", "0", *extra]
    process = LoomProcess(tmp_path, "controlplane", args)
    processes.append(process)
    return PlaneAccess(await start_plane(process, state), state)


async def test_an_unverified_or_unreachable_control_plane_fails(
    tmp_path: Path, processes: list[LoomProcess]
) -> None:
    access = await plane(tmp_path, processes)
    other = tmp_path / "other-root.pem"
    other.write_bytes(CertAuthority.create("Another mesh").pem())

    code, output = await loom_check({**access.env(), "LOOM_CA_FILE": str(other)})
    assert code == 1, output
    reachable = output.split("✖ the control plane is reachable over HTTPS\n", 1)[1].splitlines()
    assert f"does not verify against the trust bundle {other}" in reachable[0]
    assert "hint: use that control plane's trust bundle" in reachable[1]
    assert "every registered proxy" not in output  # the checks that need the control plane did not run

    code, output = await loom_check({**access.env(), "LOOM_STATE_DIR": str(tmp_path / "elsewhere")})
    assert code == 1 and "✖ the trust bundle can be read" in output, output
    assert f"cannot read {tmp_path / 'elsewhere' / 'root-cert.pem'}" in output

    processes[0].kill()
    code, output = await loom_check(access.env(), "-o", "json")
    assert code == 1, output
    report = json.loads(output)
    assert report["ok"] is False and report["complete"] is False
    last = report["checks"][-1]
    assert (last["check"], last["status"]) == ("the control plane is reachable over HTTPS", "error")
    assert last["reason"].startswith(f"cannot reach the control plane at {access.url}")


async def test_a_certificate_that_expired_because_its_sidecar_stopped_renewing_fails(
    tmp_path: Path, processes: list[LoomProcess]
) -> None:
    access = await plane(tmp_path, processes, "--cert-ttl", "8s")
    args = [
        "proxy", "--control-plane", access.url, "--workload", "catalog-1", "--service-account", "catalog",
        "--label", "app=catalog", "--outbound-port", str(free_port()), "--inbound", f"9080:{free_port()}",
    ]  # fmt: skip
    sidecar = LoomProcess(tmp_path, "catalog-1", args)
    try:
        await sidecar.start()

        async def synced() -> bool:
            rows = await proxy_status(access.url)
            return [row["status"] for row in rows] == ["SYNCED"]

        await wait_until(synced, 15, "the sidecar to be SYNCED")
        assert sidecar.process is not None
        sidecar.process.send_signal(signal.SIGSTOP)  # it renews no more (nor answers anything)
        try:

            async def expired() -> bool:
                body = await get_json(f"{access.url}/v1/identities")
                [row] = body["identities"]
                return row["certificate"] is not None and body["now"] > row["certificate"]["not_after"] + 0.5

            await wait_until(expired, 20, "the certificate to expire", interval=0.5)
            code, output = await loom_check(access.env())
        finally:
            sidecar.process.send_signal(signal.SIGCONT)
        assert code == 1, output
        failed = output.split("✖ workload certificates are valid and renewed on time\n", 1)[1].splitlines()
        assert failed[0].strip() == "1 workload, 1 identity: 1 expired"
        assert (
            failed[1]
            .strip()
            .startswith(
                "default/catalog-1 (spiffe://cluster.local/ns/default/sa/catalog): its certificate (serial "
            )
        )
        assert "expired" in failed[1]
        assert "join token" in failed[2]
    finally:
        await stop_all([sidecar])
