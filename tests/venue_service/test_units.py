"""Signing, the rate budget, wire parsing and instrument formatting, without a network.

Legacy flaws covered: [E16, H4, H8, H18, I21, I22, J5, K9, K11, L7, N2, N3, N4, N7, N10, S8].
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.common.proto import venue_event_pb2
from services.venue.bingx.instruments import OrderCheckError, parse_contracts
from services.venue.bingx.ratelimit import RateBudget, limits_for
from services.venue.bingx.signing import sign, signed_query
from services.venue.bingx.wire import WireError, decimal_or_none, order_record, stream_update
from services.venue.events import dec, stream_event
from services.venue.executions import ExecutionLog, InvalidPositionError, PositionLostError
from services.venue.metrics import VenueMetrics

ROOT = Path(__file__).resolve().parents[2]
VENUE = ROOT / "services" / "venue"
DOC_SECRET = "mheO6dR8ovSsxZQCOYEFCtelpuxcWGTfHw7te326y6jOwq5WpvFQ9JNljoTwBXZGv5It07m9RXSPpDQEK2w"  # noqa: S105 - the public API.md vector


def test_signature_matches_the_api_md_test_vector() -> None:
    payload = "symbol=BTC-USDT&timestamp=1667872120843&side=LONG&leverage=6"
    assert sign(DOC_SECRET, payload) == "4f581ecdb1fa09b9d6e57886b6f70cffed17f82b93399722939e49a38edec2bf"


def test_signed_query_sorts_signs_raw_values_and_encodes_them() -> None:
    query = signed_query({"symbol": "BTC-USDT", "reduceOnly": True, "list": '["a b"]'}, DOC_SECRET)
    raw = 'list=["a b"]&reduceOnly=true&symbol=BTC-USDT'
    assert query == f"list=%5B%22a%20b%22%5D&reduceOnly=true&symbol=BTC-USDT&signature={sign(DOC_SECRET, raw)}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_the_budget_never_lets_a_burst_exceed_five_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    sent: list[float] = []

    async def advance(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", advance)
    budget = RateBudget(margin=0.05, clock=clock)
    for _ in range(23):
        await budget.acquire("POST /openApi/swap/v2/trade/order")
        sent.append(clock.now)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 1.0) <= 5
    assert sent[-1] - sent[0] >= 4.0


@pytest.mark.anyio
async def test_a_request_in_flight_holds_its_slot_until_its_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """BingX counts a request when it arrives: the window runs from the answer, whatever the latency."""
    clock = FakeClock()
    real_sleep = asyncio.sleep

    async def advance(seconds: float) -> None:
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", advance)
    budget = RateBudget(margin=0.0, clock=clock)
    key = "POST /openApi/swap/v2/trade/order"
    async with contextlib.AsyncExitStack() as in_flight:
        for _ in range(5):
            await in_flight.enter_async_context(budget.slot(key))
        clock.now += 5.0  # slow answers: still in flight, still in the window
        sixth = asyncio.create_task(budget.acquire(key))
        for _ in range(3):
            await real_sleep(0)
        assert not sixth.done()
    answered = clock.now
    await sixth
    assert clock.now >= answered + 1.0


@pytest.mark.anyio
async def test_a_paused_endpoint_waits_out_its_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()

    async def advance(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", advance)
    budget = RateBudget(margin=0.0, clock=clock)
    budget.pause("GET /openApi/swap/v2/user/positions", 2.5)
    assert await budget.acquire("GET /openApi/swap/v2/user/positions") == pytest.approx(2.5)


def test_limits_follow_bingx_groups() -> None:
    assert dict(limits_for("POST /openApi/swap/v2/trade/order"))["uid:POST /openApi/swap/v2/trade/order"].count == 5
    assert (
        dict(limits_for("POST /openApi/swap/v2/trade/marginType"))["uid:POST /openApi/swap/v2/trade/marginType"].count
        == 2
    )
    assert {name for name, _ in limits_for("GET /openApi/swap/v2/quote/contracts")} == {
        "group:market",
        "group:market:minute",
    }
    assert limits_for("POST /openApi/user/auth/userDataStream") == ()


def test_zero_is_a_value_and_missing_is_missing() -> None:
    assert decimal_or_none("0") == Decimal(0)
    assert decimal_or_none(0) == Decimal(0)
    assert decimal_or_none("") is None
    assert decimal_or_none(None) is None
    with pytest.raises(WireError):
        decimal_or_none("NaN")
    with pytest.raises(WireError):
        decimal_or_none(1.5)  # a float never reaches money
    record = order_record(
        {"orderId": 1, "symbol": "BTC-USDT", "origQty": "1", "executedQty": "0", "avgPrice": "0.0", "status": "PENDING"}
    )
    assert record.executed == Decimal(0)
    assert record.avg_price is None
    assert record.status == "NEW"
    with pytest.raises(WireError):
        order_record({"orderId": 1, "symbol": "BTC-USDT", "origQty": "1", "status": "FILLED"})  # no executedQty


def test_exchange_times_are_kept_and_event_id_zero_is_a_real_id() -> None:
    update = stream_update(
        {
            "e": "ORDER_TRADE_UPDATE",
            "E": 1700000000123,
            "o": {
                "s": "BTC-USDT",
                "c": "pk-1",
                "i": 0,
                "x": "TRADE",
                "X": "FILLED",
                "z": "1",
                "l": "1",
                "L": "100",
                "n": "-0.05",
                "N": "USDT",
                "T": 1700000000100,
                "ap": "100",
            },
        }
    )
    event = stream_event(update, received_ms=1700000000200)
    assert event is not None
    assert event.receive_time.ToMilliseconds() == 1700000000200  # beside it, never instead
    assert event.exchange_time.ToMilliseconds() == 1700000000100  # the trade time, not local time
    assert event.venue_order_id == "0"
    assert event.venue_event_id == "0:fill:1"
    assert event.fee.value == "0.05"  # BingX's negative = paid, flipped
    unknown = stream_update({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"i": 5, "x": "NEW", "X": "SUSPENDED"}})
    mapped = stream_event(unknown, received_ms=2)
    assert mapped is not None
    assert mapped.kind == venue_event_pb2.VENUE_EVENT_KIND_UNKNOWN  # never mapped to accepted


def test_instruments_format_with_decimal_and_refuse_off_grid_values() -> None:
    table = parse_contracts(
        [
            {
                "symbol": "BTC-USDT",
                "quantityPrecision": 4,
                "pricePrecision": 1,
                "tradeMinQuantity": Decimal("0.00015"),
                "tradeMinUSDT": 2,
                "status": 1,
                "apiStateOpen": "true",
                "apiStateClose": "true",
            }
        ]
    )
    btc = table["BTC-USDT"]
    assert btc.min_quantity == Decimal("0.0002")  # rounded up onto the step grid
    assert btc.quantity_text(Decimal("0.0010")) == "0.0010"
    assert btc.price_text(Decimal("60000")) == "60000.0"
    assert dec(Decimal("60000.0")).value == "60000"
    assert dec(Decimal("0E-8")).value == "0"
    with pytest.raises(OrderCheckError, match="not a multiple of the step"):
        btc.quantity_text(Decimal("0.00025"))
    with pytest.raises(OrderCheckError, match="below the minimum 2 USDT"):
        btc.check_notional(Decimal("0.0002"), Decimal("9000"))


_BLOCKING = {"run_until_complete", "run_coroutine_threadsafe", "to_thread", "ThreadPoolExecutor", "get_event_loop"}


def test_the_adapter_is_async_end_to_end_with_no_sync_bridge() -> None:
    """No event-loop probing, no nested loops, no thread pools, no blocking HTTP in the adapter."""
    problems = []
    for path in sorted(VENUE.rglob("*.py")):
        if "sim" in path.relative_to(VENUE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in _BLOCKING:
                problems.append(f"{path.name}:{getattr(node, 'lineno', 0)} {name}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                called = f"{node.value.id}.{node.attr}"
                if called == "time.sleep" or (called == "asyncio.run" and path.name != "__main__.py"):
                    problems.append(f"{path.name}:{node.lineno} {called}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                blocking = {"requests", "urllib3", "threading", "concurrent", "websocket"}
                problems += [f"{path.name}:{node.lineno} import {m}" for m in modules if m.split(".")[0] in blocking]
    assert problems == []


@pytest.mark.anyio
async def test_the_execution_log_keeps_each_fact_once_and_refuses_positions_it_lost() -> None:
    log = ExecutionLog(100, VenueMetrics(CollectorRegistry()))

    def fill(order: int, cumulative: int) -> venue_event_pb2.VenueEvent:
        return venue_event_pb2.VenueEvent(
            kind=venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL,
            client_order_id=f"pk-{order}",
            venue_order_id=str(order),
            venue_event_id=f"{order}:fill:{cumulative}",
            cumulative_quantity=dec(Decimal(cumulative)),
            last_quantity=dec(Decimal(1)),
        )

    assert len(log.emit([fill(1, 1), fill(1, 1), fill(1, 2)], source="test")) == 2
    assert log.emit([fill(1, 2)], source="test") == []
    facts = log.facts(venue_order_id="1")
    assert facts is not None
    assert facts.cumulative == Decimal(2)
    for n in range(150):
        log.emit([fill(2, n + 1)], source="test")
    assert log.size == 100
    with pytest.raises(PositionLostError):
        await anext(aiter(log.follow(log.position(1))))
    with pytest.raises(InvalidPositionError):
        await anext(aiter(log.follow("nonsense")))
    newest = await anext(aiter(log.follow(log.position(151))))  # 2 facts of order 1, then 150
    assert newest.event.venue_event_id == "2:fill:150"
