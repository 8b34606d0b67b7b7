"""``loom``: the command line. Thin: parse arguments, call the packages, print."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from loom import __version__
from loom.cli import explain, golden, resources, runtime, trace
from loom.cli.check.command import check as check_command
from loom.cli.connection import CONTROL_PLANE_OPTION, STATE_DIR_OPTION, ControlPlaneAccess
from loom.cli.dashboard import dashboard as dashboard_command
from loom.snapshot import SnapshotError, load_snapshot

app = typer.Typer(
    name="loom",
    help="Loom service mesh: sidecar proxy, control plane, identities and golden metrics.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
err = Console(stderr=True)


@app.command()
def version() -> None:
    """Print Loom's version."""
    typer.echo(__version__)


@app.command()
def proxy(
    config: Path | None = typer.Option(None, "--config", "-c", help="Snapshot file (YAML or JSON) to serve."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    check: bool = typer.Option(False, "--check", help="Validate the snapshot and exit."),
    ready_file: Path | None = typer.Option(
        None, "--ready-file", help="Write the bound ports here (JSON) once serving."
    ),
    control_plane: str | None = typer.Option(
        None, "--control-plane", help="Take snapshots from this control plane (instead of --config)."
    ),
    workload: str | None = typer.Option(None, "--workload", help="This workload's name (connected mode)."),
    namespace: str = typer.Option("default", "--namespace", "-n"),
    service_account: str = typer.Option("default", "--service-account"),
    label: list[str] = typer.Option([], "--label", help="KEY=VALUE, repeatable."),
    address: str = typer.Option("127.0.0.1", "--address", help="Where peers reach this sidecar."),
    outbound_port: int = typer.Option(0, "--outbound-port", help="The app's outbound listener port."),
    inbound: list[str] = typer.Option([], "--inbound", help="APP_PORT:SIDECAR_PORT, repeatable."),
    admin_port: int = typer.Option(0, "--admin-port"),
    readiness_path: str | None = typer.Option(
        None,
        "--readiness-path",
        metavar="[APP_PORT:]PATH",
        help="The app is ready when GET PATH answers 2xx (default: when its ports accept connections); "
        "peers route here only once it is ready.",
    ),
    ca_file: Path | None = typer.Option(
        None, "--ca-file", help="The control plane's trust bundle (its state directory's root-cert.pem)."
    ),
    join_token_file: Path | None = typer.Option(
        None,
        "--join-token-file",
        help="A file holding the join token (`loom token create`); or set $LOOM_JOIN_TOKEN.",
    ),
    identity_dir: Path | None = typer.Option(
        None,
        "--identity-dir",
        help="Keep the workload certificate and key here (default: a private temporary directory).",
    ),
    telemetry_interval: float | None = typer.Option(
        None,
        "--telemetry-interval",
        metavar="SECONDS",
        help="Push the golden metrics to the control plane at least this often "
        "(default $LOOM_TELEMETRY_INTERVAL, else 5).",
    ),
) -> None:
    """Run one sidecar proxy: from a snapshot file (reloaded on SIGHUP or change), or connected
    to a control plane that issues its certificate and pushes its snapshots."""
    if (config is None) == (control_plane is None):
        err.print("[red]error:[/] give either --config FILE or --control-plane URL")
        raise typer.Exit(2)
    argv = [sys.executable, "-m", "loom.proxy", "--log-level", log_level]
    if ready_file is not None:
        argv += ["--ready-file", str(ready_file)]
    if config is not None:
        _check_snapshot(config)
        if check:
            typer.echo(f"{config}: snapshot is valid")
            return
        argv += ["--config", str(config)]
    else:
        if not workload or not outbound_port:
            err.print("[red]error:[/] --control-plane needs --workload and --outbound-port")
            raise typer.Exit(2)
        argv += ["--control-plane", str(control_plane), "--workload", workload, "--namespace", namespace]
        argv += ["--service-account", service_account, "--address", address]
        argv += ["--outbound-port", str(outbound_port), "--admin-port", str(admin_port)]
        if ca_file is not None:
            argv += ["--ca-file", str(ca_file)]
        if join_token_file is not None:
            argv += ["--join-token-file", str(join_token_file)]
        if identity_dir is not None:
            argv += ["--identity-dir", str(identity_dir)]
        if readiness_path is not None:
            argv += ["--readiness-path", readiness_path]
        if telemetry_interval is not None:
            argv += ["--telemetry-interval", str(telemetry_interval)]
        for item in label:
            argv += ["--label", item]
        for item in inbound:
            argv += ["--inbound", item]
    # The sidecar runs as its own lean process image (same PID): see loom/proxy/__main__.py.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _check_snapshot(config: Path) -> None:
    """Schema, cross references and route compilation; exit 2 with every reason if refused."""
    from loom.proxy.router import RouteCompileError, compile_route_config

    try:
        snapshot = load_snapshot(config)
        for route_config in snapshot.route_configs:
            compile_route_config(route_config, snapshot.node)
    except FileNotFoundError:
        err.print(f"[red]error:[/] no such snapshot file: {config}")
        raise typer.Exit(2) from None
    except SnapshotError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except RouteCompileError as exc:
        err.print(f"[red]error:[/] invalid snapshot {config}: {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def controlplane(
    config_dir: Path | None = typer.Option(
        None, "--config-dir", help="The folder of YAML that is the store."
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="etcd://HOST:PORT[,HOST:PORT...][/ROOT]: keep the resources in etcd, shared by replicas.",
    ),
    address: str = typer.Option("127.0.0.1", "--address"),
    port: int = typer.Option(15010, "--port"),
    ready_file: Path | None = typer.Option(None, "--ready-file", help="Write the bound port here (JSON)."),
    log_level: str = typer.Option("info", "--log-level"),
    state_dir: str = typer.Option(
        "~/.loom/controlplane",
        "--state-dir",
        envvar="LOOM_STATE_DIR",
        help="The CA, token key, operator token and trust bundle (created on first start, mode 0700).",
    ),
    trust_domain: str = typer.Option(
        "cluster.local", "--trust-domain", help="The trust domain of the SPIFFE IDs issued."
    ),
    cert_ttl: str = typer.Option("24h", "--cert-ttl", help="Lifetime of workload certificates."),
    ca_cert: Path | None = typer.Option(
        None,
        "--ca-cert",
        help="A plug-in CA: its certificate, then the chain up to the root (PEM). With --ca-key.",
    ),
    ca_key: Path | None = typer.Option(None, "--ca-key", help="The plug-in CA's private key (PEM)."),
    trust_anchor: list[Path] = typer.Option(
        [], "--trust-anchor", help="One more root for the trust bundle (root rotation); repeatable."
    ),
    san: list[str] = typer.Option(
        [], "--san", help="A DNS name or IP address clients dial the API by; repeatable."
    ),
    service_cidr: str | None = typer.Option(
        None,
        "--service-cidr",
        help="Give each Service without a clusterIP a virtual IP of this IPv4 CIDR (e.g. 10.96.0.0/16).",
    ),
    prometheus_sd_file: Path | None = typer.Option(
        None,
        "--prometheus-sd-file",
        help="Keep a Prometheus file_sd_configs file (JSON) here listing every sidecar's metrics endpoint.",
    ),
    dashboard_port: int | None = typer.Option(
        None,
        "--dashboard-port",
        help="Serve the web dashboard on http://127.0.0.1:PORT/ (0: any free port; off by default).",
    ),
) -> None:
    """Serve the mesh API over HTTPS, issue workload certificates, and push every sidecar its
    snapshot (the store is watched)."""
    if (config_dir is None) == (store is None):
        err.print("[red]error:[/] give either --config-dir DIR or --store etcd://HOST:PORT (one of them)")
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from loom.controlplane.etcd_store import BadStoreURL, parse_store_url
    from loom.controlplane.main import ConfigRefused, StoreUnavailable, run
    from loom.controlplane.security.authority import CaError
    from loom.controlplane.security.setup import SecurityOptions
    from loom.snapshot.durations import parse_duration

    if service_cidr is not None:
        from loom.controlplane.compiler.virtual_ips import parse_service_cidr

        try:
            network = parse_service_cidr(service_cidr)
        except ValueError as exc:
            err.print(f"[red]error:[/] --service-cidr: {exc}", highlight=False)
            raise typer.Exit(2) from None
        if network.version != 4:
            err.print(
                f"[red]error:[/] --service-cidr {service_cidr}: an IPv4 CIDR is needed "
                "(the sidecars' virtual hosts answer IPv4 virtual IPs only)",
                highlight=False,
            )
            raise typer.Exit(2)
    if store is not None:
        try:
            parse_store_url(store)
        except BadStoreURL as exc:
            err.print(f"[red]error:[/] --store {exc}", highlight=False)
            raise typer.Exit(2) from None
    try:
        security = SecurityOptions(
            state_dir=Path(state_dir).expanduser(),
            trust_domain=trust_domain,
            cert_ttl=parse_duration(cert_ttl),
            ca_cert=ca_cert,
            ca_key=ca_key,
            trust_anchors=tuple(trust_anchor),
            hosts=tuple(san),
        )
    except ValueError as exc:
        err.print(f"[red]error:[/] --cert-ttl: {exc}", highlight=False)
        raise typer.Exit(2) from None
    where = store if store is not None else config_dir
    try:
        run(
            config_dir,
            address,
            port,
            ready_file,
            store,
            security,
            service_cidr,
            prometheus_sd_file,
            dashboard_port,
        )
    except (CaError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ConfigRefused as exc:
        err.print(f"[red]error:[/] {where} does not load:\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    except StoreUnavailable as exc:
        err.print(f"[red]error:[/] cannot read the store {exc}", highlight=False)
        raise typer.Exit(2) from None
    except OSError as exc:
        err.print(f"[red]error:[/] cannot listen: {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command("proxy-status")
def proxy_status(
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
    output: str = typer.Option("table", "-o", "--output", help="table or json"),
) -> None:
    """Each proxy's snapshot version, whether it is SYNCED, STALE or NACKED, and whether its app is
    ready (peers route to it only then)."""
    import json

    from rich.table import Table

    try:
        rows = resources.fetch_json(ControlPlaneAccess.of(control_plane, state_dir), "/v1/proxy-status")
    except resources.ApiError as exc:
        raise resources.api_failure(exc) from None
    if output == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("NAMESPACE", "WORKLOAD", "VERSION", "STATUS", "READY", "LAST SEEN", "ERROR")
    for row in rows:
        seen = row["last_seen_seconds_ago"]
        ready = row.get("ready")  # absent from an older control plane's rows
        table.add_row(
            row["namespace"],
            row["workload"],
            row["version"],
            row["status"],
            "-" if ready is None else ("yes" if ready else "no"),
            "-" if seen is None else f"{seen}s ago",
            row["error"] or "",
        )
    Console().print(table)


@app.command("analyze")
def analyze_command(
    paths: list[str] = typer.Argument(
        ...,
        metavar="PATH...",
        help="YAML files or folders (read recursively: *.yaml, *.yml); - reads stdin.",
        show_default=False,
    ),
    output: str = typer.Option("text", "-o", "--output", help="text (one line per finding) or json."),
    fail_on: str = typer.Option(
        "error", "--fail-on", help="Exit 1 when a finding is at this level or worse: error, warning or info."
    ),
) -> None:
    """Check configuration like istioctl analyze: load everything, run every analyzer over the whole
    set, print each finding with its code, level, file:line, resource and fix (codes: docs/analyze.md).
    Exit 1 if any finding is at the --fail-on level or worse (default: any Error), else 0."""
    from loom.analyze import Level, analyze_paths, render

    try:
        threshold = Level.parse(fail_on)
    except ValueError as exc:
        err.print(f"[red]error:[/] --fail-on: {exc}", highlight=False)
        raise typer.Exit(2) from None
    if output not in ("text", "json"):
        err.print(f"[red]error:[/] --output must be text or json, not {output!r}", highlight=False)
        raise typer.Exit(2)
    report = analyze_paths(paths)
    if output == "json":
        typer.echo(render.as_json(report.findings))
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        for finding in report.findings:
            typer.echo(render.line(finding, colour=colour))
    typer.echo(render.summary(report), err=True)
    raise typer.Exit(1 if report.fails(threshold) else 0)


token_app = typer.Typer(
    help="Join tokens: what a new sidecar shows to get its first certificate.", no_args_is_help=True
)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    namespace: str = typer.Option(..., "--namespace", "-n", help="The namespace the token grants."),
    service_account: str = typer.Option(..., "--service-account", help="The service account it grants."),
    ttl: str = typer.Option("24h", "--ttl", help="How long the token can be used (e.g. 1h, 24h)."),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Create a join token for one namespace and service account (needs the operator token). It
    prints the token alone on stdout: give it to the sidecars of that workload as $LOOM_JOIN_TOKEN
    or in a --join-token-file. Every replica may use it until it expires."""
    import json
    import time

    body = json.dumps({"namespace": namespace, "service_account": service_account, "ttl": ttl}).encode()
    access = ControlPlaneAccess.of(control_plane, state_dir)
    try:
        answer = resources.fetch_json(
            access, "/v1/tokens", method="POST", body=body, content_type="application/json"
        )
    except resources.ApiError as exc:
        raise resources.api_failure(exc) from None
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(answer["expires_at"]))
    err.print(f"join token {answer['id']} for {answer['spiffe_id']}, valid until {expires}", highlight=False)
    typer.echo(answer["token"])


app.command("check")(check_command)
app.command("explain")(explain.explain)
app.command("trace")(trace.trace)
app.command("apply")(resources.apply)
app.command("get")(resources.get)
app.command("delete")(resources.delete)
app.command("up")(runtime.up)
app.command("down")(runtime.down)
app.command("status")(runtime.status)
app.command("run", context_settings={"allow_interspersed_args": False})(runtime.run)
app.command("dashboard")(dashboard_command)
app.command("stat")(golden.stat)
app.command("edges")(golden.edges)
app.command("top")(golden.top)
app.command("tap")(golden.tap)

if __name__ == "__main__":
    app()
