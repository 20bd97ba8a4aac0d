"""Venue-service figures against the in-process BingX simulator, written to JSON (never a timed test).

* REST calls per placed order in steady state (target 1): MARKET orders after a warm-up.
* REST calls while idle over a window (target 0 beyond the scheduled gap-fill) and the cost of
  one scheduled gap-fill run.
* Adapter overhead per PlaceOrder excluding the simulator's time: the gRPC round trip minus the
  REST round trip of the placement, the wait for the stream's acknowledgement (both the
  simulator's and the network's time) and the wait for BingX's rate budget (5 placements/s);
  also beyond the floor of a gRPC round trip on the same stack (GetInstruments, no REST).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from bench.results_file import publish
from services.common.logging import configure_logging
from services.common.proto import command_pb2, types_pb2, venue_service_pb2
from services.venue.config import VenueSettings
from tests.venue_service.harness import BTC, Harness, simulator, venue_service

DEFAULT_OUT: Final = Path("bench/results/venue.json")
PLACE: Final = "POST /openApi/swap/v2/trade/order"


def _order(
    cid: str, side: types_pb2.OrderSide.ValueType, kind: types_pb2.OrderType.ValueType
) -> command_pb2.PlaceOrder:
    order = command_pb2.PlaceOrder(
        client_order_id=cid, symbol=BTC, side=side, order_type=kind, quantity=types_pb2.Decimal(value="0.001")
    )
    if kind == types_pb2.ORDER_TYPE_LIMIT:
        order.limit_price.value = "50000.0"
        order.time_in_force = types_pb2.TIME_IN_FORCE_GTC
    return order


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered) * 1000, 3),
        "p50": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


async def _placements(venue: Harness, count: int, kind: types_pb2.OrderType.ValueType, tag: str) -> dict[str, Any]:
    metrics = venue.adapter.metrics
    rest = metrics.rest_latency.labels(PLACE)
    rest_before, ack_before = rest._sum.get(), metrics.ack_wait._sum.get()
    budget_before = metrics.rate_waits._sum.get()
    calls_before = venue.calls
    round_trips = []
    for n in range(count):
        side = types_pb2.ORDER_SIDE_BUY if n % 2 else types_pb2.ORDER_SIDE_SELL
        order = _order(f"bench-{tag}-{n}", side, kind)
        started = time.perf_counter()
        answer = await venue.stub.PlaceOrder(
            venue_service_pb2.PlaceOrderRequest(idempotency_key=order.client_order_id, order=order), timeout=10
        )
        round_trips.append(time.perf_counter() - started)
        if not answer.events:
            raise RuntimeError(f"no answer for {order.client_order_id}")
    rest_seconds = rest._sum.get() - rest_before
    ack_seconds = metrics.ack_wait._sum.get() - ack_before
    budget_seconds = metrics.rate_waits._sum.get() - budget_before
    overhead = (sum(round_trips) - rest_seconds - ack_seconds - budget_seconds) / count
    return {
        "orders": count,
        "rest_calls_per_order": round((venue.calls - calls_before) / count, 3),
        "place_order_round_trip_ms": _ms(round_trips),
        "rest_round_trip_ms_mean": round(rest_seconds / count * 1000, 3),
        "stream_ack_wait_ms_mean": round(ack_seconds / count * 1000, 3),
        # BingX allows 5 placements per second: sequential orders beyond that wait for the budget.
        "rate_budget_wait_ms_mean": round(budget_seconds / count * 1000, 3),
        "adapter_overhead_ms_mean": round(overhead * 1000, 3),
    }


async def _rpc_floor(venue: Harness, count: int) -> dict[str, float]:
    """GetInstruments (served from the cache, no REST): the gRPC round trip on this stack."""
    request = venue_service_pb2.GetInstrumentsRequest(symbols=[BTC])
    round_trips = []
    for _ in range(count):
        started = time.perf_counter()
        await venue.stub.GetInstruments(request, timeout=10)
        round_trips.append(time.perf_counter() - started)
    return _ms(round_trips)


async def run(orders: int, idle_seconds: float) -> dict[str, Any]:
    async with simulator() as sim, venue_service(sim) as venue:
        await _placements(venue, 5, types_pb2.ORDER_TYPE_MARKET, "warm")
        floor = await _rpc_floor(venue, 200)
        market = await _placements(venue, orders, types_pb2.ORDER_TYPE_MARKET, "market")
        limit = await _placements(venue, orders, types_pb2.ORDER_TYPE_LIMIT, "limit")
        idle_before = venue.calls
        await asyncio.sleep(idle_seconds)  # the measurement window itself
        idle_calls = venue.calls - idle_before
        gap_before = venue.calls
        await venue.adapter.gap_fill.run("bench")
        gap_calls = venue.calls - gap_before
        # The production schedule (the benchmark's service runs none, so placements are counted alone).
        every = VenueSettings.model_fields["gap_fill_seconds"].default
    for phase in (market, limit):
        phase["adapter_overhead_beyond_rpc_floor_ms_mean"] = round(phase["adapter_overhead_ms_mean"] - floor["mean"], 3)
    return {
        "rpc_floor_get_instruments_ms": floor,
        "market_orders": market,
        "limit_orders": limit,
        "idle": {
            "window_seconds": idle_seconds,
            "rest_calls": idle_calls,
            "rest_calls_per_minute": round(idle_calls * 60 / idle_seconds, 3),
            "scheduled_gap_fill_every_seconds": every,
            "rest_calls_per_gap_fill": gap_calls,
            "scheduled_rest_calls_per_minute": round(gap_calls * 60 / every, 3),
        },
        "targets": {"rest_calls_per_order": 1, "idle_rest_calls_per_minute_beyond_schedule": 0},
        "host": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.venue", description="PINK venue service benchmarks.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default {DEFAULT_OUT})")
    parser.add_argument("--orders", type=int, default=100, help="orders per phase (default 100)")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="idle window (default 20 s)")
    options = parser.parse_args(argv)
    configure_logging("pink-venue-bench", "WARNING")
    results = asyncio.run(run(options.orders, options.idle_seconds))
    publish(json.dumps(results, indent=2).splitlines(), results, options.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
