"""Kernel throughput through the PyO3 binding (ACCEPTANCE.md "Performance": >= 300k inputs/s).

Replays the trading loop exported by the Rust benchmark (``pink-bench --export PATH``) through
``pink_kernel.Kernel.step``: serialized ``KernelInput`` bytes in, serialized ``Outcome`` bytes out,
one call per input, single thread. Each round replays every input on a kernel freshly restored
from the exported snapshot; the best round counts. For scale it also times the same number of
calls of a trivial binding method (the ``last_sequence`` getter: the Python -> PyO3 call floor)
and of an empty Python loop.

Export format: frames of a u32 little-endian length and that many bytes; frame 0 is the
``KernelConfig``, frame 1 the ``KernelSnapshot`` to start from, frames 2.. the ``KernelInput``s.

Usage: python -m bench.pyo3_bench --inputs PATH [--rounds N] [--out PATH]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pink_kernel
from bench.results_file import publish
from services.common.proto import snapshot_pb2

TARGET_INPUTS_PER_SECOND = 300_000
DEFAULT_OUT = Path("bench/results/kernel_pyo3.json")
_LENGTH = struct.Struct("<I")


class BenchError(Exception):
    """The export is malformed or the replay did not go as recorded."""


@dataclass(frozen=True)
class Export:
    config: bytes
    snapshot: bytes
    inputs: list[bytes]


@dataclass(frozen=True)
class Result:
    inputs: int
    rounds: int
    step_per_second: float
    empty_call_per_second: float
    empty_loop_per_second: float


def read_export(path: Path) -> Export:
    """The frames of a ``pink-bench --export`` file."""
    data = path.read_bytes()
    frames: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise BenchError(f"{path}: truncated length prefix at byte {offset}")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise BenchError(f"{path}: frame {len(frames)} needs {length} bytes, {len(data) - offset} left")
        frames.append(data[offset : offset + length])
        offset += length
    if len(frames) < 3:
        raise BenchError(f"{path}: expected a config, a snapshot and inputs, found {len(frames)} frames")
    config, snapshot, *inputs = frames
    # The snapshot must be of a kernel built from the exported config.
    if snapshot_pb2.KernelSnapshot.FromString(snapshot).config != snapshot_pb2.KernelConfig.FromString(config):
        raise BenchError(f"{path}: the snapshot's config is not the exported config")
    return Export(config, snapshot, inputs)


def replay_seconds(export: Export) -> float:
    """Seconds to step every input on a freshly restored kernel; raises unless all were accepted."""
    kernel = pink_kernel.Kernel.restore(export.snapshot)
    start_sequence = kernel.last_sequence
    step = kernel.step
    inputs = export.inputs
    began = time.perf_counter()
    for message in inputs:
        step(message)
    elapsed = time.perf_counter() - began
    accepted = kernel.last_sequence - start_sequence
    if accepted != len(inputs):
        raise BenchError(f"only {accepted} of {len(inputs)} inputs were accepted: the export does not replay")
    kernel.check_invariants()
    return elapsed


def empty_call_seconds(export: Export) -> float:
    """Seconds for as many calls of the trivial ``last_sequence`` getter as there are inputs."""
    kernel = pink_kernel.Kernel.restore(export.snapshot)
    began = time.perf_counter()
    for _ in export.inputs:
        kernel.last_sequence  # noqa: B018 - the call is what is measured
    return time.perf_counter() - began


def empty_loop_seconds(export: Export) -> float:
    """Seconds for the bare Python loop over the inputs."""
    began = time.perf_counter()
    for _ in export.inputs:
        pass
    return time.perf_counter() - began


def run(export: Export, rounds: int) -> Result:
    """Best of ``rounds`` of each measurement."""
    n = len(export.inputs)
    step = min(replay_seconds(export) for _ in range(rounds))
    call = min(empty_call_seconds(export) for _ in range(rounds))
    loop = min(empty_loop_seconds(export) for _ in range(rounds))
    return Result(n, rounds, n / step, n / call, n / loop)


def render(result: Result) -> list[str]:
    step_ns, call_ns = 1e9 / result.step_per_second, 1e9 / result.empty_call_per_second
    loop_ns = 1e9 / result.empty_loop_per_second
    verdict = "meets" if result.step_per_second >= TARGET_INPUTS_PER_SECOND else "BELOW"
    target = f"({verdict} target >= {TARGET_INPUTS_PER_SECOND:,})"
    return [
        f"workload: {result.inputs:,} inputs (KernelInput bytes in, Outcome bytes out), best of {result.rounds}",
        f"PyO3 Kernel.step:            {result.step_per_second:>12,.0f} inputs/s {step_ns:7.0f} ns/input  {target}",
        f"empty call (getter) floor:   {result.empty_call_per_second:>12,.0f} calls/s  {call_ns:7.0f} ns/call",
        f"empty Python loop:           {result.empty_loop_per_second:>12,.0f} iter/s   {loop_ns:7.0f} ns/iter",
        f"step above the call floor:   {step_ns - call_ns:>12.0f} ns/input (decode + step + encode + bytes)",
    ]


def to_json(result: Result) -> dict[str, object]:
    return {
        "benchmark": "kernel_pyo3",
        "inputs": result.inputs,
        "rounds": result.rounds,
        "step_inputs_per_second": round(result.step_per_second),
        "empty_call_per_second": round(result.empty_call_per_second),
        "empty_loop_per_second": round(result.empty_loop_per_second),
        "target_inputs_per_second": TARGET_INPUTS_PER_SECOND,
        "pink_kernel": pink_kernel.__version__,
        "python": sys.version,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PINK kernel throughput through the PyO3 binding.")
    parser.add_argument("--inputs", type=Path, required=True, help="export file of `pink-bench --export PATH`")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best counts (default 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        result = run(read_export(args.inputs), args.rounds)
    except (OSError, BenchError, pink_kernel.KernelError, pink_kernel.DecodeError) as error:
        sys.stderr.write(f"pyo3_bench: {error}\n")
        return 1
    publish(render(result), to_json(result), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
