//! VENUE_EVENT_KIND_UNKNOWN: the venue reported a status the adapter does not
//! know. [H8] It is never an acknowledgement or a fill: the order and its slot
//! stay as they were, the operator is told (reconcile needed) and the order is
//! queried. Routed, checked and deduplicated like every other venue event.

use pink_core::input::VenueEvent;
use pink_core::model::order_id_text;
use pink_core::output::{CommandBody, Output};
use pink_core::pb::{
    AnomalyKind as A, DiagnosticCode as C, OrderStatus, QueryReason, Side, SlotState as S, VenueEventKind as K,
};
use pink_core::testkit::{d, expect_code as code, expect_ok as ok, id, moves, Driver};
use pink_core::text::Id;

fn unknown(drv: &mut Driver, cid: &Id, raw: &str) -> VenueEvent {
    let mut event = drv.event(cid, K::Unknown, None, None);
    event.reason = raw.to_owned();
    event
}

/// What an UNKNOWN must leave alone: state, version, book, deadline, and the
/// order's status, fills, venue id and cancel flag.
fn slot_facts(drv: &Driver, slot: u32) -> impl PartialEq + std::fmt::Debug {
    let s = drv.kernel.slot(slot).unwrap();
    let order = s.order.as_ref().map(|o| (o.status, o.fills, o.venue_order_id.clone(), o.cancel_requested));
    (s.state, s.version, s.book, s.deadline, s.deadline_misses, order)
}

/// Accepted, no transition or ledger entry, one UNKNOWN_STATUS anomaly that asks
/// for a reconcile, one QueryOrder (UNKNOWN_STATUS) for `cid`.
fn expect_unknown_handled(out: &Output, cid: &Id, event_id: &Id) {
    ok(out);
    assert!(out.transitions.is_empty(), "{:?}", moves(out));
    assert!(out.ledger.is_empty());
    assert_eq!(out.anomalies.len(), 1, "{:?}", out.anomalies);
    let anomaly = &out.anomalies[0];
    assert_eq!(anomaly.kind, A::UnknownStatus);
    assert!(anomaly.reconcile_needed);
    assert_eq!(anomaly.client_order_id.as_ref(), Some(cid));
    assert_eq!(anomaly.venue_event_id.as_ref(), Some(event_id));
    assert_eq!(out.commands.len(), 1);
    let CommandBody::Query(order, reason) = &out.commands[0].body else { panic!("expected QueryOrder") };
    assert_eq!(*reason, QueryReason::UnknownStatus);
    assert_eq!(order_id_text("tk", order.order_number), **cid);
}

/// [H8] An UNKNOWN on a pending entry is not an ack: the slot stays pending, the
/// venue id is not learned, the real ack still applies afterwards.
#[test]
fn unknown_status_on_a_pending_entry_changes_nothing_and_queries() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    let cid = drv.order_id(0);
    let before = slot_facts(&drv, 0);
    let event = unknown(&mut drv, &cid, "TRIGGERED");
    let event_id = event.event_id.clone();
    let out = drv.send(event);
    expect_unknown_handled(&out, &cid, &event_id);
    assert!(out.anomalies[0].message.contains("TRIGGERED"), "{}", out.anomalies[0].message);
    assert_eq!(slot_facts(&drv, 0), before);
    let order = drv.kernel.slot(0).unwrap().order.clone().unwrap();
    assert_eq!(order.status, OrderStatus::PendingNew);
    assert!(order.venue_order_id.is_none(), "nothing is learned from an unknown status");
    assert_eq!(drv.state(0), S::EntryPending);
    // The real ack is still news.
    let out = drv.ack(0);
    assert_eq!(moves(&out), vec![(S::EntryPending, S::EntryWorking, pink_core::pb::TransitionCause::OrderAccepted)]);
    drv.check();
}

/// An UNKNOWN on a working entry with a partial fill keeps the fill, the status
/// and the position; the next fill resolves it.
#[test]
fn unknown_status_on_a_working_entry_keeps_its_fills() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "0.4", "100", "0", "0.4", false));
    let before = slot_facts(&drv, 0);
    let event = unknown(&mut drv, &cid, "SOMETHING_NEW");
    let event_id = event.event_id.clone();
    expect_unknown_handled(&drv.send(event), &cid, &event_id);
    assert_eq!(slot_facts(&drv, 0), before);
    assert_eq!(drv.kernel.slot(0).unwrap().order.as_ref().unwrap().status, OrderStatus::PartiallyFilled);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, d("0.4"));
    ok(&drv.fill_order(&cid, "0.6", "100", "0", "1", true));
    assert_eq!(drv.state(0), S::PositionOpen);
    drv.check();
}

/// [H8] An UNKNOWN on a working exit: still EXIT_WORKING, position unchanged, queried.
#[test]
fn unknown_status_on_an_exit_order_changes_nothing_and_queries() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Short, "1");
    ok(&drv.exit(0));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let before = slot_facts(&drv, 0);
    let position = drv.kernel.slot(0).unwrap().book.position;
    let capital = drv.kernel.account().capital;
    let event = unknown(&mut drv, &cid, "PENDING_TRIGGER");
    let event_id = event.event_id.clone();
    let out = drv.send(event);
    expect_unknown_handled(&out, &cid, &event_id);
    assert!(!out.account_changed);
    assert_eq!(slot_facts(&drv, 0), before);
    assert_eq!(drv.state(0), S::ExitWorking);
    assert_eq!(drv.kernel.slot(0).unwrap().book.position, position);
    assert_eq!(drv.kernel.account().capital, capital);
    ok(&drv.fill_all(0, "100", "0"));
    assert_eq!(drv.state(0), S::Closed);
    drv.check();
}

/// A cancelling slot stays cancelling: the UNKNOWN neither confirms nor refuses the cancel.
#[test]
fn unknown_status_while_cancelling_keeps_the_cancel_pending() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "100", &[]));
    ok(&drv.ack(0));
    ok(&drv.cancel(0, None));
    let cid = drv.order_id(0);
    let before = slot_facts(&drv, 0);
    let event = unknown(&mut drv, &cid, "X");
    let event_id = event.event_id.clone();
    expect_unknown_handled(&drv.send(event), &cid, &event_id);
    assert_eq!(slot_facts(&drv, 0), before);
    assert_eq!(drv.state(0), S::EntryCancelling);
    ok(&drv.cancelled(0));
    assert_eq!(drv.state(0), S::Idle);
    drv.check();
}

/// [S10] The same UNKNOWN twice (stream and REST copies share the id): the
/// second is a duplicate and changes nothing; another UNKNOWN (new id) is news.
#[test]
fn duplicate_unknown_status_is_recognised() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.ack(0));
    let cid = drv.order_id(0);
    let event = unknown(&mut drv, &cid, "X");
    ok(&drv.send(event.clone()));
    let hash = drv.kernel.state_hash();
    let out = drv.send(event.clone());
    code(&out, C::DuplicateEvent);
    assert_eq!(out.anomalies[0].kind, A::DuplicateEvent);
    assert_eq!(drv.kernel.state_hash(), hash);
    let again = unknown(&mut drv, &cid, "Y");
    let out = drv.send(again);
    ok(&out);
    assert_eq!(out.commands.len(), 1, "every new UNKNOWN asks again");
    drv.check();
}

/// [J8, G13] An UNKNOWN for an order the kernel does not know goes nowhere.
#[test]
fn unknown_status_for_an_unknown_order_is_not_routed() {
    let mut drv = Driver::new(1);
    drv.open(0, Side::Long, "1");
    let hash = drv.kernel.state_hash();
    let stranger = id("nobody-1");
    let event = unknown(&mut drv, &stranger, "X");
    let out = drv.send(event);
    code(&out, C::UnknownOrder);
    assert_eq!(out.anomalies[0].kind, A::UnknownOrder);
    assert!(out.anomalies[0].reconcile_needed);
    assert_eq!(drv.kernel.state_hash(), hash);
}

/// An UNKNOWN for a finished order is stale, like anything else for it; one
/// whose venue order id is another order's is a mismatch.
#[test]
fn unknown_status_for_a_finished_or_mismatched_order_is_refused() {
    let mut drv = Driver::new(2);
    drv.open(0, Side::Long, "1");
    let finished = drv.kernel.slot(0).unwrap().order.as_ref().map(|o| o.client_order_id("tk"));
    assert!(finished.is_none());
    let hash = drv.kernel.state_hash();
    // The entry of slot 0 is retired: find its id through the retired ring.
    let retired = drv.kernel.retired().back().unwrap().client_order_id(&drv.kernel.config().kernel_id);
    let event = unknown(&mut drv, &retired, "X");
    let out = drv.send(event);
    code(&out, C::StaleEvent);
    assert_eq!(drv.kernel.state_hash(), hash);
    ok(&drv.enter(1, Side::Long, "1"));
    ok(&drv.ack(1));
    let cid = drv.order_id(1);
    let hash = drv.kernel.state_hash();
    let mut event = unknown(&mut drv, &cid, "X");
    event.venue_order_id = Some(id("someone-else"));
    code(&drv.send(event), C::OrderMismatch);
    assert_eq!(drv.kernel.state_hash(), hash);
    drv.check();
}

/// UNKNOWN carries no execution: fill fields are refused (by the byte path too).
#[test]
fn unknown_status_with_fill_fields_is_invalid() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let cid = drv.order_id(0);
    let mut event = unknown(&mut drv, &cid, "X");
    event.fill = Some(pink_core::input::Fill { quantity: d("1"), price: d("100"), fee: d("0") });
    event.cumulative = Some(d("1"));
    let wire = pink_core::encode::input(
        &pink_core::input::Input {
            sequence: 0,
            time: pink_core::testkit::T0,
            payload: pink_core::input::Payload::Venue(event),
        },
        &drv.kernel.config().settlement_asset,
    );
    let result = pink_core::decode::input(&wire, drv.kernel.config());
    let violations = result.expect_err("fill fields on UNKNOWN must be refused");
    assert!(violations.iter().any(|v| v.field == "venue_event.last_quantity"), "{violations:?}");
}

/// The model checker's properties (invariants, no event applied twice, rejected
/// inputs change nothing, terminal slots immutable, a way back to free) over the
/// alphabet plus UNKNOWN: every sequence up to depth 3 on one slot, and seeded
/// random sequences on three slots.
#[test]
fn model_check_with_unknown_status() {
    use pink_core::testkit::alphabet::{Explorer, Symbol, WITH_UNKNOWN};

    fn explore(explorer: &Explorer, depth: usize, path: &mut Vec<Symbol>) {
        if depth == 0 {
            return;
        }
        for symbol in WITH_UNKNOWN {
            let mut child = explorer.clone();
            path.push(symbol);
            match child.apply(0, symbol) {
                Ok(true) => explore(&child, depth - 1, path),
                Ok(false) => {}
                Err(e) => panic!("{e}\n  sequence: {path:?}"),
            }
            path.pop();
        }
    }
    explore(&Explorer::new(1), 3, &mut Vec::new());

    let mut seed: u64 = 5;
    let mut next = |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    let mut unknown_accepted = 0;
    for _ in 0..150 {
        let mut explorer = Explorer::new(3);
        for _ in 0..40 {
            let slot = next(3) as u32;
            let symbol = WITH_UNKNOWN[next(WITH_UNKNOWN.len())];
            let before = explorer.accepted;
            if let Err(e) = explorer.apply(slot, symbol) {
                panic!("{e}");
            }
            if symbol == Symbol::UnknownStatus && explorer.accepted > before {
                unknown_accepted += 1;
            }
        }
    }
    assert!(unknown_accepted > 50, "{unknown_accepted}");
}
