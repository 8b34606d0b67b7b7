"""Loom's data plane in a minute: two app versions behind a sidecar, a 90/10 canary split.

Starts two plain HTTP apps and a ``loom proxy``, sends traffic the way any app would (through
HTTP_PROXY, with no mesh code), and prints the split it observed and the proxy's metrics.
Then it keeps running: edit the weights in the snapshot it prints and watch the split change.

    python examples/demo/run.py [--requests N] [--once]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_app(version: str, port: int) -> subprocess.Popen[bytes]:
    app = subprocess.Popen([sys.executable, str(HERE / "app.py"), "catalog", version, str(port)])
    wait_for(lambda: _connects(port), 10, f"catalog {version}")
    return app


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def send_traffic(proxy_port: int, requests: int, headers: dict[str, str] | None = None) -> Counter[str]:
    # Exactly what an unmodified app does when HTTP_PROXY points at its sidecar.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy_port}"})
    )
    seen: Counter[str] = Counter()
    for _ in range(requests):
        request = urllib.request.Request("http://catalog/books", headers=headers or {})
        with opener.open(request, timeout=5) as response:
            seen[json.loads(response.read())["version"]] += 1
    return seen


def show_split(title: str, seen: Counter[str]) -> None:
    table = Table(title=title)
    table.add_column("version")
    table.add_column("requests", justify="right")
    table.add_column("share", justify="right")
    total = sum(seen.values())
    for version in sorted(seen):
        table.add_row(version, str(seen[version]), f"{100 * seen[version] / total:.1f}%")
    console.print(table)


def show_metrics(admin_port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    lines = [line for line in text.splitlines() if line.startswith("istio_requests_total{")]
    console.print("[bold]istio_requests_total[/] (from the sidecar's /metrics):")
    for line in lines:
        labels, value = line.rsplit(" ", 1)
        keep = [p for p in labels[labels.index("{") + 1 : -1].split(",") if p.split("=")[0] in
                ("destination_version", "response_code", "response_flags")]  # fmt: skip
        console.print(f"  {{{', '.join(keep)}}} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--once", action="store_true", help="exit after the first report")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="loom-demo-"))
    v1_port, v2_port = free_port(), free_port()
    snapshot = workdir / "snapshot.yaml"
    template = (HERE / "snapshot.yaml").read_text()
    snapshot.write_text(template.replace("{v1_port}", str(v1_port)).replace("{v2_port}", str(v2_port)))
    ready = workdir / "ready.json"
    children = [start_app("v1", v1_port), start_app("v2", v2_port)]
    loom = [
        sys.executable,
        "-m",
        "loom.cli.main",
        "proxy",
        "--config",
        str(snapshot),
        "--ready-file",
        str(ready),
    ]
    log = (workdir / "proxy.log").open("w")
    children.append(subprocess.Popen(loom, stdout=log, stderr=subprocess.STDOUT))
    try:
        wait_for(ready.exists, 20, "the sidecar")
        info = json.loads(ready.read_text())
        proxy_port, admin_port = info["listeners"]["outbound"], info["admin_port"]
        console.print(
            f"[green]sidecar ready[/]: outbound 127.0.0.1:{proxy_port}, admin 127.0.0.1:{admin_port}"
        )

        show_split(
            f"{args.requests} requests to http://catalog/books", send_traffic(proxy_port, args.requests)
        )
        show_split(
            "20 requests with x-version: canary", send_traffic(proxy_port, 20, {"x-version": "canary"})
        )
        show_metrics(admin_port)
        if args.once:
            return
        console.print(
            f"\nThe sidecar keeps running. Edit the weights in [bold]{snapshot}[/] (e.g. 50/50):"
            " it reloads the file by itself.\nTry: curl -x http://127.0.0.1:{proxy_port} http://catalog/books"
            f"\nPress Ctrl-C to stop.".replace("{proxy_port}", str(proxy_port))
        )
        while True:
            time.sleep(5)
            show_split("last 200 requests", send_traffic(proxy_port, 200))
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=15)


if __name__ == "__main__":
    os.environ.pop("HTTP_PROXY", None)
    main()
