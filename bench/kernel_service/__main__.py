"""Command line of the kernel service benchmarks: runs the phases in order, writes and prints the figures.

``--serve empty|venue`` (internal) makes this process one of the benchmark's child servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import grpc.aio

import pink_kernel
from bench.kernel_service.children import Children, serve_child
from bench.kernel_service.live import run_live
from bench.kernel_service.replay import run_replay
from bench.kernel_service.report import Results, render, to_json
from bench.kernel_service.settings import BenchError, Options
from bench.results_file import publish
from services.common.logging import configure_logging

DEFAULT_OUT: Final = Path("bench/results/kernel_service.json")
PROG: Final = "kernel_service bench"


def _load_average() -> tuple[float, ...]:
    return tuple(round(x, 2) for x in os.getloadavg())


async def run(options: Options) -> Results:
    """Every phase in one run; the children are stopped and, on failure, their logs kept."""
    parent = options.work_dir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pink-kernel-bench-", dir=parent))
    children = Children(work)
    load_before = _load_average()
    try:
        live = await run_live(options, children, work)
        replay = await run_replay(options, children, work)
    except BaseException:
        sys.stderr.write(f"{PROG}: logs kept in {work}\n")
        await children.stop_all()
        raise
    await children.stop_all()
    shutil.rmtree(work)
    return Results(live, replay, load_before, _load_average())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kernel_service", description="PINK kernel service benchmarks (latency, load, restart)."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default {DEFAULT_OUT})")
    parser.add_argument("--concurrency", type=int, default=64, help="clients of the sustained run (default 64)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of each sustained run (default 8)")
    parser.add_argument("--latency-intents", type=int, default=2000, help="intents at concurrency 1 (default 2000)")
    parser.add_argument("--replay-records", type=int, default=1_000_000, help="journal size (default 1,000,000)")
    parser.add_argument("--work-dir", type=Path, default=None, help="parent of the data directories (default TMPDIR)")
    parser.add_argument("--serve", choices=("empty", "venue"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_child(args.serve, args.data_dir)
    if args.concurrency < 1 or args.duration <= 0 or args.latency_intents < 10 or args.replay_records < 1000:
        parser.error("--concurrency >= 1, --duration > 0, --latency-intents >= 10, --replay-records >= 1000")
    configure_logging("pink-bench", "WARNING")
    options = Options(args.concurrency, args.duration, args.latency_intents, args.replay_records, args.work_dir)
    try:
        doc = to_json(options, asyncio.run(run(options)))
    except (OSError, BenchError, grpc.aio.AioRpcError, pink_kernel.KernelError) as error:
        sys.stderr.write(f"{PROG}: {error}\n")
        return 1
    publish(render(doc), doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
