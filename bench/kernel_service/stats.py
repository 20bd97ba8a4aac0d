"""Latency and load figures: percentiles, timed runs of calls, and what the processes spent meanwhile.

A run's window is measured on the client (``perf_counter_ns`` around each RPC); around it the
CPU time of every process (``/proc/<pid>/stat``, and this process's own) and, for the kernel, its
Prometheus metrics are sampled, so a figure says both how long a call took and where the time went.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

from prometheus_client.parser import text_string_to_metric_families

from bench.kernel_service.settings import BenchError

CLK_TCK: Final = os.sysconf("SC_CLK_TCK")

#: A client call: ``await call(worker)`` -> (not-ready refusals retried, nanoseconds of the answered RPC).
Caller: TypeAlias = Callable[[int], Awaitable[tuple[int, int]]]


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise BenchError("no samples")
    rank = max(1, -(-len(sorted_values) * q // 1))  # ceil(n * q), at least 1
    return sorted_values[int(rank) - 1]


@dataclass(frozen=True)
class Latency:
    """Latency figures in microseconds."""

    samples: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    max_us: float

    @classmethod
    def of(cls, nanoseconds: Sequence[int]) -> Latency:
        ordered = sorted(nanoseconds)
        return cls(
            samples=len(ordered),
            p50_us=percentile(ordered, 0.50) / 1e3,
            p90_us=percentile(ordered, 0.90) / 1e3,
            p99_us=percentile(ordered, 0.99) / 1e3,
            mean_us=sum(ordered) / len(ordered) / 1e3,
            max_us=ordered[-1] / 1e3,
        )


@dataclass(frozen=True)
class Load:
    """One measured run of calls: latencies, rate, and the CPU the processes spent meanwhile."""

    concurrency: int
    seconds: float
    calls: int
    per_second: float
    latency: Latency
    cpu_seconds: dict[str, float]
    not_ready_refusals: int = 0
    #: From the kernel's own Prometheus metrics over the window (kernel runs only).
    server: dict[str, float] = field(default_factory=dict)
    #: Time intents waited for their slot (the venue's fill of its previous order), when they did.
    slot_waits: Latency | None = None

    def cpu_per_call_us(self) -> dict[str, float]:
        return {name: round(seconds / self.calls * 1e6, 1) for name, seconds in self.cpu_seconds.items()}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def measure(
    call: Caller,
    *,
    concurrency: int,
    warmup: int,
    calls: int | None,
    seconds: float | None,
    at_start: Callable[[], Awaitable[None]],
    at_end: Callable[[], Awaitable[None]],
    pause: float = 0.0,
) -> tuple[list[int], float, int]:
    """Runs ``concurrency`` workers calling ``call(worker)`` (which returns its not-ready refusals).

    Either ``calls`` per worker after ``warmup`` per worker (latency runs), or for ``seconds``
    after one second of warm-up (load runs). ``at_start`` and ``at_end`` run when the measured
    window opens and closes; ``pause`` seconds pass between a worker's calls (not timed).
    Returns the latencies (ns) of the calls that started in the window and ended in it, the
    window's length and the refusals.
    """
    latencies: list[int] = []
    not_ready = 0
    window_end = 0
    started = asyncio.Event()
    warm = asyncio.Semaphore(0)
    clock = time.perf_counter_ns

    async def worker(index: int) -> None:
        nonlocal not_ready
        for _ in range(warmup):
            await call(index)
        warm.release()
        await started.wait()
        n = 0
        while calls is None or n < calls:
            begun = clock()
            if seconds is not None and begun >= window_end:
                return
            refused, latency = await call(index)
            ended = clock()
            not_ready += refused
            if seconds is None or ended <= window_end:
                latencies.append(latency)
            n += 1
            if pause:
                await asyncio.sleep(pause)

    async def load_warmup(index: int) -> None:
        while not started.is_set():
            await call(index)
        await worker(index)

    tasks = [asyncio.create_task(worker(i) if seconds is None else load_warmup(i)) for i in range(concurrency)]
    if seconds is None:
        for _ in range(concurrency):
            await warm.acquire()
    else:
        await asyncio.sleep(1.0)  # warm-up under load
    await at_start()
    window_start = clock()
    if seconds is not None:
        window_end = window_start + int(seconds * 1e9)
    started.set()
    if seconds is not None:
        await asyncio.sleep(seconds)
        await at_end()
    await asyncio.gather(*tasks)
    if seconds is None:
        elapsed = (clock() - window_start) / 1e9
        await at_end()
    else:
        elapsed = seconds
    return latencies, elapsed, not_ready


async def measure_load(
    name: str,
    call: Caller,
    cpu: dict[str, Callable[[], float]],
    *,
    concurrency: int,
    warmup: int = 0,
    calls: int | None = None,
    seconds: float | None = None,
    metrics_port: int | None = None,
    pause: float = 0.0,
    waits: list[int] | None = None,
) -> Load:
    """:func:`measure`, with the CPU time of every process and the kernel's metrics over the window."""
    cpu_before: dict[str, float] = {}
    spent: dict[str, float] = {}
    scraped: list[dict[str, float]] = []

    async def at_start() -> None:
        if waits is not None:
            waits.clear()
        if metrics_port is not None:
            scraped.append(await scrape(metrics_port))
        cpu_before.update({key: read() for key, read in cpu.items()})

    async def at_end() -> None:
        spent.update({key: round(read() - cpu_before[key], 3) for key, read in cpu.items()})
        if metrics_port is not None:
            scraped.append(await scrape(metrics_port))

    latencies, elapsed, not_ready = await measure(
        call,
        concurrency=concurrency,
        warmup=warmup,
        calls=calls,
        seconds=seconds,
        at_start=at_start,
        at_end=at_end,
        pause=pause,
    )
    server = server_figures(*scraped) if metrics_port is not None else {}
    if not latencies:
        raise BenchError(f"{name}: no call completed")
    return Load(
        concurrency=concurrency,
        seconds=round(elapsed, 3),
        calls=len(latencies),
        per_second=len(latencies) / elapsed,
        latency=Latency.of(latencies),
        cpu_seconds=spent,
        not_ready_refusals=not_ready,
        server=server,
        slot_waits=Latency.of(waits) if waits else None,
    )


async def scrape(port: int) -> dict[str, float]:
    """The kernel's Prometheus metrics as ``name{label=value,...}`` -> value (fetched off the event loop)."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text: str = answer.read().decode()
            return text

    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(await asyncio.to_thread(get)):
        for sample in family.samples:
            labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def server_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the kernel says about a window: handler and commit times, batches, inputs judged by kind."""

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    def mean_us(name: str, labels: str = "") -> float:
        count = delta(f"{name}_count{{{labels}}}")
        return round(delta(f"{name}_sum{{{labels}}}") / count * 1e6, 1) if count else 0.0

    commits = delta("pink_kernel_commit_seconds_count{}")
    appends = delta("pink_kernel_journal_batch_records_count{}")
    figures = {
        "submit_intent_handler_mean_us": mean_us("pink_kernel_rpc_seconds", "method=SubmitIntent"),
        "commit_mean_us": mean_us("pink_kernel_commit_seconds"),
        "commits": commits,
        "journal_appends": appends,
        "records_per_append": round(delta("pink_kernel_journal_batch_records_sum{}") / appends, 2) if appends else 0.0,
    }
    prefix = "pink_kernel_inputs_total{"
    for key in sorted(after):
        if key.startswith(prefix) and delta(key):
            labels = dict(part.split("=", 1) for part in key[len(prefix) : -1].split(","))
            figures[f"inputs_{labels.get('kind', '?')}_{labels.get('code', '?')}"] = delta(key)
    return figures
