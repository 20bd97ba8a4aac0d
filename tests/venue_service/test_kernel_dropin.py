"""The real kernel service on the real venue service on the simulator: a drop-in for the double. [I11, I19, O2]"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.proto import intent_pb2, kernel_service_pb2, slot_pb2, types_pb2
from tests.kernel_service.conftest import make_settings
from tests.kernel_service.test_kernel_service import TIMEOUT, Running, enter, running_service, wait_done
from tests.venue_service.harness import BTC, Harness, Sim, venue_service

pytestmark = pytest.mark.anyio


def limit_entry(intent_id: str, slot: int, price: str) -> intent_pb2.Intent:
    intent = enter(intent_id, slot, size="0.001")
    intent.order_type = types_pb2.ORDER_TYPE_LIMIT
    intent.limit_price.value = price
    intent.time_in_force = types_pb2.TIME_IN_FORCE_GTC
    intent.ClearField("reference_price")
    return intent


async def test_a_kernel_trades_through_the_venue_service(tmp_path: Path, sim: Sim) -> None:
    async with venue_service(sim) as venue:
        settings = make_settings(tmp_path, venue_address=f"127.0.0.1:{venue.port}", timer_seconds=0.2)
        async with running_service(settings) as kernel:
            market = enter("i-1", 0, size="0.001")
            market.reference_price.value = "60000"
            response = await kernel.stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=market, wait=wait_done()), timeout=TIMEOUT
            )
            assert response.outcome.accepted, response.outcome
            assert response.wait_satisfied
            assert response.slot.state == slot_pb2.SLOT_STATE_POSITION_OPEN
            (order,) = sim.orders()  # one intent, one order
            assert order.client_id.startswith("pk-")
            assert order.status == "FILLED"


async def test_a_kernel_restart_misses_no_fill_that_happened_while_it_was_down(tmp_path: Path, sim: Sim) -> None:
    async with venue_service(sim) as venue:
        settings = make_settings(tmp_path, venue_address=f"127.0.0.1:{venue.port}", timer_seconds=0.2)
        async with running_service(settings) as kernel:
            response = await kernel.stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=limit_entry("i-2", 1, "59000.0")), timeout=TIMEOUT
            )
            assert response.outcome.accepted, response.outcome
            (order,) = await _until_working(venue)
        await sim.price(BTC, "58000.0")  # fills while the kernel is down
        await venue.wait_for(lambda: "FILL" in venue.kinds(order))
        async with running_service(settings) as kernel:
            slot = await _slot_state(kernel, 1, slot_pb2.SLOT_STATE_POSITION_OPEN)
            assert slot.state == slot_pb2.SLOT_STATE_POSITION_OPEN


async def _until_working(venue: Harness) -> list[str]:
    await venue.wait_for(lambda: any(facts.accepted for facts in venue.adapter.executions.working_orders()))
    return [facts.client_order_id for facts in venue.adapter.executions.working_orders()]


async def _slot_state(kernel: Running, slot_id: int, state: slot_pb2.SlotState.ValueType) -> slot_pb2.Slot:
    watch = kernel.stub.WatchSlots(kernel_service_pb2.WatchSlotsRequest(slot_ids=[slot_id]), timeout=TIMEOUT)
    try:
        async for update in watch:
            for slot in update.view.slots:
                if slot.slot_id == slot_id and slot.state == state:
                    return slot
    finally:
        watch.cancel()
    raise AssertionError("the watch ended")


async def test_slots_converge_to_the_venue_truth_through_its_faults(tmp_path: Path, sim: Sim) -> None:
    async with venue_service(sim) as venue:
        settings = make_settings(tmp_path, venue_address=f"127.0.0.1:{venue.port}", timer_seconds=0.2)
        async with running_service(settings) as kernel:
            # The placement's answer is lost after BingX executed it: one order, the slot opens.
            await sim.faults(drop_after_execute_count=1)
            market = enter("i-3", 2, size="0.001")
            market.reference_price.value = "60000"
            response = await kernel.stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=market, wait=wait_done()), timeout=TIMEOUT
            )
            assert response.outcome.accepted, response.outcome
            assert (await _slot_state(kernel, 2, slot_pb2.SLOT_STATE_POSITION_OPEN)).slot_id == 2
            assert len(sim.orders()) == 1
            # A resting entry fills while the user stream is down: the gap-fill brings the fill.
            await kernel.stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=limit_entry("i-4", 3, "59000.0")), timeout=TIMEOUT
            )
            await venue.wait_for(lambda: len(venue.adapter.executions.working_orders()) == 1)
            await sim.control("ws/disconnect", {"user": True, "market": False, "abort": True})
            await sim.price(BTC, "58000.0")
            assert (await _slot_state(kernel, 3, slot_pb2.SLOT_STATE_POSITION_OPEN)).slot_id == 3
            assert len(sim.orders()) == 2
