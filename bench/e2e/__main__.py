"""End-to-end figure: intent -> filled position through the whole platform on loopback.

``python -m bench.e2e`` starts the BingX simulator, the venue service and the kernel service as
processes (exactly as ``make run`` does), then sends MARKET ENTER / EXIT intents on one slot,
each answered once its order is done (``WAIT_FOR_ORDER_DONE``), one at a time with a pause in
between so BingX's order budget (5 placements/s, which the venue service enforces) never makes
an order wait. Reported: the client's latency (p50/p90/p99) and its breakdown by hop, read from
the kernel's log (:mod:`bench.e2e.hops`). Target (ACCEPTANCE.md): p50 < 10 ms. Figures only:
nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import grpc.aio
from google.protobuf import duration_pb2

from bench.e2e.hops import HOPS, HopError, Sent, breakdown
from bench.results_file import publish
from services.common.proto import intent_pb2, kernel_service_pb2, kernel_service_pb2_grpc, log_pb2, types_pb2
from services.launcher.children import ChildExitedError
from services.launcher.platform import PlatformOptions, start_platform, stop_platform
from services.launcher.session import SessionError, wait_for_marks

if TYPE_CHECKING:
    from services.common.proto.kernel_service_pb2_grpc import KernelServiceAsyncStub as Stub

DEFAULT_OUT: Final = Path("bench/results/e2e.json")
TARGET_P50_MS: Final = 10.0
SYMBOL: Final = "BTC-USDT"
SLOT: Final = 0
ORDER_SECONDS: Final = 30
START_SECONDS: Final = 60.0
STOP_SECONDS: Final = 30.0


def _intent(n: int, size: str) -> intent_pb2.Intent:
    if n % 2 == 0:
        return intent_pb2.Intent(
            intent_id=f"e2e-{n}-enter",
            action=intent_pb2.INTENT_ACTION_ENTER,
            slot_id=SLOT,
            symbol=SYMBOL,
            side=types_pb2.SIDE_LONG if n % 4 == 0 else types_pb2.SIDE_SHORT,
            order_type=types_pb2.ORDER_TYPE_MARKET,
            target_size=types_pb2.Decimal(value=size),
            leverage=types_pb2.Decimal(value="5"),
        )
    return intent_pb2.Intent(
        intent_id=f"e2e-{n}-exit",
        action=intent_pb2.INTENT_ACTION_EXIT,
        slot_id=SLOT,
        order_type=types_pb2.ORDER_TYPE_MARKET,
    )


async def _trade(stub: Stub, numbers: range, pause: float, size: str) -> list[Sent]:
    wait = kernel_service_pb2.WaitCondition(
        any_of=[kernel_service_pb2.WAIT_FOR_ORDER_DONE], timeout=duration_pb2.Duration(seconds=ORDER_SECONDS)
    )
    sent = []
    for n in numbers:
        intent = _intent(n, size)
        request = kernel_service_pb2.SubmitIntentRequest(intent=intent, wait=wait)
        started = time.time_ns()
        answer = await stub.SubmitIntent(request, timeout=ORDER_SECONDS + 5)
        answered = time.time_ns()
        if not answer.outcome.accepted or not answer.wait_satisfied:
            raise SessionError(
                f"{intent.intent_id}: accepted={answer.outcome.accepted} done={answer.wait_satisfied} "
                f"{answer.outcome.message}"
            )
        sent.append(Sent(intent.intent_id, started, answered))
        await asyncio.sleep(pause)  # pacing of the workload (BingX's order budget), not a synchronisation
    return sent


async def _records(stub: Stub) -> list[log_pb2.LogRecord]:
    """Every record of the kernel's log up to its current last one."""
    last = (await stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=10)).sequence
    records: list[log_pb2.LogRecord] = []
    if last == 0:
        return records
    call = stub.WatchRecords(kernel_service_pb2.WatchRecordsRequest(after_sequence=0), timeout=60)
    try:
        async for response in call:
            records.append(response.record)
            if response.record.sequence >= last:
                break
    finally:
        call.cancel()
    return records


def _summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(q: float) -> float:  # nearest rank
        return ordered[max(1, math.ceil(len(ordered) * q)) - 1]

    return {
        "p50_ms": round(rank(0.5) / 1000, 3),
        "p90_ms": round(rank(0.9) / 1000, 3),
        "p99_ms": round(rank(0.99) / 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) / 1000, 3),
        "max_ms": round(ordered[-1] / 1000, 3),
    }


async def run(intents: int, warmup: int, pause: float, size: str, out: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pink-e2e-") as work:
        options = PlatformOptions(run_dir=Path(work), seed=7, price_tick_seconds=0.2, start_seconds=START_SECONDS)
        async with AsyncExitStack() as stack:
            platform = await start_platform(stack, options, out)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.kernel_port}") as channel:
                stub: Stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
                await wait_for_marks(stub, {SYMBOL}, ORDER_SECONDS, out)
                await _trade(stub, range(warmup), pause, size)
                sent = await _trade(stub, range(warmup, warmup + intents), pause, size)
                rows = breakdown(sent, await _records(stub))
            await stop_platform(platform, STOP_SECONDS, out)
    hops = {name: _summary([row[name] for row in rows]) for name in (*HOPS, "total")}
    return {
        "benchmark": "e2e",
        "settings": {"intents": intents, "warmup": warmup, "pause_seconds": pause, "symbol": SYMBOL, "size": size},
        "workload": "MARKET ENTER/EXIT on one slot through simulator + venue service + kernel service processes, "
        "each intent answered when its order is done (WAIT_FOR_ORDER_DONE), one at a time",
        "latency": hops["total"],
        "target_p50_ms": TARGET_P50_MS,
        "met": hops["total"]["p50_ms"] < TARGET_P50_MS,
        "hops": {name: hops[name] for name in HOPS},
        "fills_via_execution_stream": sum(row["fill_streamed"] for row in rows) / len(rows),
    }


def render(doc: dict[str, Any]) -> list[str]:
    total = doc["latency"]
    lines = [
        (
            f"intent -> filled position ({doc['settings']['intents']} intents, one at a time): "
            f"p50 {total['p50_ms']:.2f} ms  p90 {total['p90_ms']:.2f} ms  p99 {total['p99_ms']:.2f} ms "
            f"(target p50 < {doc['target_p50_ms']:g} ms: {'met' if doc['met'] else 'NOT MET'})"
        ),
        "  by hop (p50 / mean ms; exchange times are BingX milliseconds):",
    ]
    lines += [f"    {name:<36} {hop['p50_ms']:8.3f} {hop['mean_ms']:8.3f}" for name, hop in doc["hops"].items()]
    lines.append(f"  fills that reached the kernel on the execution stream: {doc['fills_via_execution_stream']:.0%}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description="PINK end-to-end intent -> fill latency.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default {DEFAULT_OUT})")
    parser.add_argument("--intents", type=int, default=200, help="measured intents (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="intents before measuring (default 20)")
    parser.add_argument("--pause", type=float, default=0.25, help="seconds between intents (default 0.25)")
    parser.add_argument("--size", default="0.01", help=f"{SYMBOL} quantity per entry (default 0.01)")
    args = parser.parse_args(argv)
    if args.intents < 1 or args.warmup < 0 or args.pause < 0.2:
        parser.error("--intents >= 1, --warmup >= 0, --pause >= 0.2 (BingX allows 5 placements/s)")
    try:
        doc = asyncio.run(run(args.intents, args.warmup, args.pause, args.size, sys.stdout))
    except (ChildExitedError, SessionError, HopError, grpc.aio.AioRpcError, OSError) as error:
        sys.stderr.write(f"e2e bench: {type(error).__name__}: {error}\n")
        return 1
    publish(render(doc), doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
