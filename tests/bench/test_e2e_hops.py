"""bench.e2e.hops: an intent's latency split by hop from the kernel's log records."""

from __future__ import annotations

import pytest

from bench.e2e.hops import HOPS, HopError, Sent, breakdown
from services.common.proto import command_pb2, intent_pb2, log_pb2, outcome_pb2, venue_event_pb2

MS = 1_000_000


def _intent_record(sequence: int, intent_id: str, cid: str, at_ns: int) -> log_pb2.LogRecord:
    record = log_pb2.LogRecord(sequence=sequence)
    record.input.intent.CopyFrom(intent_pb2.Intent(intent_id=intent_id))
    record.outcome.CopyFrom(
        outcome_pb2.Outcome(
            accepted=True, commands=[command_pb2.Command(place_order=command_pb2.PlaceOrder(client_order_id=cid))]
        )
    )
    record.record_time.FromNanoseconds(at_ns)
    return record


def _event_record(
    sequence: int, cid: str, kind: venue_event_pb2.VenueEventKind.ValueType, times: tuple[int, int, int]
) -> log_pb2.LogRecord:
    exchange, received, recorded = times
    record = log_pb2.LogRecord(sequence=sequence)
    event = record.input.venue_event
    event.client_order_id, event.kind = cid, kind
    event.exchange_time.FromNanoseconds(exchange)
    event.receive_time.FromNanoseconds(received)
    record.outcome.accepted = True
    record.record_time.FromNanoseconds(recorded)
    return record


def test_hops_follow_the_records_and_add_up_to_the_client_latency() -> None:
    t = 1_700_000_000_000 * MS
    records = [
        _intent_record(1, "i1", "c1", t + 1 * MS),
        _event_record(2, "c1", venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, (t + 3 * MS, t + 4 * MS, t + 5 * MS)),
        _event_record(3, "c1", venue_event_pb2.VENUE_EVENT_KIND_FILL, (t + 4 * MS, t + 6 * MS, t + 9 * MS)),
        # A later copy of the same fill (another path) does not move the breakdown.
        _event_record(4, "c1", venue_event_pb2.VENUE_EVENT_KIND_FILL, (t + 4 * MS, t + 20 * MS, t + 21 * MS)),
    ]
    (row,) = breakdown([Sent("i1", t, t + 12 * MS)], records)
    assert [row[name] for name in HOPS] == [1000.0, 3000.0, 2000.0, 3000.0, 3000.0]
    assert row["total"] == sum(row[name] for name in HOPS) == 12000.0
    assert row["fill_streamed"] == 0.0, "no stream position: the fill came in the PlaceOrder answer"


def test_an_intent_without_its_fill_in_the_log_is_an_error_not_a_figure() -> None:
    t = 1_700_000_000_000 * MS
    records = [
        _intent_record(1, "i1", "c1", t + MS),
        _event_record(2, "c1", venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, (t, t, t + 2 * MS)),
    ]
    with pytest.raises(HopError, match="no FILL"):
        breakdown([Sent("i1", t, t + 5 * MS)], records)
    with pytest.raises(HopError, match="no accepted record"):
        breakdown([Sent("i2", t, t + 5 * MS)], records)
