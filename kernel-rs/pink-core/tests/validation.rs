//! Field validation through the byte entry point: every bad field is named,
//! nothing is defaulted silently, and a rejection changes no state.

use pink_core::pb::{self, kernel_input::Payload as P, DiagnosticCode as C};
use pink_core::testkit::{config, T0};
use pink_core::Kernel;
use prost::Message;

fn dec(v: &str) -> Option<pb::Decimal> {
    Some(pb::Decimal { value: v.to_owned() })
}

fn input(payload: P) -> pb::KernelInput {
    pb::KernelInput {
        sequence: 0,
        time: Some(prost_types::Timestamp { seconds: T0 / 1_000_000_000 + 5, nanos: 0 }),
        trace: None,
        payload: Some(payload),
    }
}

fn kernel() -> Kernel {
    let mut k = Kernel::new(config(2));
    let instruments = pb::InstrumentUpdate {
        instruments: vec![pb::Instrument {
            symbol: "BTC-USDT".into(),
            quantity_step: dec("0.001"),
            price_tick: dec("0.1"),
            min_quantity: dec("0.001"),
        }],
    };
    let out = step(&mut k, input(P::InstrumentUpdate(instruments)));
    assert!(out.accepted, "{out:?}");
    k
}

fn step(k: &mut Kernel, message: pb::KernelInput) -> pb::Outcome {
    let bytes = k.step_bytes(&message.encode_to_vec()).expect("decodable");
    pb::Outcome::decode(bytes.as_slice()).expect("outcome decodes")
}

fn enter() -> pb::Intent {
    pb::Intent {
        intent_id: "i-1".into(),
        action: pb::IntentAction::Enter as i32,
        slot_id: 0,
        symbol: "BTC-USDT".into(),
        side: pb::Side::Long as i32,
        order_type: pb::OrderType::Market as i32,
        target_size: dec("0.01"),
        leverage: dec("5"),
        reference_price: dec("100"),
        ..Default::default()
    }
}

/// Steps `message`, expects INVALID_INPUT naming `field`, and no state change.
fn rejects(k: &mut Kernel, message: pb::KernelInput, field: &str) -> pb::Outcome {
    let hash = k.state_hash();
    let out = step(k, message);
    assert!(!out.accepted);
    assert_eq!(out.code, C::InvalidInput as i32, "{out:?}");
    assert!(
        out.violations.iter().any(|v| v.field == field),
        "expected a violation of {field}, got {:?}",
        out.violations
    );
    assert_eq!(k.state_hash(), hash, "a rejected input must not change state");
    assert!(out.transitions.is_empty() && out.commands.is_empty() && out.ledger_entries.is_empty());
    out
}

fn with_enter(f: impl FnOnce(&mut pb::Intent)) -> pb::KernelInput {
    let mut intent = enter();
    f(&mut intent);
    input(P::Intent(intent))
}

#[test]
fn valid_enter_is_accepted() {
    let mut k = kernel();
    let out = step(&mut k, with_enter(|_| {}));
    assert!(out.accepted, "{out:?}");
    assert_eq!(out.code, C::Ok as i32);
    assert_eq!(out.changed_slots, vec![0]);
    let view = pb::KernelView::decode(k.view_bytes(&out.changed_slots, false, false).as_slice()).expect("view");
    assert_eq!(view.slots[0].state, pb::SlotState::EntryPending as i32);
}

/// [G7, F3, G5] non-finite, malformed, negative, zero and huge sizes are refused by name.
#[test]
fn bad_decimals_are_refused_by_field() {
    let mut k = kernel();
    for bad in [
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e5",
        "",
        " 1",
        "0",
        "-0.01",
        "1000000000001",
        "0x10",
        "1.0000000000000000001",
        "0.01\u{0}",
    ] {
        rejects(&mut k, with_enter(|i| i.target_size = dec(bad)), "intent.target_size");
    }
    rejects(&mut k, with_enter(|i| i.target_size = None), "intent.target_size");
    rejects(&mut k, with_enter(|i| i.reference_price = dec("0")), "intent.reference_price");
}

/// [G12, F3] leverage must be a whole number from 1 to the cap.
#[test]
fn leverage_is_bounded() {
    let mut k = kernel();
    for bad in ["0", "-1", "2.5", "151", "1000000"] {
        rejects(&mut k, with_enter(|i| i.leverage = dec(bad)), "intent.leverage");
    }
    let out = step(&mut k, with_enter(|i| i.leverage = dec("21")));
    assert_eq!(out.code, C::LeverageAboveLimit as i32, "above the control's max (20)");
}

/// [G18, I2, I20, E8, G4] exit leg ratios: each in (0, 1], summing to 1; the legacy
/// stuck sequence (0.5, 0.5, 1.0) cannot even be submitted.
#[test]
fn exit_leg_ratios_are_validated() {
    let mut k = kernel();
    let ratios =
        |list: &[&str]| -> Vec<pb::Decimal> { list.iter().map(|r| pb::Decimal { value: (*r).to_owned() }).collect() };
    rejects(&mut k, with_enter(|i| i.exit_leg_ratios = ratios(&["0.5", "0.5", "1.0"])), "intent.exit_leg_ratios");
    rejects(&mut k, with_enter(|i| i.exit_leg_ratios = ratios(&["0", "1"])), "intent.exit_leg_ratios[0]");
    rejects(&mut k, with_enter(|i| i.exit_leg_ratios = ratios(&["1.5"])), "intent.exit_leg_ratios[0]");
    rejects(&mut k, with_enter(|i| i.exit_leg_ratios = ratios(&["0.5", "0.4"])), "intent.exit_leg_ratios");
    rejects(&mut k, with_enter(|i| i.exit_leg_ratios = ratios(&["0.0625"; 17])), "intent.exit_leg_ratios");
    let out = step(&mut k, with_enter(|i| i.exit_leg_ratios = ratios(&["0.333333333", "0.333333333", "0.333333334"])));
    assert!(out.accepted, "{out:?}");
}

/// [G2, G17, J9] ids and text are bounded and charset-checked: no NUL byte, no control characters.
#[test]
fn ids_and_text_are_checked() {
    let mut k = kernel();
    rejects(&mut k, with_enter(|i| i.intent_id = String::new()), "intent.intent_id");
    rejects(&mut k, with_enter(|i| i.intent_id = "a\u{0}b".into()), "intent.intent_id");
    rejects(&mut k, with_enter(|i| i.intent_id = "x".repeat(65)), "intent.intent_id");
    rejects(&mut k, with_enter(|i| i.symbol = "BTC USDT".into()), "intent.symbol");
    rejects(&mut k, with_enter(|i| i.symbol = "S".repeat(33)), "intent.symbol");
    rejects(
        &mut k,
        with_enter(|i| {
            i.labels.insert("ok".into(), "bad\u{0}value".into());
        }),
        "intent.labels[\"ok\"]",
    );
    rejects(
        &mut k,
        with_enter(|i| {
            i.labels.insert("Bad Key".into(), "v".into());
        }),
        "intent.labels[\"Bad Key\"]",
    );
}

/// [H6, H8] unknown enum values are refused by name, never mapped to a default.
#[test]
fn unknown_enum_values_are_refused() {
    let mut k = kernel();
    rejects(&mut k, with_enter(|i| i.action = 99), "intent.action");
    rejects(&mut k, with_enter(|i| i.side = 7), "intent.side");
    rejects(&mut k, with_enter(|i| i.order_type = -1), "intent.order_type");
    rejects(&mut k, with_enter(|i| i.side = 0), "intent.side");
    let event = pb::VenueEvent {
        kind: 42,
        client_order_id: "tk-1".into(),
        venue_event_id: "e".into(),
        exchange_time: input(P::Timer(pb::Timer {})).time,
        ..Default::default()
    };
    rejects(&mut k, input(P::VenueEvent(event)), "venue_event.kind");
}

/// [E3, S6, H7, M18, L11] order type and limit price are contract fields; LIMIT needs both.
#[test]
fn order_type_fields_are_consistent() {
    let mut k = kernel();
    rejects(&mut k, with_enter(|i| i.order_type = pb::OrderType::Limit as i32), "intent.limit_price");
    rejects(&mut k, with_enter(|i| i.limit_price = dec("100")), "intent.limit_price");
    rejects(&mut k, with_enter(|i| i.time_in_force = pb::TimeInForce::Gtc as i32), "intent.time_in_force");
    rejects(
        &mut k,
        with_enter(|i| {
            i.order_type = pb::OrderType::Limit as i32;
            i.limit_price = dec("100.05");
            i.time_in_force = pb::TimeInForce::Gtc as i32;
            i.reference_price = None;
        }),
        "intent.limit_price",
    );
    let out = step(
        &mut k,
        with_enter(|i| {
            i.order_type = pb::OrderType::Limit as i32;
            i.limit_price = dec("100.1");
            i.time_in_force = pb::TimeInForce::PostOnly as i32;
            i.reference_price = None;
        }),
    );
    assert!(out.accepted, "{out:?}");
    let place = match &out.commands[0].command {
        Some(pb::command::Command::PlaceOrder(p)) => p.clone(),
        other => panic!("expected PlaceOrder, got {other:?}"),
    };
    assert_eq!(place.order_type, pb::OrderType::Limit as i32);
    assert_eq!(place.limit_price.unwrap().value, "100.1");
    assert_eq!(place.time_in_force, pb::TimeInForce::PostOnly as i32);
}

#[test]
fn fields_that_do_not_apply_must_be_empty() {
    let mut k = kernel();
    rejects(&mut k, with_enter(|i| i.reduce_only = true), "intent.reduce_only");
    let exit = pb::Intent {
        intent_id: "x".into(),
        action: pb::IntentAction::Exit as i32,
        order_type: pb::OrderType::Market as i32,
        target_size: dec("1"),
        ..Default::default()
    };
    rejects(&mut k, input(P::Intent(exit)), "intent.target_size");
    let cancel = pb::Intent {
        intent_id: "c".into(),
        action: pb::IntentAction::Cancel as i32,
        symbol: "BTC-USDT".into(),
        ..Default::default()
    };
    rejects(&mut k, input(P::Intent(cancel)), "intent.symbol");
}

fn fill(f: impl FnOnce(&mut pb::VenueEvent)) -> pb::KernelInput {
    let mut event = pb::VenueEvent {
        kind: pb::VenueEventKind::Fill as i32,
        client_order_id: "tk-1".into(),
        venue_order_id: "v1".into(),
        venue_event_id: "t1".into(),
        last_quantity: dec("0.01"),
        cumulative_quantity: dec("0.01"),
        last_price: dec("100"),
        fee: dec("0.01"),
        fee_asset: "USDT".into(),
        exchange_time: Some(prost_types::Timestamp { seconds: T0 / 1_000_000_000, nanos: 0 }),
        ..Default::default()
    };
    f(&mut event);
    input(P::VenueEvent(event))
}

/// [L3, E12, L2, L7] a zero or negative fill price is refused (never a -100% loss);
/// fills carry their quantities, time and ids.
#[test]
fn fill_events_are_validated() {
    let mut k = kernel();
    assert!(step(&mut k, with_enter(|_| {})).accepted);
    rejects(&mut k, fill(|e| e.last_price = dec("0")), "venue_event.last_price");
    rejects(&mut k, fill(|e| e.last_price = dec("-100")), "venue_event.last_price");
    rejects(&mut k, fill(|e| e.last_price = None), "venue_event.last_price");
    rejects(&mut k, fill(|e| e.last_quantity = dec("0")), "venue_event.last_quantity");
    rejects(&mut k, fill(|e| e.cumulative_quantity = None), "venue_event.cumulative_quantity");
    rejects(&mut k, fill(|e| e.cumulative_quantity = dec("0.005")), "venue_event.cumulative_quantity");
    rejects(&mut k, fill(|e| e.fee_asset = String::new()), "venue_event.fee_asset");
    rejects(&mut k, fill(|e| e.fee_asset = "BNB".into()), "venue_event.fee_asset");
    rejects(&mut k, fill(|e| e.venue_event_id = String::new()), "venue_event.venue_event_id");
    rejects(&mut k, fill(|e| e.exchange_time = None), "venue_event.exchange_time");
    rejects(
        &mut k,
        fill(|e| {
            e.client_order_id = String::new();
            e.venue_order_id = String::new();
        }),
        "venue_event.client_order_id",
    );
    rejects(&mut k, fill(|e| e.kind = pb::VenueEventKind::OrderAccepted as i32), "venue_event.last_quantity");
    let out = step(&mut k, fill(|_| {}));
    assert!(out.accepted, "{out:?}");
}

#[test]
fn envelope_is_validated() {
    let mut k = kernel();
    let mut message = with_enter(|_| {});
    message.time = None;
    rejects(&mut k, message, "time");
    let mut message = with_enter(|_| {});
    message.time = Some(prost_types::Timestamp { seconds: -1, nanos: 0 });
    rejects(&mut k, message, "time");
    let mut message = with_enter(|_| {});
    message.payload = None;
    rejects(&mut k, message, "payload");
}

/// [J9, G2] bytes that are not a KernelInput are an error, never a panic or a state change.
#[test]
fn undecodable_bytes_are_an_error() {
    let mut k = kernel();
    let hash = k.state_hash();
    for bytes in [vec![0xff, 0xff, 0xff], vec![0x0a, 0x05, 0x01], vec![0x12; 40]] {
        assert!(k.step_bytes(&bytes).is_err());
    }
    assert_eq!(k.state_hash(), hash);
}

/// [L1] accepted is true exactly when the code is OK, over a mix of good and bad inputs.
#[test]
fn accepted_iff_ok() {
    let mut k = kernel();
    let inputs = vec![
        with_enter(|_| {}),
        with_enter(|_| {}),
        with_enter(|i| i.slot_id = 5),
        fill(|_| {}),
        fill(|_| {}),
        fill(|e| e.client_order_id = "nobody".into()),
        input(P::Timer(pb::Timer {})),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for message in inputs {
        let out = step(&mut k, message);
        assert_eq!(out.accepted, out.code == C::Ok as i32, "{out:?}");
        seen.insert(out.code);
    }
    assert!(seen.len() >= 4, "the mix covers accepted and several rejections: {seen:?}");
}

#[test]
fn config_is_validated_field_by_field() {
    let good = pink_core::snapshot::config_message(&config(3));
    assert!(Kernel::from_config_bytes(&good.encode_to_vec()).is_ok());
    let mut bad = good.clone();
    bad.kernel_id = "PK!".into();
    bad.slot_count = 0;
    bad.initial_capital = dec("-5");
    bad.hard_max_leverage = dec("500");
    bad.ack_timeout = None;
    let Err(violations) = Kernel::from_config_bytes(&bad.encode_to_vec()) else { panic!("invalid config accepted") };
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    for field in [
        "config.kernel_id",
        "config.slot_count",
        "config.initial_capital",
        "config.hard_max_leverage",
        "config.ack_timeout",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
}

/// A control change without an actor has no audit trail: refused by name, nothing changes.
#[test]
fn control_updates_name_their_actor() {
    let mut k = kernel();
    let update = |actor: &str| pb::ControlUpdate {
        trading_enabled: Some(false),
        actor: actor.into(),
        reason: "test".into(),
        ..Default::default()
    };
    rejects(&mut k, input(P::ControlUpdate(update(""))), "control_update.actor");
    rejects(&mut k, input(P::ControlUpdate(update("ops\u{0}"))), "control_update.actor");
    let out = step(&mut k, input(P::ControlUpdate(update("ops"))));
    assert!(out.accepted, "{out:?}");
}

/// receive_time (the adapter's clock, beside the venue's exchange_time) is checked
/// like exchange_time, by the wire fast path and prost alike; a valid one changes
/// nothing: the same outcome bytes and state hash as the event without it.
#[test]
fn receive_time_is_validated_and_changes_no_state() {
    let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
    let mut k = kernel();
    assert!(step(&mut k, with_enter(|_| {})).accepted);
    let base = T0 / 1_000_000_000;
    rejects(&mut k, fill(|e| e.receive_time = at(-1, 0)), "venue_event.receive_time");
    rejects(&mut k, fill(|e| e.receive_time = at(base, 1_000_000_000)), "venue_event.receive_time");
    rejects(&mut k, fill(|e| e.receive_time = at(base, -1)), "venue_event.receive_time");
    rejects(&mut k, fill(|e| e.receive_time = at(i64::MAX, 0)), "venue_event.receive_time");
    let mut plain = kernel();
    assert!(step(&mut plain, with_enter(|_| {})).accepted);
    let with = step(&mut k, fill(|e| e.receive_time = at(base + 3, 250_000_000)));
    let without = step(&mut plain, fill(|_| {}));
    assert!(with.accepted, "{with:?}");
    assert_eq!(with, without);
    assert_eq!(k.state_hash(), plain.state_hash());
}

/// [H8] VENUE_EVENT_KIND_UNKNOWN through the byte entry point: accepted with the raw
/// status as reason and a receive time; an UNKNOWN_STATUS anomaly and a QueryOrder.
#[test]
fn unknown_status_event_is_accepted_from_bytes() {
    let mut k = kernel();
    assert!(step(&mut k, with_enter(|_| {})).accepted);
    let event = pb::VenueEvent {
        kind: pb::VenueEventKind::Unknown as i32,
        client_order_id: "tk-1".into(),
        venue_order_id: "v1".into(),
        venue_event_id: "v1:unknown:TRIGGERED".into(),
        symbol: "BTC-USDT".into(),
        reason: "TRIGGERED".into(),
        exchange_time: Some(prost_types::Timestamp { seconds: T0 / 1_000_000_000, nanos: 0 }),
        receive_time: Some(prost_types::Timestamp { seconds: T0 / 1_000_000_000 + 1, nanos: 5 }),
        ..Default::default()
    };
    let out = step(&mut k, input(P::VenueEvent(event.clone())));
    assert!(out.accepted, "{out:?}");
    assert!(out.transitions.is_empty());
    assert_eq!(out.anomalies.len(), 1);
    assert_eq!(out.anomalies[0].kind, pb::AnomalyKind::UnknownStatus as i32);
    assert!(out.anomalies[0].reconcile_needed);
    let Some(pb::command::Command::QueryOrder(query)) = &out.commands[0].command else { panic!("{out:?}") };
    assert_eq!(query.reason, pb::QueryReason::UnknownStatus as i32);
    assert_eq!(query.client_order_id, "tk-1");
    rejects(
        &mut k,
        input(P::VenueEvent(pb::VenueEvent { receive_time: None, exchange_time: None, ..event })),
        "venue_event.exchange_time",
    );
}
