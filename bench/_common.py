"""What several benches share: a moto server in its own process, and interleaved timing.

Not a bench itself (run_all only discovers ``bench_*.py``).
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Until ``url`` answers at all (an HTTP error status counts as an answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up within {timeout} s")


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in a separate process (so its CPU is not the client's); yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/moto-api/")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def interleaved(
    phases: dict[str, Callable[[], object]], iterations: int, warmup: int = 5
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU milliseconds per call of each phase.

    Phases run interleaved with a rotating order, so noise from other processes on the machine
    hits every phase alike. ``warmup`` calls per phase first (connections, credential and key
    caches).
    """
    for fn in phases.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {name: [] for name in phases}
    cpu: dict[str, list[float]] = {name: [] for name in phases}
    order = list(phases)
    for i in range(iterations):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            fn = phases[name]
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
    return wall, cpu


def latency_row(bench: str, case: str, wall: list[float], cpu: list[float]) -> dict[str, Any]:
    """A report row (see report.py) for one phase of ``interleaved``: median and p99 in ms."""
    median = statistics.median(wall)
    return {
        "bench": bench,
        "case": case,
        "metric": "ms",
        "value": median,
        "p50": median,
        "p99": statistics.quantiles(wall, n=100)[98],
        "n": len(wall),
        "note": f"{len(wall)} sequential put+get, interleaved; client CPU "
        f"{statistics.mean(cpu):.2f} ms/op",
    }
