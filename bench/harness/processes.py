"""Starting, pinning, probing and stopping the processes a benchmark runs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:
    import psutil
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit("the benchmark needs psutil: pip install -e '.[bench]' (make bench does it)") from exc


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and shows the process's log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """The command line run under ``taskset -c CPU`` (children inherit the affinity)."""
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)


@dataclass
class Service:
    """A long-running process started by the benchmark, with its output in a log file."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited with status {code}:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@contextlib.contextmanager
def service(name: str, argv: Sequence[str], workdir: Path, cpu: int | None) -> Iterator[Service]:
    """Run ``argv`` pinned to ``cpu`` for the duration of the block; stop it afterwards."""
    log = workdir / f"{name}.log"
    command = pinned(argv, cpu)
    with log.open("wb") as out:
        popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    svc = Service(name=name, argv=command, log=log, popen=popen)
    try:
        yield svc
    finally:
        svc.stop()


def wait_http(svc: Service, url: str, timeout: float = 20.0, context: ssl.SSLContext | None = None) -> None:
    """Wait until ``url`` answers 200 (over TLS with ``context`` for https), failing early (with
    the log) if the process dies."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        svc.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=1.0, context=context) as response:
                if response.status == 200:
                    return
                last = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"status {exc.code}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise BenchError(f"{svc.name} not ready at {url} after {timeout:.0f}s ({last}):\n{svc.log_tail()}")


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes and their children, in seconds."""
    total = 0.0
    for pid in pids:
        for proc in _tree(pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of one process and its children."""
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one core since boot, from /proc/stat; busy counts softirq,
    where the kernel does much of loopback TCP's work without charging it to any process."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"cpu{cpu}":
            ticks = [int(n) for n in fields[1:9]]  # user nice system idle iowait irq softirq steal
            return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    raise BenchError(f"no cpu{cpu} in /proc/stat")


@dataclass
class ResourceSampler:
    """Samples the RSS of some processes in a background thread; keeps each one's maximum."""

    pids: Sequence[int]
    interval: float = 0.05
    max_rss: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.max_rss[pid] = max(self.max_rss.get(pid, 0), rss_bytes(pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


def run_pinned(argv: Sequence[str], cpu: int | None, timeout: float) -> str:
    """Run a short command pinned to ``cpu`` and return its stdout; raise with stderr on failure."""
    try:
        done = subprocess.run(pinned(argv, cpu), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{argv[0]} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed with status {done.returncode}:\n{done.stderr.strip()}")
    return done.stdout


def pin_self(cpu: int) -> None:
    """Keep the harness (and the RSS sampler) off the proxy's core."""
    os.sched_setaffinity(0, {cpu})
