//! Venue events: routed by order id only, deduplicated for the whole life of
//! the order, applied with exact money, never able to revive a finished order.

use rustc_hash::FxHashMap;

use crate::fill::{plan_fill, FillOn, FillPlan};
use crate::input::VenueEvent;
use crate::kernel::{push_ledger, rearm, shift, touch, Change, Ctx, Kernel, Origin};
use crate::model::{is_free, key, order_id_text, order_number, same_id, Order, OrderLoc};
use crate::num;
use crate::output::{Anomaly, Reject, Step};
use crate::pb::{
    AnomalyKind, DiagnosticCode, LedgerEntryKind, OrderPurpose, OrderStatus, QueryReason, SlotState, TransitionCause,
    VenueEventKind,
};
use crate::text::Id;

#[cold]
#[inline(never)]
fn ovf(what: &str) -> Reject {
    Reject::overflow(what)
}

/// What every applied event records on its order.
#[inline]
fn note(order: &mut Order, venue_ids: &mut FxHashMap<Id, u64>, event: &VenueEvent) {
    order.seen_event_ids.insert(event.event_id.clone());
    order.last_exchange_time = Some(event.exchange_time);
    if order.venue_order_id.is_none() {
        if let Some(venue_id) = &event.venue_order_id {
            order.venue_order_id = Some(venue_id.clone());
            venue_ids.insert(venue_id.clone(), order.number);
        }
    }
}

/// The overfill and fill-gap anomalies of an applied fill.
#[cold]
#[inline(never)]
fn fill_anomalies(
    cx: &mut Ctx<'_>,
    slot_id: u32,
    trade_id: Option<&Id>,
    cid: &Id,
    event: &VenueEvent,
    plan: &FillPlan,
    gap: bool,
) {
    if !plan.excess.is_zero() {
        cx.out.anomalies.push(
            Anomaly::new(
                AnomalyKind::Overfill,
                format!("{cid} filled {} beyond its quantity; the excess is not booked", num::to_text(plan.excess)),
            )
            .slot(slot_id, trade_id)
            .order(cid)
            .event(&event.event_id)
            .reconcile(),
        );
    }
    if gap {
        cx.out.anomalies.push(
            Anomaly::new(
                AnomalyKind::FillGap,
                format!(
                    "venue reports {} filled for {cid}, {} applied so far",
                    num::to_text(plan.venue_cumulative),
                    num::to_text(plan.filled)
                ),
            )
            .slot(slot_id, trade_id)
            .order(cid),
        );
    }
}

impl Kernel {
    pub(crate) fn on_venue_event(&mut self, cx: &mut Ctx<'_>, event: VenueEvent) -> Step {
        let event = &event;
        let (loc, venue_owner, venue_id_matches) = self.route(event)?;
        let slot_id = match loc {
            OrderLoc::Live(slot_id) => slot_id,
            OrderLoc::Retired(number) => return Err(self.retired_event(number, event)),
        };
        let index = self.slot_index(slot_id)?;
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let order = slot.order.as_ref().ok_or_else(|| {
            Kernel::conflict(
                AnomalyKind::StateConflict,
                DiagnosticCode::StateConflict,
                format!("order index points at slot {slot_id} which has no active order"),
                true,
            )
        })?;
        if let Some(symbol) = &event.symbol {
            if !same_id(symbol, &order.symbol) {
                return Err(Kernel::conflict(
                    AnomalyKind::OrderMismatch,
                    DiagnosticCode::OrderMismatch,
                    format!(
                        "event symbol {symbol} does not match order {} ({})",
                        order.client_order_id(&self.cfg.kernel_id),
                        order.symbol
                    ),
                    true,
                ));
            }
        }
        if let (false, Some(theirs), Some(ours)) = (venue_id_matches, &event.venue_order_id, &order.venue_order_id) {
            if theirs != ours {
                return Err(Kernel::conflict(
                    AnomalyKind::OrderMismatch,
                    DiagnosticCode::OrderMismatch,
                    format!(
                        "event venue order id {theirs} does not match order {} ({ours})",
                        order.client_order_id(&self.cfg.kernel_id)
                    ),
                    true,
                ));
            }
        }
        if order.seen_event_ids.contains(&event.event_id) {
            let cid = order.client_order_id(&self.cfg.kernel_id);
            let message = format!("venue event {} was already applied to {cid}", event.event_id);
            let anomaly = Anomaly::new(AnomalyKind::DuplicateEvent, message.clone())
                .slot(slot.id, slot.trade_id.as_ref())
                .order(&cid)
                .event(&event.event_id);
            return Err(Reject::new(DiagnosticCode::DuplicateEvent, message).with(anomaly));
        }
        // Every handler first checks that the venue id it would learn is not
        // another order's (`check_venue_id`); `route` already looked the id up.
        let venue_id_taken = venue_owner.is_some_and(|owner| owner != order.number);
        if venue_id_taken && event.kind != VenueEventKind::Unspecified {
            self.check_venue_id(index, event)?;
        }
        match event.kind {
            VenueEventKind::OrderAccepted => self.on_accepted(cx, index, event),
            VenueEventKind::OrderRejected => self.on_rejected(cx, index, event),
            VenueEventKind::PartialFill | VenueEventKind::Fill => self.on_fill(cx, index, event),
            VenueEventKind::Cancelled | VenueEventKind::Expired => self.on_final(cx, index, event),
            VenueEventKind::CancelRejected => self.on_cancel_rejected(cx, index, event),
            VenueEventKind::Unknown => self.on_unknown_status(cx, index, event),
            VenueEventKind::Unspecified => Err(Reject::field("venue_event.kind", "is required")),
        }
    }

    /// Finds the order an event is about, by client order id or venue order id.
    /// Also returns the current owner of the event's venue order id, if any,
    /// and whether the event's venue id is known to be the live order's.
    fn route(&self, event: &VenueEvent) -> Step<(OrderLoc, Option<u64>, bool)> {
        let unknown = |what: &str| {
            let message = format!("no order with {what}: the event is not applied");
            let anomaly = Anomaly::new(AnomalyKind::UnknownOrder, message.clone()).event(&event.event_id).reconcile();
            Reject::new(DiagnosticCode::UnknownOrder, message).with(anomaly)
        };
        match &event.client_order_id {
            Some(cid) => {
                // Text that is not "<kernel_id>-<number>" names no order of this kernel.
                let number = order_number(&self.cfg.kernel_id, cid);
                let loc = number.and_then(|n| self.orders.get(&n)).copied();
                // A live order that already knows the event's venue id: that id
                // is indexed to it (an invariant), so its lookup is skipped.
                if let (Some(OrderLoc::Live(slot_id)), Some(venue_id)) = (loc, &event.venue_order_id) {
                    if let Some(order) = self.slots.get(slot_id as usize).and_then(|s| s.order.as_ref()) {
                        if order.venue_order_id.as_ref().is_some_and(|ours| same_id(ours, venue_id)) {
                            return Ok((OrderLoc::Live(slot_id), Some(order.number), true));
                        }
                    }
                }
                let by_venue = event.venue_order_id.as_ref().and_then(|v| self.venue_ids.get(key(v))).copied();
                if let Some(mapped) = by_venue {
                    if Some(mapped) != number {
                        let mapped = order_id_text(&self.cfg.kernel_id, mapped);
                        return Err(Kernel::conflict(
                            AnomalyKind::OrderMismatch,
                            DiagnosticCode::OrderMismatch,
                            format!("venue order id belongs to {mapped}, the event names {cid}"),
                            true,
                        ));
                    }
                }
                let loc = loc.ok_or_else(|| unknown(&format!("client order id {cid}")))?;
                Ok((loc, by_venue, false))
            }
            None => {
                let by_venue = event.venue_order_id.as_ref().and_then(|v| self.venue_ids.get(key(v))).copied();
                let venue_id = event.venue_order_id.as_deref().unwrap_or("");
                let loc = by_venue
                    .and_then(|number| self.orders.get(&number).copied())
                    .ok_or_else(|| unknown(&format!("venue order id {venue_id}")))?;
                Ok((loc, by_venue, false))
            }
        }
    }

    /// An event about a finished order: never applied, always explained.
    fn retired_event(&self, number: u64, event: &VenueEvent) -> Reject {
        let Some(retired) = self.retired_at(number) else {
            return Reject::new(DiagnosticCode::UnknownOrder, "retired order is no longer remembered");
        };
        let cid = retired.client_order_id(&self.cfg.kernel_id);
        let base = |kind: AnomalyKind, message: String| {
            Anomaly::new(kind, message).slot(retired.slot, retired.trade_id.as_ref()).order(&cid).event(&event.event_id)
        };
        if retired.seen_event_ids.contains(&event.event_id) {
            let message = format!("venue event {} was already applied to {cid}", event.event_id);
            return Reject::new(DiagnosticCode::DuplicateEvent, message.clone())
                .with(base(AnomalyKind::DuplicateEvent, message));
        }
        if matches!(event.kind, VenueEventKind::PartialFill | VenueEventKind::Fill) {
            let slot = self.slots.get(retired.slot as usize);
            let trade_live = slot.is_some_and(|s| s.trade_id == retired.trade_id && !is_free(s.state));
            if trade_live {
                let message = format!(
                    "fill {} for order {} which already finished ({}); not booked",
                    event.event_id,
                    cid,
                    retired.status.as_str_name()
                );
                return Reject::new(DiagnosticCode::FillAfterTerminal, message.clone())
                    .with(base(AnomalyKind::FillAfterTerminal, message).reconcile());
            }
            let message = format!(
                "late fill {} for order {} of trade {} which is over; not booked",
                event.event_id,
                cid,
                retired.trade_id.as_deref().unwrap_or("-")
            );
            return Reject::new(DiagnosticCode::LateFill, message.clone())
                .with(base(AnomalyKind::LateFill, message).reconcile());
        }
        let message = format!(
            "{} for order {} which already finished ({})",
            event.kind.as_str_name(),
            cid,
            retired.status.as_str_name()
        );
        Reject::new(DiagnosticCode::StaleEvent, message.clone()).with(base(AnomalyKind::StaleEvent, message))
    }

    /// Commits what every applied event records on its order.
    fn note_event(&mut self, index: usize, event: &VenueEvent) {
        let Kernel { slots, venue_ids, .. } = self;
        if let Some(order) = slots.get_mut(index).and_then(|s| s.order.as_mut()) {
            note(order, venue_ids, event);
        }
    }

    /// The venue id would be learned and it is taken by another order.
    fn check_venue_id(&self, index: usize, event: &VenueEvent) -> Step {
        let (Some(venue_id), Some(order)) =
            (&event.venue_order_id, self.slots.get(index).and_then(|s| s.order.as_ref()))
        else {
            return Ok(());
        };
        match self.venue_ids.get(key(venue_id)) {
            Some(&owner) if owner != order.number => Err(Kernel::conflict(
                AnomalyKind::OrderMismatch,
                DiagnosticCode::OrderMismatch,
                format!("venue order id {venue_id} already belongs to {}", order_id_text(&self.cfg.kernel_id, owner)),
                true,
            )),
            _ => Ok(()),
        }
    }

    fn waiting_state(purpose: OrderPurpose, pending: bool) -> SlotState {
        match (purpose, pending) {
            (OrderPurpose::Exit, true) => SlotState::ExitPending,
            (OrderPurpose::Exit, false) => SlotState::ExitWorking,
            (_, true) => SlotState::EntryPending,
            (_, false) => SlotState::EntryWorking,
        }
    }

    fn on_accepted(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let Kernel { slots, account, venue_ids, cfg, .. } = &mut *self;
        let slot = slots.get_mut(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_mut() else { return Ok(()) };
        if order.status != OrderStatus::PendingNew {
            return self.late_ack(cx, index, event);
        }
        note(order, venue_ids, event);
        order.status = OrderStatus::Accepted;
        if matches!(slot.state, SlotState::EntryPending | SlotState::ExitPending) {
            let to = Self::waiting_state(order.purpose, false);
            let number = Some(order.number);
            shift(cx, cfg, account, slot, to, TransitionCause::OrderAccepted, number);
        } else {
            touch(cx, slot);
            rearm(cfg, slot, cx.now);
        }
        Ok(())
    }

    /// An ack for an order that is past PENDING_NEW: stale, unless it
    /// teaches the venue id.
    #[cold]
    fn late_ack(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_ref() else { return Ok(()) };
        let learns_id = order.venue_order_id.is_none() && event.venue_order_id.is_some();
        if !learns_id {
            let cid = order.client_order_id(&self.cfg.kernel_id);
            let message = format!("ack for {cid} which is already {}", order.status.as_str_name());
            let anomaly = Anomaly::new(AnomalyKind::StaleEvent, message.clone())
                .slot(slot.id, slot.trade_id.as_ref())
                .order(&cid)
                .event(&event.event_id);
            return Err(Reject::new(DiagnosticCode::StaleEvent, message).with(anomaly));
        }
        // A late ack still teaches us the venue id.
        self.note_event(index, event);
        self.touch_slot(cx, index);
        Ok(())
    }

    fn on_rejected(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_ref() else { return Ok(()) };
        if !order.fills.filled.is_zero() || !matches!(order.status, OrderStatus::PendingNew | OrderStatus::Accepted) {
            let cid = order.client_order_id(&self.cfg.kernel_id);
            let message = format!(
                "venue rejected {cid} which is {} with {} filled; not applied",
                order.status.as_str_name(),
                num::to_text(order.fills.filled)
            );
            return Err(Reject::new(DiagnosticCode::StateConflict, message.clone()).with(
                Anomaly::new(AnomalyKind::StateConflict, message)
                    .slot(slot.id, slot.trade_id.as_ref())
                    .order(&cid)
                    .event(&event.event_id)
                    .reconcile(),
            ));
        }
        self.note_event(index, event);
        if let Some(order) = self.slots.get_mut(index).and_then(|s| s.order.as_mut()) {
            order.status = OrderStatus::Rejected;
            order.venue_final = true;
        }
        self.resolve_order(cx, index, TransitionCause::OrderRejected);
        Ok(())
    }

    fn on_fill(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let fill = event.fill.ok_or_else(|| Reject::field("venue_event.last_quantity", "is required for fills"))?;
        let cumulative = event
            .cumulative
            .ok_or_else(|| Reject::field("venue_event.cumulative_quantity", "is required for fills"))?;
        let pnl_scale = self.cfg.pnl_scale;
        let Kernel { slots, account, venue_ids, cfg, .. } = &mut *self;
        let slot = slots.get_mut(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_mut() else {
            return Err(Reject::new(DiagnosticCode::StateConflict, "no active order"));
        };
        // Everything is computed (and may refuse) before anything is committed.
        // Filled in place (a returned plan would be copied out of its `Result`).
        let mut plan = FillPlan::default();
        let on = FillOn {
            quantity: order.quantity,
            fills: &order.fills,
            purpose: order.purpose,
            book: &slot.book,
            side: slot.side,
            account,
            pnl_scale,
        };
        plan_fill(&mut plan, on, &fill, cumulative).map_err(ovf)?;
        if plan.applied.is_zero() {
            // Unreachable while live orders are never complete; kept as a loud guard.
            let message = format!("fill for {} beyond its quantity; not booked", order.client_order_id(&cfg.kernel_id));
            return Err(Reject::new(DiagnosticCode::Overfill, message.clone())
                .with(Anomaly::new(AnomalyKind::Overfill, message).slot(slot.id, slot.trade_id.as_ref()).reconcile()));
        }
        let slot_id = slot.id;
        let was_pending = matches!(slot.state, SlotState::EntryPending | SlotState::ExitPending);
        let purpose = order.purpose;
        // Commit: what every event records (`note_event`), then the amounts.
        note(order, venue_ids, event);
        let book = &mut slot.book;
        book.position = plan.position;
        book.cost_basis = plan.cost_basis;
        book.fees = plan.book_fees;
        order.fills.filled = plan.filled;
        order.fills.notional = plan.order_notional;
        order.fills.fees = plan.order_fees;
        order.fills.venue_cumulative = plan.venue_cumulative;
        let final_fill = event.kind == VenueEventKind::Fill;
        if final_fill {
            order.venue_final = true;
        }
        // `order.is_complete()` from the plan: filled reaches the quantity
        // exactly when the fill covers what remained.
        let gap = plan.gap;
        let complete = plan.covers || (order.venue_final && !gap);
        order.status = if complete || final_fill { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
        cx.out.account_changed = true;
        // Both entries of a fill (PnL, fee) name the same trade, order and event.
        let origin = || Origin {
            slot: Some(slot_id),
            trade_id: slot.trade_id.clone(),
            order_number: Some(order.number),
            venue_event_id: Some(event.event_id.clone()),
            symbol: Some(order.symbol.clone()),
        };
        match plan.gross {
            None => {
                book.entry_quantity = plan.side_quantity;
                book.entry_notional = plan.side_notional;
            }
            Some(gross) => {
                book.exit_quantity = plan.side_quantity;
                book.exit_notional = plan.side_notional;
                book.realized_pnl = plan.book_realized;
                book.leg_filled = plan.leg_filled;
                let before = account.capital;
                account.capital = plan.capital_after_pnl;
                account.realized_pnl = plan.account_realized;
                let change = Change { amount: gross, before, after: plan.capital_after_pnl };
                push_ledger(cx, account, LedgerEntryKind::RealizedPnl, change, origin());
            }
        }
        if !fill.fee.is_zero() {
            let before = account.capital;
            account.capital = plan.capital_after_fee;
            account.fees = plan.account_fees;
            let change = Change { amount: num::neg(fill.fee), before, after: plan.capital_after_fee };
            push_ledger(cx, account, LedgerEntryKind::Fee, change, origin());
        }
        if !plan.excess.is_zero() || (gap && !complete) {
            fill_anomalies(
                cx,
                slot_id,
                slot.trade_id.as_ref(),
                &order.client_order_id(&cfg.kernel_id),
                event,
                &plan,
                gap && !complete,
            );
        }
        let venue_final = order.venue_final;
        let cause = if final_fill { TransitionCause::Fill } else { TransitionCause::PartialFill };
        if complete {
            self.resolve_order(cx, index, cause);
        } else {
            if was_pending {
                let number = Some(order.number);
                self.transition(cx, index, Self::waiting_state(purpose, false), cause, number);
            } else {
                slot.deadline_misses = 0;
                self.touch_slot(cx, index);
                self.rearm_deadline(cx, index);
            }
            if gap && venue_final {
                self.order_command(cx, index, Some(QueryReason::FillGap));
            }
        }
        Ok(())
    }

    /// CANCELLED or EXPIRED: final at the venue; resolves once every reported
    /// fill is applied, otherwise asks for the missing fills.
    fn on_final(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let cumulative = event
            .cumulative
            .ok_or_else(|| Reject::field("venue_event.cumulative_quantity", "is required for CANCELLED and EXPIRED"))?;
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_ref() else { return Ok(()) };
        let slot_id = slot.id;
        let trade_id = slot.trade_id.clone();
        let number = order.number;
        let behind = cumulative < order.fills.filled;
        self.note_event(index, event);
        let complete = {
            let Some(order) = self.slots.get_mut(index).and_then(|s| s.order.as_mut()) else { return Ok(()) };
            // cancel_requested stays as it is: a slot that asked for the cancel
            // stays CANCELLING until the missing fills arrive and resolve it.
            order.venue_final = true;
            order.fills.venue_cumulative = order.fills.venue_cumulative.max(cumulative);
            order.status =
                if event.kind == VenueEventKind::Expired { OrderStatus::Expired } else { OrderStatus::Cancelled };
            order.is_complete()
        };
        // The id text only for the anomalies (an order keeps its number).
        let cid = |kernel: &Kernel| Id::from(order_id_text(&kernel.cfg.kernel_id, number));
        if behind {
            let cid = cid(self);
            cx.out.anomalies.push(
                Anomaly::new(
                    AnomalyKind::StateConflict,
                    format!(
                        "venue reports {} filled for {cid} at its end, fewer than the fills applied",
                        num::to_text(cumulative)
                    ),
                )
                .slot(slot_id, trade_id.as_ref())
                .order(&cid)
                .event(&event.event_id)
                .reconcile(),
            );
        }
        let cause =
            if event.kind == VenueEventKind::Expired { TransitionCause::Expired } else { TransitionCause::Cancelled };
        if complete {
            self.resolve_order(cx, index, cause);
            return Ok(());
        }
        let cid = cid(self);
        cx.out.anomalies.push(
            Anomaly::new(
                AnomalyKind::FillGap,
                format!(
                    "{cid} ended with {} filled at the venue; waiting for the missing fills",
                    num::to_text(cumulative)
                ),
            )
            .slot(slot_id, trade_id.as_ref())
            .order(&cid),
        );
        // A final report means the venue had the order: a slot still waiting
        // for the ack now waits for the missing fills instead.
        let pending = self.slots.get(index).and_then(|s| Some((s.state, s.order.as_ref()?.purpose)));
        match pending {
            Some((SlotState::EntryPending | SlotState::ExitPending, purpose)) => {
                self.transition(cx, index, Self::waiting_state(purpose, false), cause, Some(number));
            }
            _ => {
                self.touch_slot(cx, index);
                self.rearm_deadline(cx, index);
            }
        }
        self.order_command(cx, index, Some(QueryReason::FillGap));
        Ok(())
    }

    /// The venue refused the cancel: the order is working or already done.
    /// Go back to working and ask; a fill (or the query) resolves it.
    fn on_cancel_rejected(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_ref() else { return Ok(()) };
        if !order.cancel_requested {
            let cid = order.client_order_id(&self.cfg.kernel_id);
            let message = format!("cancel reject for {cid} with no cancel pending");
            let anomaly = Anomaly::new(AnomalyKind::StaleEvent, message.clone())
                .slot(slot.id, slot.trade_id.as_ref())
                .order(&cid)
                .event(&event.event_id);
            return Err(Reject::new(DiagnosticCode::StaleEvent, message).with(anomaly));
        }
        let number = order.number;
        let to = Self::waiting_state(order.purpose, order.status == OrderStatus::PendingNew);
        self.note_event(index, event);
        if let Some(order) = self.slots.get_mut(index).and_then(|s| s.order.as_mut()) {
            order.cancel_requested = false;
        }
        self.transition(cx, index, to, TransitionCause::CancelRejected, Some(number));
        self.order_command(cx, index, Some(QueryReason::CancelRejected));
        Ok(())
    }

    /// UNKNOWN: the venue reported a status the adapter does not know. Nothing
    /// is assumed about the order: no status, fill, venue id or slot state
    /// changes (never an ack, never a fill). The event id is recorded, so a
    /// second copy is a duplicate; the operator is told (reconcile needed) and
    /// the order is queried, so the kernel's view converges from the venue's
    /// answer. Routing, symbol and venue-id checks ran before, as for any event.
    fn on_unknown_status(&mut self, cx: &mut Ctx<'_>, index: usize, event: &VenueEvent) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let Some(order) = slot.order.as_ref() else { return Ok(()) };
        let cid = order.client_order_id(&self.cfg.kernel_id);
        let anomaly = Anomaly::new(
            AnomalyKind::UnknownStatus,
            format!(
                "venue reported status {:?} for {cid} which the adapter does not know; order left {} and queried",
                event.reason,
                order.status.as_str_name()
            ),
        )
        .slot(slot.id, slot.trade_id.as_ref())
        .order(&cid)
        .event(&event.event_id)
        .reconcile();
        // Commit: the event id (dedup) and nothing else about the order.
        if let Some(order) = self.slots.get_mut(index).and_then(|s| s.order.as_mut()) {
            order.seen_event_ids.insert(event.event_id.clone());
        }
        cx.out.anomalies.push(anomaly);
        self.order_command(cx, index, Some(QueryReason::UnknownStatus));
        Ok(())
    }

    /// Used by tests and the model checker: the order id of a slot, if any.
    pub fn active_order_id(&self, slot: u32) -> Option<Id> {
        self.slots.get(slot as usize).and_then(|s| s.order.as_ref()).map(|o| o.client_order_id(&self.cfg.kernel_id))
    }
}
