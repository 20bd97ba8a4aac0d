//! Legacy flaws (../shared/legacy/flaw-ids.tsv) that no other test file pins
//! down. Each test names the flaw ids it would catch in brackets; the map in
//! tests/legacy/flaw_map.tsv points here.

use std::collections::BTreeSet;

use prost::Message;

use pink_core::input::{Action, ControlChange, Fill, Intent, Payload, Reconcile, SlotTruth};
use pink_core::model::{order_id_text, Instrument, OrderKind};
use pink_core::output::{CommandBody, LedgerEntry, Output};
use pink_core::pb::{
    self, AnomalyKind as A, DiagnosticCode as C, LedgerEntryKind as L, OrderPurpose, OrderSide, QueryReason, Side,
    SlotState as S, TimeInForce, TransitionCause as T, VenueEventKind as K,
};
use pink_core::testkit::{
    config, d, expect_code as code, expect_ok as ok, id, moves, place, truth, Driver, BTC, ETH, SECOND,
};
use pink_core::Kernel;

fn intent(drv: &mut Driver, name: &str, slot: u32, expected_version: Option<u64>, action: Action) -> Output {
    drv.step(Payload::Intent(Intent { intent_id: id(name), slot, expected_version, action }))
}

fn reconcile(drv: &mut Driver, name: &str, slots: Vec<SlotTruth>) -> Output {
    drv.step(Payload::Reconcile(Reconcile {
        reconcile_id: id(name),
        slots,
        wallet_balance: None,
        expected_capital: None,
    }))
}

fn dec(v: &str) -> Option<pb::Decimal> {
    Some(pb::Decimal { value: v.to_owned() })
}

/// Steps a wire message at the driver's next time, keeping the driver's clock in step.
fn step_wire(drv: &mut Driver, payload: pb::kernel_input::Payload) -> pb::Outcome {
    drv.advance(1_000_000);
    let time = prost_types::Timestamp {
        seconds: drv.now.div_euclid(1_000_000_000),
        nanos: i32::try_from(drv.now.rem_euclid(1_000_000_000)).unwrap(),
    };
    let message = pb::KernelInput { sequence: 0, time: Some(time), trace: None, payload: Some(payload) };
    let bytes = drv.kernel.step_bytes(&message.encode_to_vec()).expect("a KernelInput");
    pb::Outcome::decode(bytes.as_slice()).expect("an Outcome")
}

/// [E2, E4] the kernel judges an intent against its own current state: a
/// decision taken on an older slot version is refused whole, and exit sizes
/// come from the kernel's position, never from the caller's stale reading.
#[test]
fn stale_expected_version_is_refused_and_exit_size_comes_from_the_kernel() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Long, "1");
    let seen = drv.kernel.slot(0).unwrap().version;
    // Between the policy's read and its intent, the venue's truth shrinks the position.
    let out = reconcile(&mut drv, "r1", vec![truth(0, Some(BTC), Side::Long, "0.6", Some("100"))]);
    ok(&out);
    assert!(drv.kernel.slot(0).unwrap().version > seen);
    let hash = drv.kernel.state_hash();
    let out = intent(&mut drv, "p-1", 0, Some(seen), Action::Exit(OrderKind::Market));
    code(&out, C::VersionConflict);
    assert_eq!(drv.kernel.state_hash(), hash, "a stale decision changes nothing");
    let current = drv.kernel.slot(0).unwrap().version;
    let out = intent(&mut drv, "p-2", 0, Some(current), Action::Exit(OrderKind::Market));
    ok(&out);
    assert_eq!(place(&out).quantity, d("0.6"), "the exit sells what the kernel holds, not what the policy saw");
    drv.check();
}

/// [E7, I13, J7] after a re-entry, events for the previous trade's orders are
/// recognised as stale or late and never touch the new trade.
#[test]
fn events_for_the_previous_trade_never_touch_the_reentered_trade() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let old_entry = drv.order_id(0);
    ok(&drv.ack(0));
    ok(&drv.fill_all(0, "100", "0"));
    let first_trade = drv.kernel.slot(0).unwrap().trade_id.clone().unwrap();
    ok(&drv.exit(0));
    let old_exit = drv.order_id(0);
    ok(&drv.fill_all(0, "101", "0"));
    assert_eq!(drv.state(0), S::Closed);
    ok(&drv.enter(0, Side::Short, "2"));
    ok(&drv.ack(0));
    let new_trade = drv.kernel.slot(0).unwrap().trade_id.clone().unwrap();
    assert_ne!(new_trade, first_trade);
    let hash = drv.kernel.state_hash();
    let stale_ack = drv.event(&old_entry, K::OrderAccepted, None, None);
    code(&drv.send(stale_ack), C::StaleEvent);
    let stale_cancel = drv.event(&old_exit, K::Cancelled, None, Some(d("1")));
    code(&drv.send(stale_cancel), C::StaleEvent);
    let out = drv.fill_order(&old_exit, "0.5", "99", "0", "1.5", false);
    code(&out, C::LateFill);
    assert!(out.anomalies.iter().any(|a| a.kind == A::LateFill && a.trade_id.as_ref() == Some(&first_trade)));
    assert_eq!(drv.kernel.state_hash(), hash, "the re-entered trade is untouched");
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!((slot.state, slot.book.position), (S::EntryWorking, d("0")));
    ok(&drv.fill_all(0, "100", "0"));
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("2"));
    drv.check();
}

/// [G9, L16, E14, G13] events carry no slot id: they are routed by the order
/// ids they name, and a venue order id is learned only by the order the event
/// names, so the exit's cancel carries the exit's venue id.
#[test]
fn venue_ids_attach_to_the_order_the_event_names() {
    let mut drv = Driver::new(2);
    drv.open(0, Side::Long, "1");
    let entry = drv.kernel.retired().back().unwrap().clone();
    let entry_venue_id = entry.venue_order_id.clone().unwrap();
    ok(&drv.enter_limit(1, Side::Short, "1", "120", &[]));
    let other = drv.order_id(1);
    ok(&drv.exit(0));
    let exit = drv.order_id(0);
    let out = drv.ack(0);
    ok(&out);
    assert_eq!(out.changed_slots, vec![0], "routed to the exit's slot only");
    let exit_venue_id = drv.kernel.slot(0).unwrap().order.as_ref().unwrap().venue_order_id.clone().unwrap();
    assert_ne!(exit_venue_id, entry_venue_id);
    assert_eq!(drv.kernel.retired().back().unwrap().venue_order_id, Some(entry_venue_id.clone()));
    // An event naming the exit but carrying the entry's venue id is a mismatch, not a relabel.
    let mut crossed = drv.event(
        &exit,
        K::PartialFill,
        Some(Fill { quantity: d("0.1"), price: d("100"), fee: d("0") }),
        Some(d("0.1")),
    );
    crossed.venue_order_id = Some(entry_venue_id);
    let hash = drv.kernel.state_hash();
    code(&drv.send(crossed), C::OrderMismatch);
    assert_eq!(drv.kernel.state_hash(), hash);
    let out = drv.cancel(0, Some(OrderPurpose::Exit));
    ok(&out);
    let CommandBody::Cancel(cancel) = &out.commands[0].body else { panic!("expected CancelOrder") };
    assert_eq!(*order_id_text("tk", cancel.order_number), *exit);
    assert_eq!(cancel.venue_order_id, Some(exit_venue_id));
    // The other slot's order is reached by its own id, whatever slot 0 does.
    let out = drv.ack(1);
    assert_eq!(out.transitions.iter().map(|t| t.slot).collect::<Vec<_>>(), vec![1]);
    assert_eq!(drv.kernel.slot(1).unwrap().order.as_ref().unwrap().client_order_id("tk"), other);
    drv.check();
}

/// [S9, M17, I7] a cancel is emitted with the order's own symbol, client id and
/// venue id: there is no fallback that could send a trade id as the symbol.
#[test]
fn cancel_command_names_the_order_symbol_and_ids() {
    let mut drv = Driver::new(1);
    let kind = OrderKind::Limit { price: d("20"), tif: TimeInForce::Gtc };
    ok(&drv.intent(0, Action::Enter(Box::new(Driver::enter_spec(ETH, Side::Long, "1", kind, &[])))));
    let cid = drv.order_id(0);
    let trade = drv.kernel.slot(0).unwrap().trade_id.clone().unwrap();
    // Before the ack: no venue id yet, the cancel goes out by client id and symbol.
    let out = drv.cancel(0, None);
    ok(&out);
    assert_eq!(out.commands.len(), 1);
    let command = &out.commands[0];
    let CommandBody::Cancel(cancel) = &command.body else { panic!("expected CancelOrder") };
    assert_eq!((order_id_text("tk", cancel.order_number), cancel.venue_order_id.clone()), (cid.to_string(), None));
    assert_eq!(&*cancel.symbol, ETH);
    assert_ne!(cancel.symbol, trade, "never the trade id");
    assert_eq!(command.trade_id.as_ref(), Some(&trade));
    assert_eq!(command.idempotency_key("tk"), format!("{cid}:cancel:1"));
    // The venue refuses; after it acks, a second cancel carries the venue id too.
    ok(&drv.cancel_rejected(0));
    ok(&drv.ack(0));
    let venue_id = drv.venue_id(&cid);
    let out = drv.cancel(0, Some(OrderPurpose::Entry));
    let CommandBody::Cancel(cancel) = &out.commands[0].body else { panic!("expected CancelOrder") };
    assert_eq!((cancel.venue_order_id.clone(), &*cancel.symbol), (Some(venue_id), ETH));
    assert_eq!(out.commands[0].idempotency_key("tk"), format!("{cid}:cancel:2"));
    ok(&drv.cancelled(0));
    assert_eq!(drv.state(0), S::Idle);
    drv.check();
}

/// [S13, F26, M14, I7] a re-entry starts a clean trade book while the booked
/// PnL of the closed trade stays in capital, exactly; event ids are remembered
/// per order, so the new trade's order starts with an empty memory.
#[test]
fn reentry_starts_a_clean_book_and_keeps_booked_pnl() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let first_entry = drv.order_id(0);
    let out = drv.fill_all(0, "100", "0.1");
    let reused = out.ledger[0].venue_event_id.clone().unwrap();
    ok(&drv.exit(0));
    ok(&drv.fill_all(0, "110", "0.11"));
    assert_eq!(drv.kernel.account().capital, d("10009.79"), "10000 - 0.1 + 10 - 0.11");
    ok(&drv.enter(0, Side::Long, "2"));
    let slot = drv.kernel.slot(0).unwrap();
    let book = slot.book;
    assert_eq!(
        (book.position, book.entry_quantity, book.realized_pnl, book.fees, book.cost_basis),
        (d("0"), d("0"), d("0"), d("0"), d("0"))
    );
    assert!(slot.order.as_ref().unwrap().seen_event_ids.is_empty());
    let account = drv.kernel.account();
    assert_eq!((account.capital, account.realized_pnl, account.fees), (d("10009.79"), d("10"), d("0.21")));
    // The venue happens to reuse an event id for the new order: it is that order's first event.
    let cid = drv.order_id(0);
    let mut ack = drv.event(&cid, K::OrderAccepted, None, None);
    ack.event_id = reused.clone();
    ok(&drv.send(ack));
    // The old order still recognises its own event.
    let mut replay =
        drv.event(&first_entry, K::Fill, Some(Fill { quantity: d("1"), price: d("100"), fee: d("0.1") }), Some(d("1")));
    replay.event_id = reused;
    code(&drv.send(replay), C::DuplicateEvent);
    assert_eq!(drv.kernel.account().capital, d("10009.79"));
    drv.check();
}

/// The legal (from, to) pairs of each transition cause.
fn legal(from: S, to: S, cause: T) -> bool {
    let free = matches!(from, S::Idle | S::Closed);
    let entry = matches!(from, S::EntryPending | S::EntryWorking | S::EntryCancelling);
    let exit = matches!(from, S::ExitPending | S::ExitWorking | S::ExitCancelling);
    match cause {
        T::EnterIntent => free && to == S::EntryPending,
        T::ExitIntent | T::ExitResidualIntent => from == S::PositionOpen && to == S::ExitPending,
        T::CancelIntent => {
            (matches!(from, S::EntryPending | S::EntryWorking) && to == S::EntryCancelling)
                || (matches!(from, S::ExitPending | S::ExitWorking) && to == S::ExitCancelling)
        }
        T::KillSwitch => matches!(from, S::EntryPending | S::EntryWorking) && to == S::EntryCancelling,
        T::OrderAccepted => {
            (from, to) == (S::EntryPending, S::EntryWorking) || (from, to) == (S::ExitPending, S::ExitWorking)
        }
        T::PartialFill | T::Fill => {
            (entry && matches!(to, S::EntryWorking | S::PositionOpen))
                || (exit && matches!(to, S::ExitWorking | S::PositionOpen | S::Closed))
        }
        T::OrderRejected | T::Cancelled | T::Expired => {
            (entry && matches!(to, S::Idle | S::PositionOpen)) || (exit && matches!(to, S::PositionOpen | S::Closed))
        }
        T::CancelRejected => {
            (from == S::EntryCancelling && matches!(to, S::EntryWorking | S::EntryPending))
                || (from == S::ExitCancelling && matches!(to, S::ExitWorking | S::ExitPending))
        }
        T::Reconcile => (from == S::PositionOpen && to == S::Closed) || (free && to == S::PositionOpen),
        T::Unspecified => false,
    }
}

/// Runs `f` and checks its transitions: each starts from the slot's true
/// state (the previous transition's target), is a legal edge for its cause,
/// carries the input's sequence, and together they end in the post-state.
fn checked(drv: &mut Driver, visited: &mut BTreeSet<i32>, f: impl FnOnce(&mut Driver) -> Output) -> Output {
    let mut states: Vec<S> = drv.kernel.slots().iter().map(|s| s.state).collect();
    let out = f(drv);
    assert_eq!(out.accepted(), out.code == C::Ok);
    if !out.accepted() {
        assert!(out.transitions.is_empty());
    }
    for t in &out.transitions {
        let current = states[t.slot as usize];
        assert_eq!(t.from, current, "transition {t:?} does not start from the slot's true state");
        assert!(legal(t.from, t.to, t.cause), "illegal transition {t:?}");
        assert_eq!(t.sequence, out.sequence);
        states[t.slot as usize] = t.to;
        visited.insert(t.to as i32);
    }
    let actual: Vec<S> = drv.kernel.slots().iter().map(|s| s.state).collect();
    assert_eq!(states, actual, "the transitions must end in the post-state");
    for slot in drv.kernel.slots() {
        if let Some(last) = out.transitions.iter().rev().find(|t| t.slot == slot.id) {
            assert_eq!(last.slot_version, slot.version);
        }
    }
    drv.check();
    out
}

/// A session that visits every slot state and most transition causes.
fn session() -> BTreeSet<i32> {
    let mut v = BTreeSet::new();
    let mut drv = Driver::new(2);
    v.insert(S::Idle as i32);
    let v = &mut v;
    // Entry: pending, cancel, cancel rejected, working, partial, cancelled with fills.
    ok(&checked(&mut drv, v, |d| d.enter_limit(0, Side::Long, "1", "100", &["0.5", "0.5"])));
    ok(&checked(&mut drv, v, |d| d.cancel(0, None)));
    ok(&checked(&mut drv, v, |d| d.cancel_rejected(0)));
    ok(&checked(&mut drv, v, |d| d.ack(0)));
    let cid = drv.order_id(0);
    ok(&checked(&mut drv, v, |d| d.fill_order(&cid, "0.4", "100", "0", "0.4", false)));
    ok(&checked(&mut drv, v, |d| d.cancel(0, Some(OrderPurpose::Entry))));
    ok(&checked(&mut drv, v, |d| d.cancelled(0)));
    // Exit legs: pending, working, cancelled, rejected, residual, closed.
    ok(&checked(&mut drv, v, |d| d.exit(0)));
    ok(&checked(&mut drv, v, |d| d.ack(0)));
    ok(&checked(&mut drv, v, |d| d.cancel(0, Some(OrderPurpose::Exit))));
    ok(&checked(&mut drv, v, |d| d.cancelled(0)));
    ok(&checked(&mut drv, v, |d| d.exit(0)));
    ok(&checked(&mut drv, v, |d| d.reject(0)));
    ok(&checked(&mut drv, v, |d| d.exit(0)));
    ok(&checked(&mut drv, v, |d| d.fill_all(0, "101", "0")));
    ok(&checked(&mut drv, v, |d| d.exit_residual(0)));
    ok(&checked(&mut drv, v, |d| d.fill_all(0, "102", "0")));
    assert_eq!(drv.state(0), S::Closed);
    // Re-entry from CLOSED, rejected entry back to IDLE, kill switch, expiry.
    ok(&checked(&mut drv, v, |d| d.enter(0, Side::Short, "1")));
    ok(&checked(&mut drv, v, |d| d.reject(0)));
    ok(&checked(&mut drv, v, |d| d.enter_limit(0, Side::Long, "1", "90", &[])));
    ok(&checked(&mut drv, v, |d| d.enter(1, Side::Long, "1")));
    ok(&checked(&mut drv, v, |d| d.control(ControlChange { trading_enabled: Some(false), ..Default::default() })));
    ok(&checked(&mut drv, v, |d| d.cancelled(0)));
    let cid = drv.order_id(1);
    ok(&checked(&mut drv, v, |d| d.fill_order(&cid, "0.5", "100", "0", "0.5", false)));
    let expired = drv.event(&cid, K::Expired, None, Some(d("0.5")));
    ok(&checked(&mut drv, v, |d| d.send(expired)));
    ok(&checked(&mut drv, v, |d| d.control(ControlChange { trading_enabled: Some(true), ..Default::default() })));
    // Reconcile closes one position and adopts another.
    ok(&checked(&mut drv, v, |d| {
        reconcile(
            d,
            "r-1",
            vec![truth(0, Some(ETH), Side::Short, "2", Some("20")), truth(1, None, Side::Unspecified, "0", None)],
        )
    }));
    // Rejections emit nothing.
    checked(&mut drv, v, |d| d.exit(1));
    checked(&mut drv, v, |d| d.enter(0, Side::Long, "1"));
    v.clone()
}

/// [G3, M1, M2, S12, L1] every transition records the slot's true previous
/// state, is a legal edge for its cause, and the transitions of an outcome end
/// exactly in the post-state (a CANCEL is a transition like any other).
#[test]
fn every_transition_records_the_true_previous_state_and_a_legal_edge() {
    let visited = session();
    assert!(visited.contains(&(S::EntryCancelling as i32)) && visited.contains(&(S::ExitCancelling as i32)));
}

/// [K18] every slot state exists for a reason: a session reaches each one.
#[test]
fn every_slot_state_is_reachable() {
    let visited = session();
    let all: BTreeSet<i32> = (1..64).filter(|n| S::try_from(*n).is_ok()).collect();
    assert_eq!(all.len(), 9, "IDLE .. CLOSED");
    assert_eq!(visited, all, "states never reached: {:?}", all.difference(&visited).collect::<Vec<_>>());
}

/// [G5, G6] extreme prices and sizes give exact PnL or a refusal that changes
/// nothing; nothing is ever rounded, infinite or NaN, and a mark price never
/// rewrites the entry price.
#[test]
fn extreme_values_are_exact_or_refused_never_infinite() {
    let mut cfg = config(1);
    cfg.initial_control.max_notional_per_slot = d("1000000000000000");
    let mut drv = Driver::with_config(cfg);
    let mut spec = Driver::enter_spec(BTC, Side::Long, "1000", OrderKind::Market, &[]);
    spec.reference_price = Some(d("999999999999"));
    ok(&drv.intent(0, Action::Enter(Box::new(spec))));
    ok(&drv.fill_all(0, "999999999999.9", "0"));
    let cost = drv.kernel.slot(0).unwrap().book.cost_basis;
    assert_eq!(cost, d("999999999999900"));
    ok(&drv.mark(BTC, "0.1"));
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(drv.kernel.slot_unrealized(slot), Some(d("-999999999999800")));
    assert_eq!(slot.book.cost_basis, cost, "a mark never touches the entry side");
    assert_eq!(slot.book.entry_notional, cost);
    ok(&drv.mark(BTC, "1000000000000"));
    assert_eq!(drv.kernel.slot_unrealized(drv.kernel.slot(0).unwrap()), Some(d("100")));
    ok(&drv.exit(0));
    let out = drv.fill_all(0, "1000000000000", "0");
    assert_eq!(out.ledger[0].amount, d("100"));
    assert_eq!(drv.kernel.account().capital, d("10100"));
    // A notional that needs more than 28 significant digits is refused, not rounded.
    let fine = Instrument {
        symbol: id(BTC),
        quantity_step: d("0.000000000000001"),
        price_tick: d("0.0000000000000001"),
        min_quantity: d("0.000000000000001"),
    };
    ok(&drv.step(Payload::Instruments(vec![fine])));
    let hash = drv.kernel.state_hash();
    let mut spec = Driver::enter_spec(BTC, Side::Long, "123456789012.345678901234567", OrderKind::Market, &[]);
    spec.reference_price = Some(d("98765432109.8765432109876543"));
    let out = drv.intent(0, Action::Enter(Box::new(spec)));
    code(&out, C::ArithmeticOverflow);
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// [F12, K7, K8] memory is bounded: finished orders are remembered in a ring of
/// retired_order_memory entries; an event for an order that fell out of it is
/// refused as unknown (with a reconcile request), never applied.
#[test]
fn retired_order_memory_is_bounded() {
    let mut cfg = config(1);
    cfg.retired_order_memory = 16;
    let mut drv = Driver::with_config(cfg);
    let mut first = None;
    for _ in 0..30 {
        ok(&drv.enter(0, Side::Long, "1"));
        first.get_or_insert_with(|| drv.order_id(0));
        ok(&drv.fill_all(0, "100", "0"));
        ok(&drv.exit(0));
        ok(&drv.fill_all(0, "100", "0"));
        assert!(drv.kernel.retired().len() <= 16);
    }
    assert_eq!(drv.kernel.retired().len(), 16);
    let hash = drv.kernel.state_hash();
    let out = drv.fill_order(&first.unwrap(), "1", "100", "0", "2", true);
    code(&out, C::UnknownOrder);
    assert!(out.anomalies[0].reconcile_needed);
    let recent = drv.kernel.retired().back().unwrap().client_order_id(&drv.kernel.config().kernel_id);
    code(&drv.fill_order(&recent, "1", "100", "0", "2", true), C::LateFill);
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// [F7, G8] a reconcile changes (and reports) only the slots whose truth
/// differs; an out-of-range slot is a named violation, never silently dropped.
#[test]
fn reconcile_changes_only_the_slots_it_corrects() {
    let mut drv = Driver::new(4);
    drv.open(0, Side::Long, "1");
    drv.open(2, Side::Long, "1");
    let versions: Vec<u64> = drv.kernel.slots().iter().map(|s| s.version).collect();
    let out = reconcile(
        &mut drv,
        "r-1",
        vec![
            truth(0, Some(BTC), Side::Long, "1", Some("100")),
            truth(1, None, Side::Unspecified, "0", None),
            truth(2, Some(BTC), Side::Long, "0.5", Some("100")),
            truth(3, None, Side::Unspecified, "0", None),
        ],
    );
    ok(&out);
    assert_eq!(out.changed_slots, vec![2]);
    assert!(out.transitions.is_empty(), "a resize that keeps a position is not a state change");
    assert_eq!(out.anomalies.iter().filter(|a| a.kind == A::PositionAdjusted).count(), 1);
    let after: Vec<u64> = drv.kernel.slots().iter().map(|s| s.version).collect();
    assert_eq!((after[0], after[1], after[3]), (versions[0], versions[1], versions[3]));
    assert!(after[2] > versions[2]);
    let hash = drv.kernel.state_hash();
    let out = reconcile(&mut drv, "r-2", vec![truth(9, None, Side::Unspecified, "0", None)]);
    code(&out, C::ReconcileConflict);
    assert_eq!(out.violations[0].field, "reconcile.slots[0].slot_id");
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// [G11, L2, I8] an order's quantity never changes with its fills; fills beyond
/// it (entry or exit) are clamped and flagged, and the position never goes
/// negative.
#[test]
fn order_quantity_never_changes_with_fills_and_overfills_are_clamped() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "0.3", "100", "0", "0.3", false));
    ok(&drv.fill_order(&cid, "0.3", "100", "0", "0.6", false));
    let order = drv.kernel.slot(0).unwrap().order.clone().unwrap();
    assert_eq!((order.quantity, order.fills.filled), (d("1"), d("0.6")));
    ok(&drv.fill_order(&cid, "0.4", "100", "0", "1", true));
    ok(&drv.exit(0));
    let exit = drv.order_id(0);
    let out = drv.fill_order(&exit, "1.5", "110", "0", "1.5", true);
    ok(&out);
    assert!(out.anomalies.iter().any(|a| a.kind == A::Overfill && a.reconcile_needed));
    assert_eq!(out.ledger[0].amount, d("10"), "PnL on the order's 1, not the reported 1.5");
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!((slot.state, slot.book.position), (S::Closed, d("0")));
    drv.check();
}

/// [I20] an empty exit_leg_ratios list is documented and decoded as one leg of 1:
/// one EXIT closes the whole position.
#[test]
fn empty_exit_legs_mean_one_leg_of_one() {
    let mut drv = Driver::new(1);
    let enter = pb::Intent {
        intent_id: "w-1".into(),
        action: pb::IntentAction::Enter as i32,
        slot_id: 0,
        symbol: BTC.into(),
        side: pb::Side::Long as i32,
        order_type: pb::OrderType::Market as i32,
        target_size: dec("0.5"),
        leverage: dec("3"),
        reference_price: dec("100"),
        ..Default::default()
    };
    let out = step_wire(&mut drv, pb::kernel_input::Payload::Intent(enter));
    assert!(out.accepted, "{out:?}");
    let view = pink_core::encode::view(&drv.kernel, &[0], false, false);
    let ratios: Vec<String> = view.slots[0].exit_leg_ratios.iter().map(|r| r.value.clone()).collect();
    assert_eq!(ratios, vec!["1".to_owned()]);
    ok(&drv.fill_all(0, "100", "0"));
    let out = drv.exit(0);
    assert_eq!(place(&out).quantity, d("0.5"));
    ok(&drv.fill_all(0, "100", "0"));
    assert_eq!(drv.state(0), S::Closed);
    drv.check();
}

/// [J1] an EXIT names no side: the kernel sends the opposite side of the
/// position, reduce-only, so a flatten can never open the other way.
#[test]
fn exit_side_comes_from_the_position() {
    let mut drv = Driver::new(2);
    drv.open(0, Side::Long, "1");
    drv.open(1, Side::Short, "1");
    let long_exit = place(&drv.exit(0));
    assert_eq!((long_exit.side, long_exit.position_side, long_exit.reduce_only), (OrderSide::Sell, Side::Long, true));
    let short_exit = place(&drv.exit(1));
    assert_eq!(
        (short_exit.side, short_exit.position_side, short_exit.reduce_only),
        (OrderSide::Buy, Side::Short, true)
    );
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.fill_all(1, "100", "0"));
    assert_eq!((drv.state(0), drv.state(1)), (S::Closed, S::Closed));
    assert!(drv.kernel.slots().iter().all(|s| s.book.position.is_zero()));
    drv.check();
}

/// [S4, G4] the last leg of a multi-leg exit closes the trade exactly once:
/// one CLOSED transition, one closed-trade count, one PnL entry per exit fill.
#[test]
fn last_leg_closes_exactly_once() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_legs(0, Side::Long, "1", &["0.3", "0.3", "0.4"]));
    ok(&drv.fill_all(0, "100", "0"));
    let mut outputs = Vec::new();
    for price in ["101", "102", "103"] {
        ok(&drv.exit(0));
        outputs.push(drv.fill_all(0, price, "0"));
    }
    let closes: usize = outputs.iter().map(|o| o.transitions.iter().filter(|t| t.to == S::Closed).count()).sum();
    assert_eq!(closes, 1);
    let pnl: Vec<usize> =
        outputs.iter().map(|o| o.ledger.iter().filter(|e| e.kind == L::RealizedPnl).count()).collect();
    assert_eq!(pnl, vec![1, 1, 1]);
    assert_eq!(drv.kernel.account().trades_closed, 1);
    assert_eq!(drv.kernel.account().realized_pnl, d("2.1"), "0.3 x 1 + 0.3 x 2 + 0.4 x 3");
    let slot = drv.kernel.slot(0).unwrap();
    assert!(slot.order.is_none() && slot.book.position.is_zero());
    let hash = drv.kernel.state_hash();
    code(&drv.exit(0), C::NoOpenPosition);
    code(&drv.exit_residual(0), C::NoOpenPosition);
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// [F15, F16] an order the venue never answers, or an event that is refused,
/// leaves the slot waiting with a deadline: the timer queries the venue, so
/// no slot is stuck and a refused event changes nothing.
#[test]
fn a_refused_event_or_a_silent_venue_leaves_a_deadline_that_queries() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    assert_eq!(drv.state(0), S::EntryPending);
    drv.advance(5 * SECOND);
    let out = drv.timer();
    assert!(matches!(out.commands[0].body, CommandBody::Query(_, QueryReason::Deadline)));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let mut wrong =
        drv.event(&cid, K::Fill, Some(Fill { quantity: d("1"), price: d("100"), fee: d("0") }), Some(d("1")));
    wrong.symbol = Some(id(ETH));
    let hash = drv.kernel.state_hash();
    code(&drv.send(wrong), C::OrderMismatch);
    assert_eq!(drv.kernel.state_hash(), hash);
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!((slot.state, slot.book.position), (S::EntryWorking, d("0")));
    assert!(slot.deadline.is_some());
    drv.advance(10 * SECOND);
    let out = drv.timer();
    assert!(out.commands.iter().any(|c| matches!(c.body, CommandBody::Query(_, QueryReason::Deadline))));
    ok(&drv.fill_all(0, "100", "0"));
    drv.check();
}

/// [L7] "0" is a venue event id like any other: applied once, recognised when repeated.
#[test]
fn event_id_zero_is_a_real_id() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let cid = drv.order_id(0);
    let mut ack = drv.event(&cid, K::OrderAccepted, None, None);
    ack.event_id = id("0");
    ok(&drv.send(ack.clone()));
    code(&drv.send(ack), C::DuplicateEvent);
    drv.check();
}

/// [H4] zero is a value, not a missing field: a CANCELLED reporting 0 filled is
/// applied; one that omits the cumulative quantity is refused by name.
#[test]
fn zero_is_a_value_not_a_missing_field() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    ok(&drv.ack(0));
    ok(&drv.cancel(0, None));
    let cid = drv.order_id(0);
    let event = |cumulative: Option<pb::Decimal>| pb::VenueEvent {
        kind: pb::VenueEventKind::Cancelled as i32,
        client_order_id: cid.to_string(),
        venue_event_id: "c-1".into(),
        cumulative_quantity: cumulative,
        exchange_time: Some(prost_types::Timestamp { seconds: 1_767_225_700, nanos: 0 }),
        ..Default::default()
    };
    let hash = drv.kernel.state_hash();
    let out = step_wire(&mut drv, pb::kernel_input::Payload::VenueEvent(event(None)));
    assert_eq!(out.code, C::InvalidInput as i32);
    assert_eq!(out.violations[0].field, "venue_event.cumulative_quantity");
    assert_eq!(drv.kernel.state_hash(), hash);
    let out = step_wire(&mut drv, pb::kernel_input::Payload::VenueEvent(event(dec("0"))));
    assert!(out.accepted, "{out:?}");
    assert_eq!(drv.state(0), S::Idle);
    drv.check();
}

/// [E20, E22, G23, S5] capital before and after is recorded by the kernel on
/// every ledger entry at the moment of the change: across interleaved slots the
/// entries chain exactly and sum to the change of capital.
#[test]
fn ledger_entries_chain_exactly_across_slots() {
    let mut drv = Driver::new(3);
    let mut entries: Vec<LedgerEntry> = Vec::new();
    let mut partials = Vec::new();
    for slot in 0..3 {
        ok(&drv.enter(slot, if slot == 1 { Side::Short } else { Side::Long }, "1"));
        let out = drv.fill_all(slot, &format!("10{slot}.5"), "0.05");
        ok(&out);
        entries.extend(out.ledger);
    }
    for (slot, price) in [(1, "99.25"), (0, "104"), (2, "101.125")] {
        ok(&drv.exit(slot));
        let cid = drv.order_id(slot);
        let out = drv.fill_order(&cid, "0.4", price, "0.02", "0.4", false);
        ok(&out);
        partials.push(out.ledger.iter().map(|e| e.kind).collect::<Vec<_>>());
        entries.extend(out.ledger);
    }
    // Partial exits settle at once, before any trade closes.
    assert!(partials.iter().all(|kinds| *kinds == vec![L::RealizedPnl, L::Fee]), "{partials:?}");
    assert_eq!(drv.kernel.account().trades_closed, 0);
    for slot in [2, 0, 1] {
        let out = drv.fill_all(slot, "100", "0.03");
        ok(&out);
        entries.extend(out.ledger);
    }
    let initial = drv.kernel.account().initial_capital;
    let mut capital = initial;
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry.ledger_sequence, n as u64 + 1);
        assert_eq!(entry.capital_before, capital, "entry {n} does not start where the previous ended");
        assert_eq!(entry.capital_after, entry.capital_before + entry.amount);
        assert!(entry.slot.is_some() && entry.trade_id.is_some() && entry.venue_event_id.is_some());
        capital = entry.capital_after;
    }
    assert_eq!(capital, drv.kernel.account().capital);
    let total: rust_decimal::Decimal = entries.iter().map(|e| e.amount).sum();
    assert_eq!(initial + total, drv.kernel.account().capital);
    assert_eq!(entries.iter().filter(|e| e.kind == L::RealizedPnl).count(), 6);
    drv.check();
}

/// [E26, E24, I14] a resting LIMIT order survives snapshot and restore: the
/// restored kernel applies its later fills, recognises its old events, learns
/// from a reconcile listing it, and never places it again.
#[test]
fn restored_kernel_still_knows_its_resting_limit_order() {
    let mut drv = Driver::new(2);
    ok(&drv.enter_limit(0, Side::Long, "1", "95", &[]));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let first =
        drv.event(&cid, K::PartialFill, Some(Fill { quantity: d("0.2"), price: d("95"), fee: d("0") }), Some(d("0.2")));
    ok(&drv.send(first.clone()));
    let restored = Kernel::restore_bytes(&drv.kernel.snapshot_bytes()).expect("valid snapshot");
    let mut after = Driver::from_kernel(restored, drv.now);
    assert_eq!(after.order_id(0), cid);
    code(&after.send(first), C::DuplicateEvent);
    let mut listed = truth(0, Some(BTC), Side::Long, "0.5", Some("95"));
    listed.open_order = Some(pink_core::input::OrderTruth {
        client_order_id: Some(cid.clone()),
        venue_order_id: None,
        status: pb::OrderStatus::PartiallyFilled,
        filled: d("0.5"),
    });
    let out = reconcile(&mut after, "r-1", vec![listed]);
    ok(&out);
    assert!(out.commands.iter().all(|c| matches!(c.body, CommandBody::Query(_, QueryReason::FillGap))));
    assert!(!out.commands.is_empty());
    ok(&after.fill_order(&cid, "0.3", "95", "0", "0.5", false));
    let out = after.fill_order(&cid, "0.5", "94.5", "0", "1", true);
    assert_eq!(moves(&out), vec![(S::EntryWorking, S::PositionOpen, T::Fill)]);
    assert_eq!(after.kernel.slot(0).unwrap().book.position, d("1"));
    after.check();
}

/// Orders are found by the number in "<kernel_id>-<number>": any other
/// spelling of a live order's id (leading zero, sign, another prefix) names
/// no order and is refused exactly as an unknown id.
#[test]
fn non_canonical_order_ids_are_unknown_orders() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let cid = drv.order_id(0);
    let kernel_id = drv.kernel.config().kernel_id.to_string();
    let number = cid.strip_prefix(&format!("{kernel_id}-")).unwrap().to_owned();
    let hash = drv.kernel.state_hash();
    for foreign in [
        format!("{kernel_id}-0{number}"),
        format!("{kernel_id}-+{number}"),
        format!("{kernel_id}-"),
        format!("{kernel_id}x-{number}"),
        format!("{kernel_id}-{number}0000000000000000000000"),
    ] {
        let event = drv.event(&id(&foreign), K::OrderAccepted, None, None);
        let out = drv.step(Payload::Venue(event));
        code(&out, C::UnknownOrder);
        assert_eq!(out.message, format!("no order with client order id {foreign}: the event is not applied"));
        assert_eq!(drv.kernel.state_hash(), hash);
    }
    ok(&drv.ack(0));
}
