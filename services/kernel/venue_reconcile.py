"""A reconcile: one ``pink.v1.Reconcile`` from the kernel's slots and the venue's truth.

A pure function (:func:`build_reconcile`), so every attribution rule is tested on its own;
the venue link fetches the venue's truth, calls it, submits the result and logs the findings.

The venue is read while the kernel keeps going (at run time), so every truth carries the slot
version it was built against and the balance the capital it was compared with: the kernel
refuses the whole reconcile (VERSION_CONFLICT) if anything moved in between, and the link
builds it again later. The balance is only compared while no order works: a fill the venue has
booked but whose report has not reached the kernel yet would otherwise be counted twice (once
as an adjustment, once when its report arrives).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final

from services.common.proto import kernel_input_pb2, slot_pb2, types_pb2, venue_service_pb2

__all__ = ["Finding", "build_reconcile"]

_FREE_STATES: Final = frozenset({slot_pb2.SLOT_STATE_IDLE, slot_pb2.SLOT_STATE_CLOSED})
_OPEN_STATUSES: Final = frozenset(
    {slot_pb2.ORDER_STATUS_PENDING_NEW, slot_pb2.ORDER_STATUS_ACCEPTED, slot_pb2.ORDER_STATUS_PARTIALLY_FILLED}
)


@dataclass(frozen=True)
class Finding:
    """Something :func:`build_reconcile` noticed, to be logged at ``level`` (a ``logging`` level)."""

    level: int
    event: str
    fields: Mapping[str, object] = field(default_factory=dict)


def _dec(value: Decimal) -> types_pb2.Decimal:
    return types_pb2.Decimal(value=f"{value:f}")


def _parse(value: types_pb2.Decimal) -> Decimal | None:
    """The exact value of a pink.v1.Decimal; None when it is empty or not a number."""
    if not value.value:
        return None
    try:
        parsed = Decimal(value.value)
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def _signed(side: types_pb2.Side.ValueType, size: Decimal) -> Decimal:
    return -size if side == types_pb2.SIDE_SHORT else size


def _open_order_truth(order: venue_service_pb2.VenueOrder) -> kernel_input_pb2.OrderTruth:
    truth = kernel_input_pb2.OrderTruth(
        client_order_id=order.client_order_id, venue_order_id=order.venue_order_id, status=order.status
    )
    if order.HasField("filled_quantity"):
        truth.filled_quantity.CopyFrom(order.filled_quantity)
    return truth


def _position_truth(slot_id: int, position: venue_service_pb2.VenuePosition) -> kernel_input_pb2.SlotTruth:
    return kernel_input_pb2.SlotTruth(
        slot_id=slot_id,
        symbol=position.symbol,
        side=position.side,
        position_size=position.size,
        entry_price=position.entry_price,
    )


def _valid_position(position: venue_service_pb2.VenuePosition) -> bool:
    size, entry = _parse(position.size), _parse(position.entry_price)
    return (
        bool(position.symbol)
        and position.side in (types_pb2.SIDE_LONG, types_pb2.SIDE_SHORT)
        and size is not None
        and size > 0
        and entry is not None
        and entry > 0
    )


def _slot_signed(slot: slot_pb2.Slot) -> Decimal:
    return _signed(slot.side, _parse(slot.position_size) or Decimal(0))


def build_reconcile(
    reconcile_id: str,
    slots: Mapping[int, slot_pb2.Slot],
    open_orders: Sequence[venue_service_pb2.VenueOrder],
    positions: Sequence[venue_service_pb2.VenuePosition],
    balance: venue_service_pb2.GetBalanceResponse | None,
    *,
    capital: types_pb2.Decimal | None = None,
) -> tuple[kernel_input_pb2.Reconcile, list[Finding]]:
    """One ``pink.v1.Reconcile`` from the kernel's slots and the venue's truth, and what to log.

    * A slot with a working order: ``SlotTruth(position_size 0, open_order)`` with the venue's
      listing of that client order id when it lists it as open, else without ``open_order``
      (the kernel then queries the order).
    * A slot with a position and no working order, the only slot holding its symbol: the
      venue's position of that symbol (the one on the slot's side if the venue lists both
      sides), or size 0 when the venue has none (the kernel closes the trade).
    * Several slots holding one symbol (any non-free state): the position cannot be attributed
      to one of them; the net sums are compared (ERROR if they differ) and those slots are left
      out. A single slot holding a symbol while an order works is compared too (WARNING if it
      differs: the order's fills are still to come) and gets no position truth.
    * A venue position on a symbol no slot holds: adopted into the lowest free (IDLE/CLOSED)
      slot (WARNING), or ERROR when no slot is free.
    * An open order with a client order id that is no slot's working order: WARNING (foreign,
      not adopted).
    * ``wallet_balance`` from GetBalance (the kernel books a difference as an adjustment), only
      when no slot has a working order, with ``expected_capital`` = ``capital`` (the kernel's
      capital the slots were read with) when given.
    * Every truth carries ``expected_version``: the version of its slot in ``slots``.
    """
    builder = _ReconcileBuilder(slots)
    builder.working_orders({order.client_order_id: order for order in open_orders if order.client_order_id})
    venue_positions = builder.valid_positions(positions)
    builder.held_positions(venue_positions)
    builder.adoptions(venue_positions)
    builder.foreign_orders(open_orders)
    for truth in builder.truths:
        truth.expected_version = slots[truth.slot_id].version
    reconcile = kernel_input_pb2.Reconcile(reconcile_id=reconcile_id, slots=builder.truths)
    if balance is None or not balance.HasField("wallet_balance") or not balance.wallet_balance.value:
        builder.note(logging.WARNING, "reconcile_without_balance")
    elif builder.working:
        builder.note(
            logging.INFO,
            "reconcile_balance_deferred",
            venue_balance=balance.wallet_balance.value,
            kernel_capital=capital.value if capital is not None else None,
            working_orders=sorted(builder.working),
            action="compared once no order works (fills in flight would count twice)",
        )
    else:
        reconcile.wallet_balance.CopyFrom(balance.wallet_balance)
        if capital is not None and capital.value:
            reconcile.expected_capital.CopyFrom(capital)
    return reconcile, builder.findings


class _ReconcileBuilder:
    """The steps of :func:`build_reconcile`, in order."""

    def __init__(self, slots: Mapping[int, slot_pb2.Slot]) -> None:
        self.slots = slots
        self.truths: list[kernel_input_pb2.SlotTruth] = []
        self.findings: list[Finding] = []
        #: Client order ids of the slots' working orders.
        self.working: set[str] = set()
        #: Non-free slots by symbol, in slot order.
        self.holders: dict[str, list[slot_pb2.Slot]] = defaultdict(list)
        for slot_id in sorted(slots):
            slot = slots[slot_id]
            if slot.state not in _FREE_STATES and slot.symbol:
                self.holders[slot.symbol].append(slot)

    def note(self, level: int, event: str, **fields: object) -> None:
        self.findings.append(Finding(level, event, fields))

    def working_orders(self, listed: Mapping[str, venue_service_pb2.VenueOrder]) -> None:
        for slot_id in sorted(self.slots):
            slot = self.slots[slot_id]
            if slot.state in _FREE_STATES or not slot.HasField("active_order"):
                continue
            order = slot.active_order
            self.working.add(order.client_order_id)
            truth = kernel_input_pb2.SlotTruth(slot_id=slot_id, symbol=order.symbol, position_size=_dec(Decimal(0)))
            venue_order = listed.get(order.client_order_id)
            if venue_order is not None and venue_order.status in _OPEN_STATUSES:
                truth.open_order.CopyFrom(_open_order_truth(venue_order))
                truth.symbol = venue_order.symbol or order.symbol
            else:
                self.note(
                    logging.INFO,
                    "reconcile_order_not_open_at_venue",
                    slot_id=slot_id,
                    client_order_id=order.client_order_id,
                    action="the kernel queries it",
                )
            self.truths.append(truth)

    def valid_positions(
        self, positions: Sequence[venue_service_pb2.VenuePosition]
    ) -> dict[str, list[venue_service_pb2.VenuePosition]]:
        by_symbol: dict[str, list[venue_service_pb2.VenuePosition]] = defaultdict(list)
        for position in positions:
            if _valid_position(position):
                by_symbol[position.symbol].append(position)
            else:
                self.note(
                    logging.ERROR,
                    "reconcile_venue_position_invalid",
                    symbol=position.symbol,
                    side=types_pb2.Side.Name(position.side),
                    size=position.size.value,
                    entry_price=position.entry_price.value,
                    action="left out of the reconcile",
                )
        return by_symbol

    def held_positions(self, venue_positions: Mapping[str, list[venue_service_pb2.VenuePosition]]) -> None:
        for symbol, group in self.holders.items():
            venue = venue_positions.get(symbol, [])
            venue_net = sum((_signed(p.side, _parse(p.size) or Decimal(0)) for p in venue), Decimal(0))
            kernel_net = sum((_slot_signed(s) for s in group), Decimal(0))
            slot = group[0]
            if len(group) > 1:
                if kernel_net != venue_net:
                    self.note(
                        logging.ERROR,
                        "reconcile_cannot_attribute_position",
                        symbol=symbol,
                        slot_ids=[s.slot_id for s in group],
                        kernel_net=kernel_net,
                        venue_net=venue_net,
                        action="these slots' positions are left out of the reconcile",
                    )
            elif slot.HasField("active_order") or slot.state != slot_pb2.SLOT_STATE_POSITION_OPEN:
                if kernel_net != venue_net:
                    self.note(
                        logging.WARNING,
                        "reconcile_position_differs_while_order_works",
                        slot_id=slot.slot_id,
                        symbol=symbol,
                        kernel_net=kernel_net,
                        venue_net=venue_net,
                        action="the order's fills will tell",
                    )
            else:
                self.open_position(slot, venue)

    def open_position(self, slot: slot_pb2.Slot, venue: Sequence[venue_service_pb2.VenuePosition]) -> None:
        """The truth of the only slot holding its symbol, with a position and no working order."""
        same_side = [p for p in venue if p.side == slot.side]
        chosen = same_side[0] if same_side else (venue[0] if venue else None)
        for other in venue:
            if other is not chosen:
                self.note(
                    logging.ERROR,
                    "reconcile_cannot_attribute_position",
                    symbol=slot.symbol,
                    side=types_pb2.Side.Name(other.side),
                    size=other.size.value,
                    slot_ids=[slot.slot_id],
                    action="this venue position is left out of the reconcile",
                )
        if chosen is None:
            self.note(
                logging.WARNING,
                "reconcile_venue_has_no_position",
                slot_id=slot.slot_id,
                symbol=slot.symbol,
                kernel_size=slot.position_size.value,
                action="the kernel closes the trade",
            )
            self.truths.append(kernel_input_pb2.SlotTruth(slot_id=slot.slot_id, position_size=_dec(Decimal(0))))
        else:
            self.truths.append(_position_truth(slot.slot_id, chosen))

    def adoptions(self, venue_positions: Mapping[str, list[venue_service_pb2.VenuePosition]]) -> None:
        free = [slot_id for slot_id in sorted(self.slots) if self.slots[slot_id].state in _FREE_STATES]
        for symbol in sorted(venue_positions):
            if symbol in self.holders:
                continue
            for position in venue_positions[symbol]:
                fields: dict[str, object] = {
                    "symbol": symbol,
                    "side": types_pb2.Side.Name(position.side),
                    "size": position.size.value,
                    "entry_price": position.entry_price.value,
                }
                if not free:
                    self.note(logging.ERROR, "reconcile_no_free_slot_for_venue_position", **fields)
                    continue
                slot_id = free.pop(0)
                self.truths.append(_position_truth(slot_id, position))
                self.note(logging.WARNING, "reconcile_adopting_venue_position", slot_id=slot_id, **fields)

    def foreign_orders(self, open_orders: Sequence[venue_service_pb2.VenueOrder]) -> None:
        for venue_order in open_orders:
            if venue_order.client_order_id not in self.working:
                self.note(
                    logging.WARNING,
                    "reconcile_foreign_order",
                    client_order_id=venue_order.client_order_id,
                    venue_order_id=venue_order.venue_order_id,
                    symbol=venue_order.symbol,
                    action="not adopted",
                )


# ---------------------------------------------------------------------------------- the link
