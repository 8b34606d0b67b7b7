"""The control plane at scale: how long one edit takes to reach a thousand sidecars.

    python bench/controlplane_scale.py [--quick] [--proxies N --services M --endpoints K] [--rounds R]

Starts ``loom controlplane`` on a generated folder (M Services, each with a DestinationRule of
two subsets and a VirtualService splitting 90/10), registers K workloads, and runs N of them as
simulated sidecars in this one process: each holds the watch and ACKs every version, as
docs/controlplane.md says. Once all N have ACKed their first snapshot, it edits the split of one
service every proxy routes to (by replacing its file) and measures, from the moment the new file
is in place, until every proxy has ACKed the new version. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import loom, machine
from harness.cp_identity import bundle_context, issue_identities
from harness.cp_mesh import (
    CHANGED_SPLIT,
    SPLIT,
    MeshShape,
    service_name,
    service_yaml,
    workloads,
    write_config,
)
from harness.cp_plane import (
    control_plane,
    cpu_seconds,
    memory_mb,
    pushes,
    raise_open_files,
    state_dir,
    tcp_counters,
)
from harness.cp_profile import record, summarize
from harness.cp_report import (
    RoundResult,
    ScaleReport,
    markdown_section,
    percentile,
    print_report,
    update_results,
    write,
)
from harness.cp_watchers import Fleet
from harness.processes import BenchError, ResourceSampler, Service, pin_self

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
QUICK = {"proxies": 50, "services": 20, "endpoints": 200, "rounds": 1}
FULL = {"proxies": 1000, "services": 200, "endpoints": 5000, "rounds": 3}
PROFILER_START = 0.5
"""Seconds py-spy is given to attach before a sampled round's edit."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny smoke run: 50 proxies, 20 services, 1 round"
    )
    parser.add_argument("--proxies", type=int, help="watching sidecars (default 1,000)")
    parser.add_argument(
        "--services", type=int, help="Services, each with a DestinationRule and a VirtualService (200)"
    )
    parser.add_argument("--endpoints", type=int, help="registered workloads, the proxies included (5,000)")
    parser.add_argument("--namespaces", type=int, default=4, help="namespaces the services are spread over")
    parser.add_argument("--rounds", type=int, help="edits measured, one after the other (default 3)")
    parser.add_argument(
        "--idle",
        choices=("sidecar", "plain"),
        default="sidecar",
        help="register the workloads that do not watch with a sidecar (their snapshots are compiled "
        "but never fetched; the default) or without one (endpoints only)",
    )
    parser.add_argument("--watch-wait", type=float, default=20.0, help="the watch's wait=S (the agent's: 20)")
    parser.add_argument(
        "--round-timeout", type=float, default=60.0, help="give up on a round after S seconds"
    )
    parser.add_argument(
        "--sync-timeout", type=float, default=300.0, help="... on the first sync after S seconds"
    )
    parser.add_argument("--cp-cpu", type=int, default=1, help="the core the control plane is pinned to")
    parser.add_argument("--load-cpu", type=int, default=0, help="the core of the watchers (this process)")
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip timing the compiler in this process"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the control plane with py-spy during each round (from the edit to the last ACK)",
    )
    parser.add_argument("--loom", help="the command that runs Loom (default: the venv's loom)")
    parser.add_argument(
        "--update-results", action="store_true", help="also rewrite bench/RESULTS.md's section"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated folder and the logs")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def check(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot run, or None."""
    if not 0 < args.proxies <= args.endpoints:
        return "--proxies must be at least 1 and at most --endpoints"
    if args.services < 1 or args.namespaces < 1 or args.rounds < 1:
        return "--services, --namespaces and --rounds must be at least 1"
    if args.endpoints > 60000:
        return "--endpoints: at most 60,000 (one loopback address each)"
    cpus = os.sched_getaffinity(0)
    if not {args.cp_cpu, args.load_cpu} <= cpus or args.cp_cpu == args.load_cpu:
        return f"--cp-cpu and --load-cpu must be two different cores of {sorted(cpus)}"
    if shutil.which("taskset") is None:
        return "taskset is missing: apt-get install -y util-linux"
    return None


def describe_machine() -> dict[str, Any]:
    try:
        version = metadata.version("loom-mesh")
    except metadata.PackageNotFoundError:
        version = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": machine._cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loom": f"{version} ({machine._loom_revision(BENCH.parent)})",
    }


def compiler_breakdown(config_dir: Path, shape: MeshShape) -> dict[str, Any]:
    """The compiler's share, timed in this process through its public API (no HTTP, no encoding)."""
    from loom.api import load_paths
    from loom.controlplane.compiler import MeshInputs, compile_snapshot
    from loom.controlplane.server import workload_from_json

    started = time.perf_counter()
    loaded = load_paths([config_dir])
    load_s = time.perf_counter() - started
    if loaded.problems:
        raise BenchError("the generated folder does not load:\n" + "\n".join(map(str, loaded.problems[:5])))
    registered = [workload_from_json(json.loads(spec.body)) for spec in workloads(shape)]
    sidecars = [w for w in registered if w.sidecar is not None]
    started = time.perf_counter()
    inputs = MeshInputs.build(loaded.resources, registered)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    compiled = [compile_snapshot(inputs, w, version="") for w in sidecars]
    compile_s = time.perf_counter() - started
    warnings = len(compiled[0].warnings) if compiled else 0
    del compiled, inputs, loaded
    gc.collect()
    return {
        "resources": 3 * shape.services,
        "sidecars": len(sidecars),
        "load_s": round(load_s, 4),
        "build_s": round(build_s, 4),
        "compile_s": round(compile_s, 4),
        "compile_ms_per_sidecar": round(1000 * compile_s / max(1, len(sidecars)), 3),
        "warnings_per_snapshot": warnings,
    }


def _ms(values: list[float]) -> dict[str, float | None]:
    return {
        "min": min(values) if values else None,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure_round(
    index: int, fleet: Fleet, plane: Service, change_file: Path, shape: MeshShape, timeout: float
) -> RoundResult:
    split = CHANGED_SPLIT if index % 2 else SPLIT
    before = SPLIT if split == CHANGED_SPLIT else CHANGED_SPLIT
    change = f"{service_name(0)} {before[0]}/{before[1]} → {split[0]}/{split[1]}"
    text = service_yaml(0, shape, split)
    tmp = change_file.with_suffix(".tmp")  # not *.yaml: the store never sees a half-written file
    tmp.write_text(text)
    errors_before = fleet.errors
    cpu_before, client_before, tcp_before = cpu_seconds(plane.pid), _client_cpu(), tcp_counters()
    with ResourceSampler([plane.pid]) as rss:
        os.replace(tmp, change_file)
        t0, wall0 = time.perf_counter(), time.time()
        current = fleet.begin_round(t0)
        current = await fleet.finish_round(timeout)
        last = max((d.acked for d in current.moved.values()), default=time.perf_counter())
    cpu_used, client_used = cpu_seconds(plane.pid) - cpu_before, _client_cpu() - client_before
    tcp = {name: value - tcp_before[name] for name, value in tcp_counters().items()}
    moved = list(current.moved.values())
    logged = [p for p in pushes(plane.log, wall0) if p.changed and p.when <= wall0 + (last - t0) + 0.01]
    first = logged[0] if logged else None
    recompiled_ms = None if first is None else max(0.0, (first.when - wall0) * 1000)
    sizes = [d.size for d in moved]
    return RoundResult(
        index=index,
        change=change,
        proxies=len(fleet.watchers),
        acked=len(moved),
        ack_ms=_ms([(d.acked - t0) * 1000 for d in moved]),
        received_ms=_ms([(d.received - t0) * 1000 for d in moved]),
        recompiled_ms=recompiled_ms,
        recompile_s=None if first is None else first.compile_seconds,
        recompiles=len(logged),
        delivered_ms=None if recompiled_ms is None or not moved else (last - t0) * 1000 - recompiled_ms,
        cpu_s=round(cpu_used, 3),
        client_cpu_s=round(client_used, 3),
        rss_max_mb=round(rss.max_rss.get(plane.pid, 0) / 2**20, 1),
        snapshot_mb=round(sum(sizes) / len(sizes) / 2**20, 3) if sizes else 0.0,
        sent_mb=round(sum(sizes) / 2**20, 1),
        errors=fleet.errors - errors_before,
        listen_overflows=tcp["ListenOverflows"],
        syn_retransmits=tcp["TCPSynRetrans"],
        seconds=round(last - t0, 3),
    )


async def drive(
    args: argparse.Namespace,
    shape: MeshShape,
    plane: Service,
    port: int,
    change_file: Path,
    report: ScaleReport,
    console: Console,
    profiles: list[Path],
) -> None:
    """Register, sync, then measure the rounds (each one sampled into ``profiles[i]``, if given)."""
    specs = workloads(shape)
    state = state_dir(plane.log.parent)
    started = time.perf_counter()
    identities = await issue_identities(
        port, state, (s.account for s in specs), plane.log.parent / "identities"
    )
    report.setup["certificates_s"] = round(time.perf_counter() - started, 2)
    report.setup["certificates"] = len(identities)
    fleet = Fleet(specs, port, args.watch_wait, identities, bundle_context(state))
    wall_start = time.time()
    console.print(f"registering {shape.endpoints:,} workloads")
    report.setup["register_s"] = round(await fleet.register_all(), 2)
    console.print(f"starting {len(fleet.watchers):,} watchers")
    started = time.perf_counter()
    fleet.start()
    try:
        if not await fleet.first_snapshots(args.sync_timeout):
            have = sum(1 for w in fleet.watchers if w.deliveries)
            raise BenchError(
                f"only {have} of {len(fleet.watchers)} watchers had a snapshot after {args.sync_timeout:g} s"
            )
        report.setup["first_sync_s"] = round(time.perf_counter() - started, 2)
        if not await fleet.settled(args.sync_timeout):
            raise BenchError("the proxies did not settle (all SYNCED, no recompile) in time")
        report.setup["settled_s"] = round(time.perf_counter() - started - 1.0, 2)  # less the quiet second
        before = pushes(plane.log, wall_start)
        report.setup["recompiles"] = len(before)
        timed = [p.compile_seconds for p in before if p.compile_seconds is not None]
        report.setup["longest_recompile_s"] = max(timed) if timed else None
        report.setup["rss_synced_mb"] = round(memory_mb(plane.pid)[0], 1)
        report.setup["reregistered"] = fleet.reregistered
        report.setup["errors"] = fleet.errors
        console.print(f"all {len(fleet.watchers):,} watchers synced; measuring {args.rounds} edit(s)")
        for index in range(1, args.rounds + 1):
            await fleet.pause_heartbeats(fresh_for=5.0)
            sampled = profiles[index - 1] if profiles else None
            try:
                with record(plane.pid, sampled) if sampled else contextlib.nullcontext() as output:
                    if sampled is not None and output is None:
                        raise BenchError("--profile: py-spy is not installed (pip install -e '.[bench]')")
                    if output is not None:
                        await asyncio.sleep(PROFILER_START)
                    result = await measure_round(index, fleet, plane, change_file, shape, args.round_timeout)
            finally:
                fleet.resume_heartbeats()
            report.rounds.append(result)
            console.print(
                f"round {index}: {result.acked:,}/{result.proxies:,} ACKed, "
                f"p99 {result.ack_ms['p99'] or 0:,.0f} ms, max {result.ack_ms['max'] or 0:,.0f} ms"
            )
            plane.check_alive()
            if result.acked < result.proxies:
                report.notes.append(
                    f"round {index}: only {result.acked:,} of {result.proxies:,} proxies ACKed the new "
                    f"version within {args.round_timeout:g} s"
                )
            if not await fleet.settled(args.sync_timeout):
                raise BenchError(f"the proxies did not settle after round {index}")
        report.setup["heartbeats"] = fleet.heartbeats
        report.setup["handshakes"] = fleet.handshakes
    finally:
        await fleet.stop()


def run(args: argparse.Namespace, report: ScaleReport, console: Console) -> None:
    shape = MeshShape(
        services=args.services,
        endpoints=args.endpoints,
        proxies=args.proxies,
        namespaces=args.namespaces,
        idle_sidecars=args.idle == "sidecar",
    )
    command = shlex.split(args.loom) if args.loom else loom.command()
    workdir = Path(tempfile.mkdtemp(prefix="loom-cp-bench-"))
    console.print(f"folder and logs in {workdir}")
    try:
        config_dir = workdir / "mesh"
        change_file = write_config(config_dir, shape)
        if not args.no_breakdown:
            console.print("timing the compiler in this process")
            report.breakdown = compiler_breakdown(config_dir, shape)
        with control_plane(command, config_dir, workdir, args.cp_cpu) as (plane, port):
            OUT.mkdir(parents=True, exist_ok=True)
            profiles = (
                [
                    OUT / f"controlplane-{report.timestamp}-round{i}.pyspy.txt"
                    for i in range(1, args.rounds + 1)
                ]
                if args.profile
                else []
            )

            async def main() -> None:
                await drive(args, shape, plane, port, change_file, report, console, profiles)

            try:
                import uvloop
            except ImportError:  # pragma: no cover - platforms without uvloop
                asyncio.run(main())
            else:
                uvloop.run(main())
            report.rss_peak_mb = round(memory_mb(plane.pid)[1], 1)
            plane.check_alive()
            if profiles:
                report.profile = summarize(profiles)
    finally:
        if args.keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def findings(report: ScaleReport) -> list[str]:
    """Notes read from the figures: where the time of a push went, and what limited it."""
    notes = []
    timed = [r for r in report.rounds if r.recompiled_ms is not None and r.recompile_s is not None]
    if timed:
        middle = sorted(timed, key=lambda r: r.ack_ms["max"] or 0.0)[len(timed) // 2]
        assert middle.recompiled_ms is not None and middle.recompile_s is not None
        before = middle.recompiled_ms - 1000 * middle.recompile_s
        notes.append(
            f"where round {middle.index}'s {middle.ack_ms['max'] or 0:,.0f} ms went: {before:,.0f} ms before "
            f"the recompile (poll, reading the folder again, debounce), {1000 * middle.recompile_s:,.0f} ms "
            f"recompiling, {middle.delivered_ms or 0:,.0f} ms delivering (watches answered, "
            f"{middle.sent_mb:,.0f} MB of snapshots sent, ACKs received); the control plane used "
            f"{middle.cpu_s:.2f} CPU s"
        )
    load = report.breakdown.get("load_s")
    if load is not None:
        notes.append(
            f"parsing the whole folder takes {load * 1000:,.0f} ms for "
            f"{report.settings['services']:,} files ({report.breakdown['resources']:,} resources) in this "
            "process (`load_paths`); the folder store re-parses only the files an edit changed"
        )
    drops = sum(r.listen_overflows for r in report.rounds)
    if drops:
        notes.append(
            f"{drops:,} connections were dropped because the control plane's accept queue was full "
            "(its listen backlog is aiohttp's default, 128): each of those clients waited for a SYN "
            "retransmission, a second or more"
        )
    for r in report.rounds:
        if r.seconds and r.client_cpu_s > 0.8 * r.seconds:
            notes.append(f"round {r.index}: the watchers' core was busy most of the round: they limited it")
    return notes


def command_line(args: argparse.Namespace) -> str:
    parts = ["python bench/controlplane_scale.py"]
    defaults = QUICK if args.quick else FULL
    if args.quick:
        parts.append("--quick")
    for name, value in defaults.items():
        if getattr(args, name) != value:
            parts.append(f"--{name} {getattr(args, name)}")
    if args.idle != "sidecar":
        parts.append(f"--idle {args.idle}")
    if args.profile:
        parts.append("--profile")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    problem = check(args)
    if problem:
        console.print(f"[red]{problem}[/red]")
        return 2
    pin_self(args.load_cpu)
    raise_open_files()
    # Stopped from outside: unwind, so that the control plane it started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = ScaleReport(
        timestamp=time.strftime("%Y%m%d-%H%M%S"),
        machine=describe_machine(),
        settings={
            "proxies": args.proxies,
            "services": args.services,
            "endpoints": args.endpoints,
            "namespaces": args.namespaces,
            "rounds": args.rounds,
            "idle_sidecars": args.idle == "sidecar",
            "watch_wait_s": args.watch_wait,
            "round_timeout_s": args.round_timeout,
            "cp_cpu": args.cp_cpu,
            "load_cpu": args.load_cpu,
        },
    )
    report.notes.append(
        "the folder store polls every 0.1 s and the push is debounced 0.1 s: up to 0.2 s of every "
        "figure measured from the apply is spent before the control plane starts to recompile"
    )
    try:
        run(args, report, console)
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        report.notes.append(f"the run failed: {exc}")
        failed = True
    else:
        failed = False
    report.notes += findings(report)
    print_report(report, console)
    json_path, md_path = write(
        report, OUT, command_line(args) + (" --update-results" if args.update_results else "")
    )
    console.print(f"wrote {json_path} and {md_path}")
    if args.update_results and not failed:
        update_results(
            BENCH / "RESULTS.md", markdown_section(report, command_line(args) + " --update-results")
        )
        console.print(f"updated the control plane section of {BENCH / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
