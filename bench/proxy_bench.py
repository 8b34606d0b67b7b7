"""Loom against HAProxy in front of nginx: throughput, latency at a fixed rate, CPU and memory.

    python bench/proxy_bench.py [--quick] [--repeat N] [--duration S] [--only NAME,...]

Measures, side by side, a direct connection to nginx, one proxy (HAProxy, Loom) in front of
it, and two proxies in a chain (the mesh hop), plaintext or with (mutual) TLS between them; for
the TLS pairs also new TLS connections per second into the inbound proxy. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from harness import certs, loom, machine, nginx
from harness.cp_report import current_section, update_results
from harness.loadgen import build_openloop
from harness.measure import Settings, TargetResult, measure_all
from harness.processes import BenchError, pin_self
from harness.report import Report, markdown, print_report, write
from harness.targets import TARGETS, Context, Running

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
BUSY_WARNING = 0.05
"""Warn when a core is busier than this before the run starts (something else is running)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run of everything (2 s, once)")
    parser.add_argument(
        "--repeat", type=int, help="runs of each measurement; medians are reported (default 3)"
    )
    parser.add_argument("--duration", type=float, help="seconds of each wrk and fixed-rate run (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s of the fixed-rate run")
    parser.add_argument("--open-connections", type=int, default=16, help="connections of the fixed-rate run")
    parser.add_argument("--wrk-connections", type=int, default=64, help="connections of the wrk run")
    parser.add_argument(
        "--handshake-duration", type=float, help="seconds of each new-TLS-connection run (default 5)"
    )
    parser.add_argument("--proxy-cpu", type=int, default=1, help="the core the proxies are pinned to")
    parser.add_argument("--load-cpu", type=int, default=0, help="the core of load generators and nginx")
    parser.add_argument(
        "--only",
        help="comma-separated targets to run: " + ", ".join(t.name for t in TARGETS) + " (direct always)",
    )
    parser.add_argument("--loom", help="the command that runs Loom (default: the venv's loom)")
    parser.add_argument("--skip-loom", action="store_true", help="run without Loom (direct and HAProxy only)")
    parser.add_argument("--update-results", action="store_true", help="also rewrite bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the configs and logs of the run")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    duration = args.duration if args.duration is not None else 2.0 if args.quick else 10.0
    repeat = args.repeat if args.repeat is not None else 1 if args.quick else 3
    handshakes = args.handshake_duration
    if handshakes is None:
        handshakes = min(duration, 2.0 if args.quick else 5.0)
    return Settings(
        duration=duration,
        repeat=max(1, repeat),
        rate=args.rate,
        open_connections=args.open_connections,
        wrk_connections=args.wrk_connections,
        warmup=1.0 if args.quick else 2.0,
        proxy_cpu=args.proxy_cpu,
        load_cpu=args.load_cpu,
        handshake_duration=handshakes,
    )


def preflight(args: argparse.Namespace, console: Console) -> tuple[Settings, set[str]] | None:
    """The settings and the targets to run, or None (after saying why) when the run cannot start."""
    missing = machine.missing_tools()
    if missing:
        console.print(
            f"[red]The benchmark needs tools that are not installed.[/red]\n{machine.install_hint(missing)}"
        )
        return None
    settings = settings_from(args)
    cpus = os.sched_getaffinity(0)
    if not {settings.proxy_cpu, settings.load_cpu} <= cpus or settings.proxy_cpu == settings.load_cpu:
        console.print(f"[red]--proxy-cpu and --load-cpu must be two different cores of {sorted(cpus)}[/red]")
        return None
    wanted = {"direct", *(args.only.split(",") if args.only else (t.name for t in TARGETS))}
    unknown = wanted - {t.name for t in TARGETS}
    if unknown:
        console.print(f"[red]unknown target(s): {', '.join(sorted(unknown))}[/red]")
        return None
    return settings, wanted


def run_targets(
    report: Report,
    wanted: set[str],
    loom_command: list[str],
    loom_problem: str | None,
    keep: bool,
    console: Console,
) -> None:
    """Start nginx and every wanted target, measure them all, stop everything (keep: the files)."""
    settings = report.settings
    binary = build_openloop(OUT / "build")
    workdir = Path(tempfile.mkdtemp(prefix="loom-bench-"))
    console.print(
        f"configs and logs in {workdir}; {settings.repeat} × {settings.duration:g} s per measurement"
    )
    try:
        with (
            nginx.upstream(workdir, settings.load_cpu) as (_, upstream_port),
            contextlib.ExitStack() as stack,
        ):
            keys = certs.make(workdir / "certs")
            ctx = Context(workdir, upstream_port, settings.proxy_cpu, loom_command, keys)
            live: list[tuple[TargetResult, Running]] = []
            for target in TARGETS:
                if target.name not in wanted:
                    continue
                result = TargetResult(target.name, target.label, target.proxies)
                report.results.append(result)
                if target.needs_loom and loom_problem:
                    result.error = "not run"
                    continue
                console.print(f"starting {target.label}")
                try:
                    live.append((result, stack.enter_context(target.start(ctx))))
                except BenchError as exc:
                    result.error = str(exc)
            measure_all(binary, live, settings, lambda text: console.print(f"[bold]{text}[/bold]"), keys)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Wide tables stay readable when the output goes to a file or a CI log.
    console = Console(width=None if sys.stdout.isatty() else 160)
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    checked = preflight(args, console)
    if checked is None:
        return 2
    settings, wanted = checked
    pin_self(settings.load_cpu)

    loom_command = shlex.split(args.loom) if args.loom else loom.command()
    loom_problem = "skipped (--skip-loom)" if args.skip_loom else loom.unavailable_reason(loom_command)
    report = Report(
        timestamp=time.strftime("%Y%m%d-%H%M%S"),
        machine=machine.describe(BENCH.parent),
        settings=settings,
        results=[],
    )
    busy = machine.idle_check([settings.load_cpu, settings.proxy_cpu])
    report.machine["busy_before_run"] = {f"cpu{cpu}": round(value, 3) for cpu, value in busy.items()}
    if max(busy.values()) > BUSY_WARNING:
        text = ", ".join(f"cpu{cpu} {value:.0%}" for cpu, value in busy.items())
        report.notes.append(f"the machine was busy before the run ({text}): expect noisy figures")
        console.print(f"[yellow]the machine is busy ({text}); figures will be noisy[/yellow]")
    if loom_problem and wanted & {t.name for t in TARGETS if t.needs_loom}:
        report.notes.append(f"Loom was not measured: {loom_problem}")
        console.print(f"[yellow]Loom will not be measured: {loom_problem}[/yellow]")
    try:
        run_targets(report, wanted, loom_command, loom_problem, args.keep, console)
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1

    direct = report.summary("direct")
    if direct is not None and direct.core_busy > BUSY_WARNING:
        report.notes.append(
            f"something else ran on the proxy core during the run (it was {direct.core_busy:.0%} busy "
            "while the direct target, which does not use it, was measured): expect noisy figures"
        )
    failed = [r for r in report.results if r.error not in (None, "not run")]
    report.notes += [f"{r.label} failed: {r.error}" for r in failed]
    no_handshakes = [r for r in report.results if r.error is None and r.handshake_error is not None]
    report.notes += [f"{r.label}: the new-connection runs failed: {r.handshake_error}" for r in no_handshakes]
    failed += no_handshakes
    print_report(report, console)
    json_path, md_path = write(report, OUT)
    console.print(f"wrote {json_path} and {md_path}")
    if args.update_results:
        results = BENCH / "RESULTS.md"
        control_plane = current_section(results)  # measured by controlplane_scale.py: keep it
        results.write_text(markdown(report))
        if control_plane is not None:
            update_results(results, control_plane)
        console.print(f"updated {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
