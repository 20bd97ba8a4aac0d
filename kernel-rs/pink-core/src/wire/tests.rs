use prost::Message;

use rust_decimal::Decimal;

use super::input::{input, Plain};
use super::outcome::{outcome_into, written};
use crate::model::OrderKind;
use crate::num::{self, Text};
use crate::output::{Anomaly, Command, CommandBody, LedgerEntry, OrderRef, Output, Place, Transition, Violation};
use crate::pb::{
    AnomalyKind, DiagnosticCode, LedgerEntryKind, OrderPurpose, OrderSide, OrderType, QueryReason, Side, SlotState,
    TimeInForce, TransitionCause,
};
use crate::testkit::alphabet::{Explorer, ALPHABET};
use crate::testkit::{d, id};
use crate::text::Id;

fn same_as_prost(out: &Output, kernel_id: &Id) {
    let mut buf = vec![0xAA];
    outcome_into(out, kernel_id, &mut buf);
    assert_eq!(buf.get(1..), Some(crate::encode::outcome(out, kernel_id).encode_to_vec().as_slice()), "{out:?}");
}

#[test]
fn every_field_encodes_like_prost() {
    let long = "x".repeat(300);
    let kernel_id = id("k");
    let mut out = Output::new(u64::MAX);
    out.code = DiagnosticCode::ReconcileConflict;
    out.message = long.clone();
    out.violations = vec![Violation::new("a.b", long.clone()), Violation::new("", "")];
    out.transitions = vec![Transition {
        slot: 0,
        trade_id: None,
        from: SlotState::Unspecified,
        to: SlotState::ExitCancelling,
        cause: TransitionCause::Reconcile,
        sequence: 0,
        order_number: Some(1),
        slot_version: 1 << 40,
    }];
    let reference = OrderRef { order_number: 1, venue_order_id: Some(id("v9")), symbol: id("BTC-USDT") };
    out.commands = vec![
        Command {
            number: 0,
            slot: 7,
            trade_id: Some(id("k-t1")),
            body: CommandBody::Place(Place {
                order_number: 1,
                symbol: id("BTC-USDT"),
                side: OrderSide::Sell,
                kind: OrderKind::Limit { price: d("-0.000100"), tif: TimeInForce::PostOnly },
                quantity: Decimal::MAX,
                reduce_only: true,
                leverage: Decimal::new(0, 5),
                purpose: OrderPurpose::Exit,
                position_side: Side::Short,
            }),
        },
        Command { number: 3, slot: 0, trade_id: None, body: CommandBody::Cancel(reference.clone()) },
        Command {
            number: u32::MAX,
            slot: u32::MAX,
            trade_id: None,
            body: CommandBody::Query(OrderRef { venue_order_id: None, ..reference.clone() }, QueryReason::Unspecified),
        },
        Command { number: 1, slot: 1, trade_id: None, body: CommandBody::Query(reference, QueryReason::FillGap) },
    ];
    out.ledger = vec![LedgerEntry {
        ledger_sequence: 9,
        kind: LedgerEntryKind::Funding,
        amount: Decimal::from_i128_with_scale(-1, 28),
        capital_before: Decimal::ZERO,
        capital_after: Decimal::MIN,
        input_sequence: 0,
        time: -1_500_000_001,
        slot: Some(0),
        trade_id: Some(id("t")),
        order_number: None,
        venue_event_id: Some(id("e")),
        symbol: Some(id("S")),
    }];
    out.anomalies = vec![
        Anomaly::new(AnomalyKind::FillGap, long).slot(0, None).reconcile(),
        Anomaly::new(AnomalyKind::Unspecified, ""),
    ];
    out.changed_slots = vec![0, 127, 128, 300_000, u32::MAX];
    out.revalued_symbol = Some(id("ETH-USDT"));
    out.account_changed = true;
    out.control_changed = true;
    same_as_prost(&out, &kernel_id);
    same_as_prost(&Output::default(), &kernel_id);
    same_as_prost(&Output::new(1), &kernel_id);
    for time in [0, 1, 999_999_999, 1_000_000_000, i64::MAX, i64::MIN] {
        let mut entry = out.ledger.clone();
        if let Some(e) = entry.first_mut() {
            e.time = time;
        }
        same_as_prost(&Output { ledger: entry, ..Output::default() }, &kernel_id);
    }
}

/// `step_encoded` (its writer keeps the last order id's text from one
/// outcome to the next) writes what prost writes, step after step.
#[test]
fn encoded_steps_write_what_prost_writes() {
    let mut explorer = Explorer::new(3);
    explorer.drv.recording = true;
    let mut kernel = explorer.kernel().clone();
    let mut next = 0_usize;
    for _ in 0..400 {
        next = next.wrapping_mul(31).wrapping_add(17);
        let symbol = ALPHABET.get(next % ALPHABET.len()).copied().unwrap_or(ALPHABET[0]);
        assert!(explorer.apply((next / 7 % 3) as u32, symbol).is_ok());
    }
    let asset = kernel.config().settlement_asset.clone();
    let mut named = 0;
    for (input, _) in &explorer.drv.history {
        let bytes = crate::encode::input(input, &asset).encode_to_vec();
        let written = kernel.step_encoded(&bytes).map(<[u8]>::to_vec);
        let expected = crate::encode::outcome(kernel.output(), &kernel.config().kernel_id).encode_to_vec();
        assert_eq!(written, Ok(expected), "{input:?}");
        named += kernel.output().transitions.iter().filter(|t| t.order_number.is_some()).count();
    }
    assert!(named > 20, "{named} transitions named an order");
}

/// Whatever the wire decoder accepts, prost plus `decode::input` decode
/// to the same input: over model-check inputs, with traces, and with
/// every byte of them flipped in turn.
#[test]
fn wire_inputs_decode_like_prost() {
    let mut explorer = Explorer::new(2);
    explorer.drv.recording = true;
    let mut next = 0_usize;
    for _ in 0..150 {
        next = next.wrapping_mul(31).wrapping_add(17);
        let symbol = ALPHABET.get(next % ALPHABET.len()).copied().unwrap_or(ALPHABET[0]);
        assert!(explorer.apply((next / 7 % 2) as u32, symbol).is_ok());
    }
    let cfg = explorer.kernel().config().clone();
    let (mut fast, mut checked) = (0, 0);
    for (input, _) in &explorer.drv.history {
        let mut wire = crate::encode::input(input, &cfg.settlement_asset);
        if next % 3 == 0 {
            wire.trace = Some(crate::pb::TraceContext { traceparent: "00-ab-cd-01".into(), tracestate: "x=1".into() });
        }
        next = next.wrapping_add(1);
        let bytes = wire.encode_to_vec();
        let plain = match &input.payload {
            crate::input::Payload::Intent(intent) => match &intent.action {
                crate::input::Action::Enter(enter) => enter.labels.is_empty(),
                _ => true,
            },
            crate::input::Payload::Venue(_) | crate::input::Payload::Mark(_) => true,
            _ => false,
        };
        assert_eq!(input_matches(&bytes, &cfg), plain, "{input:?}");
        fast += usize::from(plain);
        for at in 0..bytes.len() {
            for bit in [0x01_u8, 0x80] {
                let mut flipped = bytes.clone();
                if let Some(byte) = flipped.get_mut(at) {
                    *byte ^= bit;
                }
                input_matches(&flipped, &cfg);
                checked += 1;
            }
        }
    }
    assert!(fast > 50 && checked > 10_000, "{fast} {checked}");
}

/// A venue event's receive time (tag 14): a valid one is taken by the fast
/// path and decodes as prost does; an invalid one is left to prost, which
/// names the field; every other field reads as before.
#[test]
fn receive_time_decodes_like_prost() {
    let cfg = crate::testkit::config(1);
    let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
    let message = |kind: crate::pb::VenueEventKind, receive_time| crate::pb::KernelInput {
        sequence: 0,
        time: at(1_767_225_600, 0),
        trace: None,
        payload: Some(crate::pb::kernel_input::Payload::VenueEvent(crate::pb::VenueEvent {
            kind: kind as i32,
            client_order_id: "tk-1".into(),
            venue_order_id: "v1".into(),
            venue_event_id: "v1:unknown:X".into(),
            symbol: "BTC-USDT".into(),
            reason: "X".into(),
            exchange_time: at(1_767_225_599, 1),
            receive_time,
            ..Default::default()
        })),
    };
    for kind in [crate::pb::VenueEventKind::Unknown, crate::pb::VenueEventKind::OrderAccepted] {
        for valid in [None, at(0, 0), at(1_767_225_600, 999_999_999)] {
            let bytes = message(kind, valid).encode_to_vec();
            assert!(input_matches(&bytes, &cfg), "{kind:?} {valid:?}");
        }
        for invalid in [at(-1, 0), at(1, -1), at(1, 1_000_000_000), at(i64::MAX, 0)] {
            let bytes = message(kind, invalid).encode_to_vec();
            assert!(!input_matches(&bytes, &cfg), "{invalid:?}");
            let decoded = crate::decode::input(&message(kind, invalid), &cfg);
            let violations = decoded.err().unwrap_or_default();
            assert!(violations.iter().any(|v| v.field == "venue_event.receive_time"), "{violations:?}");
        }
    }
}

/// Whether the wire decoder took `bytes`; panics if it disagrees with prost.
fn input_matches(bytes: &[u8], cfg: &crate::model::Config) -> bool {
    let Some(ours) = input(bytes, cfg) else { return false };
    let message = crate::pb::KernelInput::decode(bytes);
    assert!(message.is_ok(), "wire accepted what prost refuses: {bytes:?}");
    let theirs =
        message.map_err(|e| e.to_string()).and_then(|m| crate::decode::input(&m, cfg).map_err(|v| format!("{v:?}")));
    // Debug shows each decimal's scale, which `==` does not compare.
    assert_eq!(format!("{theirs:?}"), format!("{:?}", Ok::<_, String>(&ours)), "{bytes:?}");
    assert_eq!(theirs, Ok(ours), "{bytes:?}");
    true
}

/// Decimals whose mantissa fits a u64 are written as `num::Text` writes them.
#[test]
fn decimals_write_like_text() {
    let mut values = vec![Decimal::ZERO, Decimal::new(0, 5), Decimal::new(-0, 3), Decimal::MAX, Decimal::MIN];
    for (m, s) in
        [(1, 0), (-1, 28), (10, 1), (100, 2), (12345, 2), (-12345, 5), (120, 6), (i64::MAX, 0), (i64::MIN, 18)]
    {
        values.push(Decimal::new(m, s));
    }
    values.push(Decimal::from_i128_with_scale(i128::from(u64::MAX), 28));
    values.push(Decimal::from_i128_with_scale(-i128::from(u64::MAX) - 1, 3));
    values.push(-Decimal::new(0, 2));
    let ten_19 = 10_000_000_000_000_000_000_i128;
    for m in [ten_19 - 1, ten_19, ten_19 + 1, 10_000_500_000_000_000_000_000, 99_999 * ten_19, 10_i128.pow(28) - 1] {
        for s in [0, 1, 5, 18, 19, 20, 27, 28] {
            values.push(Decimal::from_i128_with_scale(m, s));
            values.push(Decimal::from_i128_with_scale(-m, s));
        }
    }
    for value in values {
        let ours = written(|w| w.decimal(5, value));
        let text = Text::new(value);
        let theirs = written(|w| w.message(5, |w| w.bytes(1, text.as_bytes())));
        assert_eq!(ours, theirs, "{value:?}");
    }
}

/// Decimal text the plain reader takes reads as `num::parse` reads it,
/// scale included.
#[test]
fn plain_decimals_parse_like_num() {
    let texts = [
        "0",
        "1",
        "-1",
        "0.01",
        "0.0100",
        "100.5",
        "-0.000100",
        "1000000000000",
        "1000000000000.0000001",
        "9999999999999999999",
        "99999999999999999999",
        "0.000000000000000001",
        "0.0000000000000000001",
        "-0",
        "-0.0",
        "00012",
        "1.",
        ".5",
        "-",
        "",
        "1e5",
        "1.2.3",
        "+1",
        " 1",
        "18446744073709551615",
        "1844674407370955161.5",
        "150",
        "150.000",
        "0.5",
    ];
    for text in texts {
        let ours = Plain::parse(text.as_bytes());
        let theirs = num::parse(text);
        if let Some(ours) = ours {
            let theirs = theirs.unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(ours.decimal().serialize(), theirs.serialize(), "{text}");
        }
    }
    assert!(Plain::parse(b"1000000000000").is_some_and(|p| p.at_most(12)));
    assert!(Plain::parse(b"1000000000000.000001").is_some_and(|p| !p.at_most(12)));
    assert!(Plain::parse(b"999999999999.999999").is_some_and(|p| p.at_most(12)));
    assert!(Plain::parse(b"1.0000000000000000001").is_none());
}

/// Edge values of every checked decimal and id, on each kind of input:
/// whatever the wire decoder takes, prost takes identically; and it takes
/// the valid plain ones.
#[test]
fn edge_values_decode_like_prost() {
    use crate::pb::{kernel_input::Payload as Wire, Decimal as Dec, KernelInput};
    let cfg = crate::testkit::config(2);
    let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
    let dec = |t: &str| Some(Dec { value: t.to_owned() });
    let wrap = |payload| KernelInput { sequence: 3, time: at(1_767_225_600, 5), trace: None, payload: Some(payload) };
    let amounts = [
        "1",
        "0",
        "-1",
        "1000000000000",
        "1000000000000.000000000000000001",
        "1000000000001",
        "-1000000000000",
        "0.000000000000000001",
        "-0",
        "1.5",
        "150",
        "151",
        "0.5",
        "5.000",
        "1e3",
        "x",
        "",
    ];
    let (mut taken, mut valid) = (0, 0);
    let mut check = |message: KernelInput| {
        let bytes = message.encode_to_vec();
        let ok = crate::decode::input(&message, &cfg).is_ok();
        valid += usize::from(ok);
        if input_matches(&bytes, &cfg) {
            taken += 1;
        } else if ok {
            // "-0" is left to `num::parse`.
            assert!(format!("{message:?}").contains("\"-0\""), "valid but not taken: {message:?}");
            taken += 1;
        }
    };
    for a in amounts {
        for b in ["0.01", a] {
            let fill = crate::pb::VenueEvent {
                kind: crate::pb::VenueEventKind::Fill as i32,
                client_order_id: "tk-1".into(),
                venue_event_id: "e:1".into(),
                last_quantity: dec(b),
                cumulative_quantity: dec(a),
                last_price: dec(a),
                average_price: dec(b),
                fee: dec(a),
                fee_asset: if a == "1" { "USDT".into() } else { "BTC".into() },
                exchange_time: at(1, 0),
                reason: if a == "0" { "caf\u{e9}".into() } else { "r\u{7}".into() },
                ..Default::default()
            };
            check(wrap(Wire::VenueEvent(fill.clone())));
            check(wrap(Wire::VenueEvent(crate::pb::VenueEvent { reason: String::new(), ..fill.clone() })));
            check(wrap(Wire::VenueEvent(crate::pb::VenueEvent {
                kind: crate::pb::VenueEventKind::Cancelled as i32,
                last_quantity: None,
                last_price: None,
                average_price: None,
                fee: None,
                reason: String::new(),
                ..fill.clone()
            })));
            check(wrap(Wire::MarkPrice(crate::pb::MarkPrice {
                symbol: "BTC-USDT".into(),
                price: dec(a),
                exchange_time: at(2, 1),
            })));
            let enter = crate::pb::Intent {
                intent_id: "i-1".into(),
                action: crate::pb::IntentAction::Enter as i32,
                symbol: "BTC-USDT".into(),
                side: Side::Long as i32,
                order_type: OrderType::Limit as i32,
                limit_price: dec(b),
                time_in_force: TimeInForce::Gtc as i32,
                target_size: dec(a),
                leverage: dec(a),
                exit_leg_ratios: vec![Dec { value: "0.5".into() }, Dec { value: a.into() }],
                ..Default::default()
            };
            check(wrap(Wire::Intent(enter.clone())));
            check(wrap(Wire::Intent(crate::pb::Intent {
                order_type: OrderType::Market as i32,
                limit_price: None,
                time_in_force: 0,
                reference_price: dec(b),
                leverage: dec(b),
                exit_leg_ratios: vec![],
                ..enter.clone()
            })));
        }
    }
    assert!(taken == valid && taken > 30, "{taken} of {valid}");
}

/// Every output of seeded random model-check sequences.
#[test]
fn scenario_outputs_encode_like_prost() {
    let mut seed: u64 = 7;
    let mut next = |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    for run in 0..60 {
        let slots = 1 + run % 3;
        let mut explorer = Explorer::new(slots as u32);
        for _ in 0..60 {
            let slot = next(slots) as u32;
            let symbol = ALPHABET.get(next(ALPHABET.len())).copied().unwrap_or(ALPHABET[0]);
            let applied = explorer.apply(slot, symbol);
            assert!(applied.is_ok(), "{applied:?}");
            same_as_prost(explorer.kernel().output(), &explorer.kernel().config().kernel_id);
        }
    }
}

proptest::proptest! {
    /// Any decimal is written as `num::Text` writes it (mantissas of every
    /// size, every scale, both signs).
    #[test]
    fn random_decimals_write_like_text(
        lo: u32, mid: u32, hi: u32, bits in 0u32..97, zeros in 0u32..29, negative: bool, scale in 0u32..=28,
    ) {
        // Any width, times a power of ten: trailing zeros in every digit group.
        let wide = (u128::from(hi) << 64 | u128::from(mid) << 32 | u128::from(lo)) >> (96 - bits.min(96));
        let wide = wide.checked_mul(10u128.pow(zeros)).filter(|w| *w < 1 << 96).unwrap_or(wide);
        let value = Decimal::from_i128_with_scale(if negative { -(wide as i128) } else { wide as i128 }, scale);
        let ours = written(|w| w.decimal(5, value));
        let text = Text::new(value);
        let theirs = written(|w| w.message(5, |w| w.bytes(1, text.as_bytes())));
        proptest::prop_assert_eq!(ours, theirs, "{:?}", value);
    }

    /// Outputs with strings of every length around the one-byte length
    /// limits, written into a buffer reused from a longer outcome.
    #[test]
    fn reused_buffer_encodes_like_prost(field in 0usize..300, description in 0usize..300, amount: i64, scale in 0u32..=28) {
        let kernel_id = id("tk");
        let mut out = Output::new(5);
        out.violations = vec![Violation::new("f".repeat(field), "d".repeat(description))];
        out.ledger = vec![LedgerEntry {
            ledger_sequence: 1,
            kind: LedgerEntryKind::Fee,
            amount: Decimal::new(amount, scale),
            capital_before: Decimal::new(amount.wrapping_mul(3), scale),
            capital_after: Decimal::new(-amount, scale / 2),
            input_sequence: 5,
            time: 1_767_225_600_084_000_000,
            slot: Some(0),
            trade_id: Some(id("tk-t11")),
            order_number: Some(21),
            venue_event_id: Some(id("e42")),
            symbol: Some(id(&"S".repeat(field / 2))),
        }];
        let mut buf = vec![0xAA; 2000];
        let end = super::outcome::outcome_at(&out, &kernel_id, &mut buf, &mut super::OrderIds::default(), 0);
        let expected = crate::encode::outcome(&out, &kernel_id).encode_to_vec();
        proptest::prop_assert_eq!(buf.get(..end), Some(expected.as_slice()));
        same_as_prost(&out, &kernel_id);
    }

    /// Order numbers are written as "<kernel_id>-<n>" by the fast writer
    /// exactly as `encode` formats them: any number (the digit groups, the
    /// repeats the writer keeps), any kernel id length (short copies or not).
    #[test]
    fn order_ids_encode_like_prost(
        numbers in proptest::collection::vec(proptest::prop_oneof![
            proptest::prelude::any::<u64>(),
            0u64..200,
            99_999_990u64..100_000_010,
            proptest::prelude::Just(u64::MAX),
        ], 1..6),
        kernel in "[a-z0-9]{0,40}",
        count: u32,
    ) {
        let kernel_id = id(&kernel);
        let mut out = Output::new(3);
        for (i, &n) in numbers.iter().enumerate() {
            out.transitions.push(Transition {
                slot: 1,
                trade_id: None,
                from: SlotState::Idle,
                to: SlotState::EntryPending,
                cause: TransitionCause::EnterIntent,
                sequence: 3,
                order_number: (i % 3 != 2).then_some(n),
                slot_version: 2,
            });
            let reference = OrderRef { order_number: n, venue_order_id: None, symbol: id("S") };
            let body = match i % 3 {
                0 => CommandBody::Cancel(reference),
                1 => CommandBody::Query(reference, QueryReason::FillGap),
                _ => CommandBody::Place(Place {
                    order_number: n,
                    symbol: id("S"),
                    side: OrderSide::Buy,
                    kind: OrderKind::Market,
                    quantity: Decimal::ONE,
                    reduce_only: false,
                    leverage: Decimal::ONE,
                    purpose: OrderPurpose::Entry,
                    position_side: Side::Long,
                }),
            };
            out.commands.push(Command { number: count.wrapping_add(i as u32), slot: 1, trade_id: None, body });
            out.ledger.push(LedgerEntry {
                ledger_sequence: 1,
                kind: LedgerEntryKind::Fee,
                amount: Decimal::ONE,
                capital_before: Decimal::ONE,
                capital_after: Decimal::ONE,
                input_sequence: 3,
                time: 0,
                slot: None,
                trade_id: None,
                order_number: Some(n),
                venue_event_id: None,
                symbol: None,
            });
        }
        same_as_prost(&out, &kernel_id);
        // The prost path formats the ids the kernel allocates.
        let encoded = crate::encode::outcome(&out, &kernel_id);
        let first = numbers.first().copied().unwrap_or_default();
        proptest::prop_assert_eq!(&encoded.ledger_entries[0].client_order_id, &format!("{kernel}-{first}"));
    }
}
