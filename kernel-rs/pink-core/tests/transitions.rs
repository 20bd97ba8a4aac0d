//! Every slot transition, one named test each. Legacy flaw ids in brackets
//! name the defect a test would catch if it came back.

use pink_core::model::order_id_text;
use pink_core::output::CommandBody;
use pink_core::pb::{
    AnomalyKind as A, DiagnosticCode as C, OrderPurpose, OrderStatus, QueryReason, Side, SlotState as S,
    TransitionCause as T, VenueEventKind as K,
};
use pink_core::testkit::{d, expect_code as code, expect_ok as ok, moves, Driver, SECOND};

#[test]
fn enter_market_goes_pending_working_open() {
    let mut drv = Driver::new(2);
    let out = drv.enter(0, Side::Long, "0.01");
    ok(&out);
    assert_eq!(moves(&out), vec![(S::Idle, S::EntryPending, T::EnterIntent)]);
    assert_eq!(out.commands.len(), 1);
    let CommandBody::Place(place) = &out.commands[0].body else { panic!("expected PlaceOrder") };
    assert_eq!(place.quantity, d("0.01"));
    assert_eq!(out.commands[0].idempotency_key("tk"), order_id_text("tk", place.order_number));
    assert_eq!(order_id_text("tk", place.order_number), *drv.order_id(0));
    let out = drv.ack(0);
    assert_eq!(moves(&out), vec![(S::EntryPending, S::EntryWorking, T::OrderAccepted)]);
    let out = drv.fill_all(0, "100", "0.05");
    assert_eq!(moves(&out), vec![(S::EntryWorking, S::PositionOpen, T::Fill)]);
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.book.position, d("0.01"));
    assert!(slot.order.is_none() && slot.deadline.is_none());
    drv.check();
}

/// [I1, E10, I8] partial fills accumulate and the entry price is their VWAP.
#[test]
fn entry_partial_fills_accumulate_with_vwap() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let out = drv.fill_order(&cid, "0.5", "100", "0", "0.5", false);
    assert_eq!(moves(&out), vec![]);
    assert_eq!(drv.state(0), S::EntryWorking);
    ok(&drv.fill_order(&cid, "0.3", "99", "0", "0.8", false));
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.book.position, d("0.8"), "fills must add up, not overwrite");
    assert_eq!(slot.order.as_ref().unwrap().status, OrderStatus::PartiallyFilled);
    let out = drv.fill_order(&cid, "0.2", "98", "0", "1", true);
    assert_eq!(moves(&out), vec![(S::EntryWorking, S::PositionOpen, T::Fill)]);
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.book.position, d("1"));
    assert_eq!(slot.book.entry_notional, d("99.3"));
    assert_eq!(slot.book.cost_basis, d("99.3"));
    let encoded = pink_core::encode::kernel_slot(&drv.kernel, slot);
    assert_eq!(encoded.entry_average_price.unwrap().value, "99.3");
    drv.check();
}

#[test]
fn fill_before_ack_moves_pending_straight_on() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    let cid = drv.order_id(0);
    let out = drv.fill_order(&cid, "0.4", "100", "0", "0.4", false);
    assert_eq!(moves(&out), vec![(S::EntryPending, S::EntryWorking, T::PartialFill)]);
    // The ack arriving after a fill is stale but still teaches nothing new: rejected, no change.
    let hash = drv.kernel.state_hash();
    let ack = drv.event(&cid, K::OrderAccepted, None, None);
    let vid_known = drv.kernel.slot(0).unwrap().order.as_ref().unwrap().venue_order_id.is_some();
    assert!(vid_known);
    let out = drv.send(ack);
    code(&out, C::StaleEvent);
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// [I8] an entry fill beyond the order quantity is clamped and flagged.
#[test]
fn entry_overfill_is_clamped_and_flagged() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let cid = drv.order_id(0);
    let out = drv.fill_order(&cid, "1.5", "100", "0", "1.5", true);
    ok(&out);
    assert!(out.anomalies.iter().any(|a| a.kind == A::Overfill && a.reconcile_needed));
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.book.position, d("1"));
    assert_eq!(slot.state, S::PositionOpen);
    drv.check();
}

/// [S1, S2, G10] cancelling an entry with no fill returns the slot to IDLE.
#[test]
fn entry_cancel_without_fill_returns_to_idle() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    ok(&drv.ack(0));
    let out = drv.cancel(0, Some(OrderPurpose::Entry));
    ok(&out);
    assert_eq!(moves(&out), vec![(S::EntryWorking, S::EntryCancelling, T::CancelIntent)]);
    assert!(matches!(out.commands[0].body, CommandBody::Cancel(_)));
    let trade = drv.kernel.slot(0).unwrap().trade_id.clone();
    let out = drv.cancelled(0);
    assert_eq!(moves(&out), vec![(S::EntryCancelling, S::Idle, T::Cancelled)]);
    assert_eq!(out.transitions[0].trade_id, trade, "the last transition still names its trade");
    let slot = drv.kernel.slot(0).unwrap();
    assert!(slot.trade_id.is_none() && slot.order.is_none() && slot.book.position.is_zero());
    assert_eq!(drv.kernel.account().active_slots, 0);
    drv.check();
}

/// [M4] cancelling a partly filled entry keeps exactly the filled size.
#[test]
fn entry_cancel_with_partial_fill_opens_filled_size() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Short, "1", "100", &[]));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "0.25", "100", "0", "0.25", false));
    ok(&drv.cancel(0, None));
    let out = drv.cancelled(0);
    assert_eq!(moves(&out), vec![(S::EntryCancelling, S::PositionOpen, T::Cancelled)]);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("0.25"));
    drv.check();
}

/// Cancel of an entry that was never acked: the cancel goes out by client id.
#[test]
fn entry_cancel_before_ack() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    let out = drv.cancel(0, None);
    assert_eq!(moves(&out), vec![(S::EntryPending, S::EntryCancelling, T::CancelIntent)]);
    ok(&drv.cancelled(0));
    assert_eq!(drv.state(0), S::Idle);
    drv.check();
}

#[test]
fn exit_cancel_returns_to_position_open() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Long, "1");
    ok(&drv.exit(0));
    ok(&drv.ack(0));
    let out = drv.cancel(0, Some(OrderPurpose::Exit));
    assert_eq!(moves(&out), vec![(S::ExitWorking, S::ExitCancelling, T::CancelIntent)]);
    let out = drv.cancelled(0);
    assert_eq!(moves(&out), vec![(S::ExitCancelling, S::PositionOpen, T::Cancelled)]);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("1"));
    drv.check();
}

/// [I15, E17, F17] a cancel reject goes back to working and queries; the fill resolves it.
#[test]
fn cancel_reject_then_fill_resolves_by_the_fill() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Long, "1");
    ok(&drv.exit(0));
    ok(&drv.ack(0));
    ok(&drv.cancel(0, None));
    let out = drv.cancel_rejected(0);
    assert_eq!(moves(&out), vec![(S::ExitCancelling, S::ExitWorking, T::CancelRejected)]);
    assert!(out.commands.iter().any(|c| matches!(c.body, CommandBody::Query(_, QueryReason::CancelRejected))));
    let out = drv.fill_all(0, "110", "0");
    assert_eq!(moves(&out), vec![(S::ExitWorking, S::Closed, T::Fill)]);
    drv.check();
}

/// The cancel/fill race: the fill arrives while cancelling; the slot resolves by it.
#[test]
fn fill_while_cancelling_resolves_and_late_cancel_reject_is_stale() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.ack(0));
    ok(&drv.cancel(0, None));
    let cid = drv.order_id(0);
    let out = drv.fill_all(0, "100", "0");
    assert_eq!(moves(&out), vec![(S::EntryCancelling, S::PositionOpen, T::Fill)]);
    let hash = drv.kernel.state_hash();
    let reject = drv.event(&cid, K::CancelRejected, None, None);
    code(&drv.send(reject), C::StaleEvent);
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// [G10, E9, M2] cancel diagnostics name exactly what is missing.
#[test]
fn cancel_diagnostics_are_specific() {
    let mut drv = Driver::new(1);
    code(&drv.cancel(0, None), C::NoActiveOrder);
    code(&drv.cancel(0, Some(OrderPurpose::Entry)), C::NoActiveEntryOrder);
    code(&drv.cancel(0, Some(OrderPurpose::Exit)), C::NoActiveExitOrder);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    code(&drv.cancel(0, Some(OrderPurpose::Exit)), C::NoActiveExitOrder);
    ok(&drv.cancel(0, Some(OrderPurpose::Entry)));
    code(&drv.cancel(0, None), C::CancelAlreadyPending);
    ok(&drv.cancelled(0));
    drv.open(0, Side::Long, "1");
    code(&drv.cancel(0, Some(OrderPurpose::Entry)), C::NoActiveEntryOrder);
    drv.check();
}

#[test]
fn entry_rejected_goes_idle_exit_rejected_goes_open() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let out = drv.reject(0);
    assert_eq!(moves(&out), vec![(S::EntryPending, S::Idle, T::OrderRejected)]);
    drv.open(0, Side::Long, "1");
    ok(&drv.exit(0));
    let out = drv.reject(0);
    assert_eq!(moves(&out), vec![(S::ExitPending, S::PositionOpen, T::OrderRejected)]);
    drv.check();
}

/// [M9] a reject for an order that already filled never destroys the position.
#[test]
fn reject_after_fill_is_a_conflict_and_keeps_the_position() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "0.5", "100", "0", "0.5", false));
    let reject = drv.event(&cid, K::OrderRejected, None, None);
    let out = drv.send(reject);
    code(&out, C::StateConflict);
    assert!(out.anomalies.iter().any(|a| a.reconcile_needed));
    ok(&drv.fill_order(&cid, "0.5", "100", "0", "1", true));
    // The entry order is retired now; a reject for it is stale and changes nothing.
    let reject = drv.event(&cid, K::OrderRejected, None, None);
    code(&drv.send(reject), C::StaleEvent);
    assert_eq!(drv.state(0), S::PositionOpen);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("1"));
    drv.check();
}

#[test]
fn expired_ioc_with_partial_fill_keeps_filled_size() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "0.4", "100", "0", "0.4", false));
    let expired = drv.event(&cid, K::Expired, None, Some(d("0.4")));
    let out = drv.send(expired);
    assert_eq!(moves(&out), vec![(S::EntryWorking, S::PositionOpen, T::Expired)]);
    drv.check();
}

/// A final status reporting fills the kernel has not seen waits for them and queries.
#[test]
fn cancelled_with_missing_fills_waits_and_queries() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let cancelled = drv.event(&cid, K::Cancelled, None, Some(d("0.3")));
    let out = drv.send(cancelled);
    ok(&out);
    assert!(out.transitions.is_empty());
    assert!(out.anomalies.iter().any(|a| a.kind == A::FillGap));
    assert!(out.commands.iter().any(|c| matches!(c.body, CommandBody::Query(_, QueryReason::FillGap))));
    let out = drv.fill_order(&cid, "0.3", "100", "0", "0.3", false);
    assert_eq!(moves(&out), vec![(S::EntryWorking, S::PositionOpen, T::PartialFill)]);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("0.3"));
    drv.check();
}

/// [E8, G4, I2, G18] legs are ratio x entry size rounded to the step; the last takes the rest.
#[test]
fn multi_leg_exit_sizes_round_to_step_and_last_takes_the_rest() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_legs(0, Side::Long, "0.007", &["0.3", "0.3", "0.4"]));
    ok(&drv.fill_all(0, "100", "0"));
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let out = drv.exit(0);
        ok(&out);
        let CommandBody::Place(place) = &out.commands[0].body else { panic!() };
        sizes.push(place.quantity);
        assert!(place.reduce_only);
        ok(&drv.fill_all(0, "101", "0"));
    }
    assert_eq!(sizes, vec![d("0.002"), d("0.002"), d("0.003")]);
    assert_eq!(drv.state(0), S::Closed);
    code(&drv.exit(0), C::NoOpenPosition);
    drv.check();
}

/// [E8] a leg that partly filled before its cancel is finished by the next EXIT.
#[test]
fn cancelled_leg_is_completed_by_the_next_exit() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_legs(0, Side::Long, "1", &["0.5", "0.5"]));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.exit(0));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "0.2", "100", "0", "0.2", false));
    ok(&drv.cancel(0, None));
    ok(&drv.cancelled(0));
    let out = drv.exit(0);
    let CommandBody::Place(place) = &out.commands[0].body else { panic!() };
    assert_eq!(place.quantity, d("0.3"), "leg 0 still needs 0.3");
    ok(&drv.fill_all(0, "100", "0"));
    let out = drv.exit(0);
    let CommandBody::Place(place) = &out.commands[0].body else { panic!() };
    assert_eq!(place.quantity, d("0.5"), "the last leg takes the rest");
    ok(&drv.fill_all(0, "100", "0"));
    assert_eq!(drv.state(0), S::Closed);
    drv.check();
}

/// [G1] EXIT_RESIDUAL closes whatever remains, whatever the legs say.
#[test]
fn exit_residual_closes_the_remainder() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_legs(0, Side::Short, "1", &["0.25", "0.75"]));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.exit(0));
    ok(&drv.fill_all(0, "100", "0"));
    let out = drv.exit_residual(0);
    assert_eq!(moves(&out), vec![(S::PositionOpen, S::ExitPending, T::ExitResidualIntent)]);
    let CommandBody::Place(place) = &out.commands[0].body else { panic!() };
    assert_eq!(place.quantity, d("0.75"));
    ok(&drv.fill_all(0, "100", "0"));
    assert_eq!(drv.state(0), S::Closed);
    drv.check();
}

#[test]
fn leg_below_minimum_quantity_points_to_exit_residual() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_legs(0, Side::Long, "0.003", &["0.1", "0.9"]));
    ok(&drv.fill_all(0, "100", "0"));
    let hash = drv.kernel.state_hash();
    let out = drv.exit(0);
    code(&out, C::LegBelowMinQuantity);
    assert!(out.message.contains("EXIT_RESIDUAL"));
    assert_eq!(drv.kernel.state_hash(), hash);
    ok(&drv.exit_residual(0));
    drv.check();
}

/// [G3] EXIT while an exit works is refused; no backward transition.
#[test]
fn exit_while_exit_working_is_refused() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Long, "1");
    ok(&drv.exit(0));
    ok(&drv.ack(0));
    code(&drv.exit(0), C::ExitInProgress);
    code(&drv.exit_residual(0), C::ExitInProgress);
    assert_eq!(drv.state(0), S::ExitWorking);
    drv.check();
}

#[test]
fn exit_during_entry_or_without_position_is_refused_specifically() {
    let mut drv = Driver::new(1);
    code(&drv.exit(0), C::NoOpenPosition);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    code(&drv.exit(0), C::EntryInProgress);
    drv.check();
}

/// [E7, J7, M1] a busy slot refuses ENTER; re-entry after close gets a new trade id
/// and its transition records the true previous state.
#[test]
fn reentry_after_close_gets_a_new_trade_and_true_previous_state() {
    let mut drv = Driver::new(2);
    drv.open(0, Side::Long, "1");
    code(&drv.enter(0, Side::Long, "1"), C::SlotBusy);
    let first = drv.kernel.slot(0).unwrap().trade_id.clone().unwrap();
    ok(&drv.exit(0));
    ok(&drv.fill_all(0, "100", "0"));
    assert_eq!(drv.state(0), S::Closed);
    let out = drv.enter(0, Side::Short, "1");
    assert_eq!(moves(&out), vec![(S::Closed, S::EntryPending, T::EnterIntent)]);
    let second = drv.kernel.slot(0).unwrap().trade_id.clone().unwrap();
    assert_ne!(first, second);
    ok(&drv.enter(1, Side::Long, "1"));
    let third = drv.kernel.slot(1).unwrap().trade_id.clone().unwrap();
    assert!(third != first && third != second, "trade ids are never reused");
    drv.check();
}

/// [S3, S12, F1, L1] an outcome lists every transition the input caused, with the
/// true previous state, and accepted is true exactly when the code is OK.
#[test]
fn outcome_lists_every_transition_of_a_kill_switch() {
    let mut drv = Driver::new(3);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    ok(&drv.enter_limit(1, Side::Long, "1", "90", &[]));
    ok(&drv.ack(1));
    let out = drv.control(pink_core::input::ControlChange { trading_enabled: Some(false), ..Default::default() });
    ok(&out);
    assert_eq!(
        moves(&out),
        vec![
            (S::EntryPending, S::EntryCancelling, T::KillSwitch),
            (S::EntryWorking, S::EntryCancelling, T::KillSwitch),
        ]
    );
    assert_eq!(out.commands.len(), 2);
    assert!(out.control_changed);
    code(&drv.enter(2, Side::Long, "1"), C::TradingDisabled);
    drv.check();
}

/// [I13, F26] stray events never change a closed slot; a late fill asks for a reconcile.
#[test]
fn closed_slot_ignores_stray_events_and_late_fill_raises_reconcile() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let entry = drv.order_id(0);
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.exit(0));
    let exit = drv.order_id(0);
    ok(&drv.fill_all(0, "105", "0"));
    assert_eq!(drv.state(0), S::Closed);
    let hash = drv.kernel.state_hash();
    for kind in [K::OrderAccepted, K::OrderRejected, K::Cancelled, K::CancelRejected, K::Expired] {
        let cumulative = matches!(kind, K::Cancelled | K::Expired).then(|| d("1"));
        let event = drv.event(&exit, kind, None, cumulative);
        code(&drv.send(event), C::StaleEvent);
    }
    let out = drv.fill_order(&entry, "1", "100", "0", "2", false);
    code(&out, C::LateFill);
    assert!(out.anomalies.iter().any(|a| a.kind == A::LateFill && a.reconcile_needed));
    assert_eq!(drv.kernel.state_hash(), hash, "a closed slot never changes on stray events");
    drv.check();
}

/// A new fill for a finished order of a trade that is still open.
#[test]
fn fill_after_terminal_on_a_live_trade_is_flagged_not_booked() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let entry = drv.order_id(0);
    ok(&drv.fill_all(0, "100", "0"));
    let out = drv.fill_order(&entry, "0.1", "100", "0", "1.1", false);
    code(&out, C::FillAfterTerminal);
    assert!(out.anomalies[0].reconcile_needed);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("1"));
    drv.check();
}

/// [J8, G13] an event for an unknown order is never routed to a fallback slot.
#[test]
fn unknown_order_is_not_routed_anywhere() {
    let mut drv = Driver::new(2);
    drv.open(0, Side::Long, "1");
    let hash = drv.kernel.state_hash();
    let stranger = pink_core::testkit::id("nobody-1");
    let out = drv.fill_order(&stranger, "1", "100", "0", "1", true);
    code(&out, C::UnknownOrder);
    assert!(out.anomalies[0].reconcile_needed);
    assert_eq!(drv.kernel.state_hash(), hash);
}

/// [S10, M6, I10] duplicates are recognised for the whole life of an order,
/// however many events it receives.
#[test]
fn duplicates_recognised_across_hundreds_of_fills() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1000", "100", &[]));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let mut events = Vec::new();
    for i in 1..=400 {
        let fill = pink_core::input::Fill { quantity: d("1"), price: d("100"), fee: d("0") };
        let event = drv.event(&cid, K::PartialFill, Some(fill), Some(d(&i.to_string())));
        ok(&drv.send(event.clone()));
        events.push(event);
    }
    let hash = drv.kernel.state_hash();
    for event in [&events[0], &events[63], &events[64], &events[255], &events[399]] {
        let out = drv.send(event.clone());
        code(&out, C::DuplicateEvent);
        assert_eq!(out.anomalies[0].kind, A::DuplicateEvent);
    }
    assert_eq!(drv.kernel.state_hash(), hash);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("400"));
    drv.check();
}

#[test]
fn venue_order_id_mismatch_is_refused() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let mut event = drv.event(
        &cid,
        K::PartialFill,
        Some(pink_core::input::Fill { quantity: d("0.1"), price: d("100"), fee: d("0") }),
        Some(d("0.1")),
    );
    event.venue_order_id = Some(pink_core::testkit::id("someone-else"));
    code(&drv.send(event), C::OrderMismatch);
    let mut event = drv.event(
        &cid,
        K::PartialFill,
        Some(pink_core::input::Fill { quantity: d("0.1"), price: d("100"), fee: d("0") }),
        Some(d("0.1")),
    );
    event.symbol = Some(pink_core::testkit::id("ETH-USDT"));
    code(&drv.send(event), C::OrderMismatch);
    drv.check();
}

/// Every waiting state has a deadline; a missed one queries the order with backoff.
#[test]
fn deadlines_query_the_venue_with_backoff() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let deadline = drv.kernel.slot(0).unwrap().deadline.unwrap();
    assert_eq!(deadline - drv.now, 5 * SECOND, "ack timeout");
    let out = drv.timer();
    assert!(out.commands.is_empty(), "nothing due yet");
    drv.advance(5 * SECOND);
    let out = drv.timer();
    ok(&out);
    assert!(matches!(out.commands[0].body, CommandBody::Query(_, QueryReason::Deadline)));
    assert_eq!(out.commands[0].idempotency_key("tk"), format!("{}:query:1", drv.order_id(0)));
    assert_eq!(out.anomalies[0].kind, A::DeadlineExpired);
    let next = drv.kernel.slot(0).unwrap().deadline.unwrap();
    assert_eq!(next - drv.now, 10 * SECOND, "doubled");
    drv.advance(10 * SECOND);
    let out = drv.timer();
    assert_eq!(out.commands[0].idempotency_key("tk"), format!("{}:query:2", drv.order_id(0)));
    ok(&drv.ack(0));
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.deadline.unwrap() - drv.now, 10 * SECOND, "progress resets the backoff (fill timeout)");
    drv.check();
}

#[test]
fn resting_limit_orders_are_checked_periodically() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    ok(&drv.ack(0));
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.deadline.unwrap() - drv.now, 60 * SECOND);
    ok(&drv.cancel(0, None));
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.deadline.unwrap() - drv.now, 5 * SECOND, "cancel timeout");
    drv.check();
}

#[test]
fn version_and_duplicate_intent_guards() {
    let mut drv = Driver::new(1);
    let intent = pink_core::input::Intent {
        intent_id: pink_core::testkit::id("x1"),
        slot: 0,
        expected_version: Some(7),
        action: pink_core::input::Action::Cancel(None),
    };
    let out = drv.step(pink_core::input::Payload::Intent(intent.clone()));
    code(&out, C::VersionConflict);
    let enter = Driver::enter_spec("BTC-USDT", Side::Long, "1", pink_core::model::OrderKind::Market, &[]);
    let first = pink_core::input::Intent {
        intent_id: pink_core::testkit::id("x2"),
        slot: 0,
        expected_version: Some(0),
        action: pink_core::input::Action::Enter(Box::new(enter)),
    };
    ok(&drv.step(pink_core::input::Payload::Intent(first.clone())));
    let mut again = first;
    again.expected_version = None;
    code(&drv.step(pink_core::input::Payload::Intent(again)), C::DuplicateIntent);
    let missing = pink_core::input::Intent { slot: 9, ..intent };
    code(&drv.step(pink_core::input::Payload::Intent(missing)), C::SlotNotFound);
    drv.check();
}

/// A rejected input changes nothing, not even the sequence.
#[test]
fn rejected_inputs_change_nothing_and_sequences_are_checked() {
    let mut drv = Driver::new(1);
    let before = drv.kernel.last_sequence();
    let hash = drv.kernel.state_hash();
    code(&drv.exit(0), C::NoOpenPosition);
    assert_eq!(drv.kernel.last_sequence(), before);
    assert_eq!(drv.kernel.state_hash(), hash);
    let out = drv.kernel.step(pink_core::input::Input {
        sequence: before + 5,
        time: drv.now,
        payload: pink_core::input::Payload::Timer,
    });
    code(out, C::SequenceMismatch);
    assert_eq!(out.sequence, before);
    let out = drv.kernel.step(pink_core::input::Input {
        sequence: before + 1,
        time: drv.now,
        payload: pink_core::input::Payload::Timer,
    });
    ok(out);
    assert_eq!(out.sequence, before + 1);
}

/// [J6, K12] time never goes backwards inside the kernel; a regression is reported.
#[test]
fn clock_regression_is_reported_and_ignored() {
    let mut drv = Driver::new(1);
    let now = drv.now;
    let out = drv.kernel.step(pink_core::input::Input {
        sequence: 0,
        time: now - SECOND,
        payload: pink_core::input::Payload::Timer,
    });
    ok(out);
    assert_eq!(out.anomalies[0].kind, A::ClockRegression);
    assert_eq!(drv.kernel.clock(), Some(now));
}

/// A CANCELLED report can overtake the report of a fill it counts: the slot
/// stays CANCELLING (cancel still requested) until that fill arrives, then resolves.
#[test]
fn cancel_report_overtaking_a_fill_waits_in_cancelling_for_the_fill() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    ok(&drv.ack(0));
    ok(&drv.cancel(0, None));
    let cid = drv.order_id(0);
    let cancelled = drv.event(&cid, K::Cancelled, None, Some(d("0.4")));
    let out = drv.send(cancelled);
    ok(&out);
    assert!(out.transitions.is_empty());
    assert!(out.commands.iter().any(|c| matches!(c.body, CommandBody::Query(_, QueryReason::FillGap))));
    assert_eq!(drv.state(0), S::EntryCancelling);
    assert!(drv.kernel.slot(0).unwrap().order.as_ref().unwrap().cancel_requested);
    drv.check();
    let out = drv.fill_order(&cid, "0.4", "100", "0", "0.4", false);
    assert_eq!(moves(&out), vec![(S::EntryCancelling, S::PositionOpen, T::PartialFill)]);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("0.4"));
    drv.check();
}

/// The same race before the ack: a final report means the venue had the order,
/// so the slot leaves PENDING and waits for the missing fill in WORKING.
#[test]
fn final_report_with_missing_fills_moves_pending_to_working() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Short, "1");
    ok(&drv.exit(0));
    let cid = drv.order_id(0);
    let expired = drv.event(&cid, K::Expired, None, Some(d("0.6")));
    let out = drv.send(expired);
    assert_eq!(moves(&out), vec![(S::ExitPending, S::ExitWorking, T::Expired)]);
    drv.check();
    let out = drv.fill_order(&cid, "0.6", "99", "0", "0.6", false);
    assert_eq!(moves(&out), vec![(S::ExitWorking, S::PositionOpen, T::PartialFill)]);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("0.4"));
    drv.check();
}
