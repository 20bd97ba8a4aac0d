"""The replay journal: a trading loop over every slot, each record built by the kernel service's writer.

No wire bytes are assembled here. Inputs are the kernel tests' builders (``tests.kernel.helpers``);
each is stepped by ``services.kernel.core.judge``, the function the service's writer calls for
every submission (it wraps the payload in a ``KernelInput``, steps the Rust kernel and builds the
``LogRecord`` from its outcome and post-state). Records then go to ``Journal.append`` in batches of
``APPEND_BATCH`` with fsync off: the journal is set-up, not a figure, and submitting through the
writer's queue (``KernelCore.submit``: a commit every few records) measured four times slower.
The build time is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import pink_kernel
from bench.kernel_service.settings import SNAPSHOT_TAIL, TRACEPARENT, BenchError
from services.common.proto import kernel_input_pb2, outcome_pb2, types_pb2
from services.kernel.config import KernelSettings
from services.kernel.core import Committed, Payload, judge
from services.kernel.journal import Journal
from services.kernel.recovery import pin_config, recover
from tests.kernel.helpers import (
    BASE_TIME_NS,
    BTC,
    ETH,
    accepted,
    dec,
    enter,
    exit_intent,
    fill,
    instrument_update,
    mark_price,
    timestamp,
)
from tests.kernel_service.conftest import ManualClock

#: Intents and venue events carry a trace context, as they do in the service; marks and timers do not.
TRACE: Final = {"traceparent": TRACEPARENT}
#: A Timer after every that many accepted inputs.
TIMER_EVERY: Final = 64
#: Kernel time between two inputs.
INPUT_SECONDS: Final = 0.001
#: Records per ``Journal.append`` while building.
APPEND_BATCH: Final = 8192


@dataclass(frozen=True)
class ReplayJournal:
    records: int
    journal_bytes: int
    segments: int
    build_seconds: float
    snapshot_sequence: int
    snapshot: bytes = field(repr=False)
    state_hash: str


class TradingLoop:
    """Kernel inputs of a trading loop over every slot, in two waves, stepped as the writer steps them.

    Wave 1: ENTER (MARKET) on every slot, each order's ack and fill from the venue and a mark
    price of its symbol; wave 2: the same with EXIT. A Timer after every ``TIMER_EVERY``
    journaled records. The serialized records wait for :meth:`take_records`.
    """

    def __init__(self, kernel: pink_kernel.Kernel, kernel_id: str, clock: ManualClock, slots: int) -> None:
        self._kernel = kernel
        self._kernel_id = kernel_id
        self._clock = clock
        self._slots = slots
        self._inputs = 0
        self._orders = 0
        self._records: list[tuple[int, bytes]] = []
        self.journal_bytes = 0

    def take_records(self) -> list[tuple[int, bytes]]:
        """The (sequence, LogRecord bytes) of the records stepped since the last call."""
        records, self._records = self._records, []
        return records

    def _step(self, payload: Payload, *, traced: bool) -> Committed:
        """Steps one input at the next millisecond, as the writer does (``judge``); keeps its record."""
        self._clock.advance(INPUT_SECONDS)
        committed = judge(self._kernel, self._kernel_id, payload, clock=self._clock, trace=TRACE if traced else {})
        if committed.record is not None:
            data = committed.record.SerializeToString()
            self._records.append((committed.record.sequence, data))
            self.journal_bytes += len(data)
            self._inputs += 1
            if self._inputs % TIMER_EVERY == 0:
                # Journaled when the kernel accepts it, like the service's timer; a refusal changes nothing.
                self._step(kernel_input_pb2.Timer(), traced=False)
        return committed

    def _accepted(self, payload: Payload, *, traced: bool = True) -> outcome_pb2.Outcome:
        committed = self._step(payload, traced=traced)
        outcome = committed.outcome
        if not committed.accepted:
            code = outcome_pb2.DiagnosticCode.Name(outcome.code)
            raise BenchError(f"an input of the trading loop was refused: {code} {outcome.message}")
        return outcome

    def instruments(self) -> None:
        self._accepted(instrument_update())

    def _order_events(self, outcome: outcome_pb2.Outcome, symbol: str, price: str) -> None:
        """The venue's ack and fill of the order an intent placed (fee 5 bp in USDT)."""
        places = [command.place_order for command in outcome.commands if command.HasField("place_order")]
        if len(places) != 1:
            raise BenchError(f"an intent of the trading loop placed {len(places)} orders: {outcome}")
        cid, quantity = places[0].client_order_id, places[0].quantity.value
        self._orders += 1
        venue_order_id, now = f"v{self._orders}", self._clock.now_ns
        ack = accepted(cid, f"ack-{cid}", venue_order_id=venue_order_id, time_ns=now)
        ack.symbol = symbol
        self._accepted(ack)
        fee = Decimal(quantity) * Decimal(price) * Decimal("0.0005")
        done = fill(
            cid, f"fill-{cid}-1", quantity=quantity, price=price, cumulative=quantity, fee=f"{fee:f}", time_ns=now
        )
        done.venue_order_id, done.symbol = venue_order_id, symbol
        done.average_price.CopyFrom(dec(price))
        self._accepted(done)

    def cycle(self, n: int) -> None:
        """One ENTER wave and one EXIT wave over every slot (prices move a little each cycle)."""
        for wave in ("enter", "exit"):
            for slot in range(self._slots):
                btc = slot % 2 == 0
                symbol = BTC if btc else ETH
                step = (n * 7 + slot) % 200
                price = f"{50_000 + step / 10:.1f}" if btc else f"{2_500 + step / 100:.2f}"
                intent_id = f"{wave}-{n}-{slot}"
                if wave == "enter":
                    side = types_pb2.SIDE_LONG if (n + slot) % 3 else types_pb2.SIDE_SHORT
                    size = "0.010" if btc else "0.50"
                    intent = enter(
                        intent_id, slot, symbol=symbol, side=side, size=size, leverage="5", reference_price=price
                    )
                else:
                    intent = exit_intent(intent_id, slot)
                self._order_events(self._accepted(intent), symbol, price)
                mark = mark_price(symbol, price)
                mark.exchange_time.CopyFrom(timestamp(self._clock.now_ns))
                self._accepted(mark, traced=False)


async def build_journal(settings: KernelSettings, target: int) -> ReplayJournal:
    """At least ``target`` records of the trading loop in ``settings.data_dir``, ending with every slot free.

    The kernel's snapshot is taken at the first cycle's end at or after ``target - SNAPSHOT_TAIL``.
    """
    began = time.perf_counter()
    await pin_config(settings.data_dir, settings.kernel_config())
    clock = ManualClock(BASE_TIME_NS)
    snapshot_at, snapshot = max(1, target - SNAPSHOT_TAIL), b""
    journal = await Journal.open(settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=False)
    try:
        kernel = (await recover(journal, settings.kernel_config())).kernel
        loop = TradingLoop(kernel, settings.kernel_id, clock, settings.slot_count)
        loop.instruments()
        n = 0
        while kernel.last_sequence < target:
            loop.cycle(n)
            n += 1
            if not snapshot and kernel.last_sequence >= snapshot_at:
                snapshot_at, snapshot = kernel.last_sequence, kernel.snapshot()
            if kernel.last_sequence - journal.last_sequence >= APPEND_BATCH or kernel.last_sequence >= target:
                await journal.append(loop.take_records())
        kernel.check_invariants()
        if journal.last_sequence != kernel.last_sequence:
            raise BenchError(f"the journal ends at {journal.last_sequence}, the kernel at {kernel.last_sequence}")
    finally:
        await journal.close()
    reopened = await Journal.open(settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=False)
    segments = reopened.recovery.segments
    await reopened.close()
    return ReplayJournal(
        records=kernel.last_sequence,
        journal_bytes=loop.journal_bytes,
        segments=segments,
        build_seconds=time.perf_counter() - began,
        snapshot_sequence=snapshot_at,
        snapshot=snapshot,
        state_hash=kernel.state_hash(),
    )
