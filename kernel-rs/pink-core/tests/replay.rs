//! Journal replay (restart = snapshot + replay of the tail) and the wire form
//! of inputs: replay reproduces the state exactly or stops loudly.

use proptest::prelude::*;
use prost::Message;

use pink_core::input::Payload;
use pink_core::pb;
use pink_core::pb::Side;
use pink_core::testkit::alphabet::{Explorer, ALPHABET};
use pink_core::testkit::{config, expect_ok as ok, Driver};
use pink_core::{decode, encode, Kernel};

/// A recorded session and the journal records (serialized LogRecords) of its
/// accepted inputs, built the way the kernel service builds them.
fn session() -> (Driver, Vec<Vec<u8>>) {
    let mut drv = Driver::new(3);
    let mut records = Vec::new();
    let mut journal = |drv: &mut Driver, payload: Payload| {
        let input = pink_core::input::Input { sequence: 0, time: drv.now + 1_000_000, payload };
        let wire = encode::input(&input, "USDT");
        let out_bytes = drv.kernel.step_bytes(&wire.encode_to_vec()).expect("decodable");
        drv.now += 1_000_000;
        let outcome = pb::Outcome::decode(out_bytes.as_slice()).expect("outcome");
        if outcome.accepted {
            let post_state = pb::KernelView::decode(drv.kernel.post_state_bytes().as_slice()).expect("view");
            let mut input = wire;
            input.sequence = outcome.sequence;
            let record = pb::LogRecord {
                kernel_id: "tk".into(),
                sequence: outcome.sequence,
                input: Some(input),
                outcome: Some(outcome),
                trace: None,
                record_time: None,
                post_state: Some(post_state),
                venue_stream_position: format!("pos-{}", drv.kernel.last_sequence()),
            };
            records.push(record.encode_to_vec());
        }
    };
    let enter = Driver::enter_spec("BTC-USDT", Side::Long, "1", pink_core::model::OrderKind::Market, &["0.5", "0.5"]);
    let intent = |name: &str, slot: u32, action| {
        Payload::Intent(pink_core::input::Intent {
            intent_id: pink_core::testkit::id(name),
            slot,
            expected_version: None,
            action,
        })
    };
    journal(&mut drv, intent("i1", 0, pink_core::input::Action::Enter(Box::new(enter.clone()))));
    let cid = drv.order_id(0);
    let ack = drv.event(&cid, pb::VenueEventKind::OrderAccepted, None, None);
    journal(&mut drv, Payload::Venue(ack));
    let fill = pink_core::input::Fill {
        quantity: pink_core::testkit::d("1"),
        price: pink_core::testkit::d("100"),
        fee: pink_core::testkit::d("0.05"),
    };
    let fill = drv.event(&cid, pb::VenueEventKind::Fill, Some(fill), Some(pink_core::testkit::d("1")));
    journal(&mut drv, Payload::Venue(fill.clone()));
    journal(&mut drv, Payload::Venue(fill)); // a duplicate: rejected, not journaled
    journal(
        &mut drv,
        Payload::Mark(pink_core::input::Mark {
            symbol: pink_core::testkit::id("BTC-USDT"),
            price: pink_core::testkit::d("101"),
        }),
    );
    journal(&mut drv, intent("i2", 0, pink_core::input::Action::Exit(pink_core::model::OrderKind::Market)));
    journal(&mut drv, Payload::Timer);
    (drv, records)
}

#[test]
fn replay_rebuilds_the_identical_state() {
    let (drv, records) = session();
    assert_eq!(
        records.len() as u64,
        drv.kernel.last_sequence() - 1,
        "all but the instrument update (stepped directly)"
    );
    // The instrument update was stepped by the driver before recording: start from it.
    let mut fresh = Kernel::new(config(3));
    fresh.step(pink_core::input::Input {
        sequence: 0,
        time: pink_core::testkit::T0 + 1_000_000,
        payload: Payload::Instruments(pink_core::testkit::instruments()),
    });
    let position = fresh.replay_records(records.iter().map(Vec::as_slice)).expect("replays");
    assert_eq!(fresh.state_hash(), drv.kernel.state_hash());
    assert_eq!(position, format!("pos-{}", drv.kernel.last_sequence()));
    fresh.check_invariants().expect("invariants");
}

#[test]
fn replay_from_a_snapshot_applies_only_the_tail() {
    let (drv, records) = session();
    let mut base = Kernel::new(config(3));
    base.step(pink_core::input::Input {
        sequence: 0,
        time: pink_core::testkit::T0 + 1_000_000,
        payload: Payload::Instruments(pink_core::testkit::instruments()),
    });
    base.replay_records(records.iter().take(3).map(Vec::as_slice)).expect("first three");
    let mut restored = Kernel::restore_bytes(&base.snapshot_bytes()).expect("snapshot");
    restored.replay_records(records.iter().skip(3).map(Vec::as_slice)).expect("the tail");
    assert_eq!(restored.state_hash(), drv.kernel.state_hash());
}

#[test]
fn replay_stops_at_a_gap_a_divergence_or_garbage() {
    let (_, records) = session();
    let fresh = || {
        let mut k = Kernel::new(config(3));
        k.step(pink_core::input::Input {
            sequence: 0,
            time: pink_core::testkit::T0 + 1_000_000,
            payload: Payload::Instruments(pink_core::testkit::instruments()),
        });
        k
    };
    let error = fresh().replay_records(records.iter().skip(1).map(Vec::as_slice)).expect_err("gap");
    assert!(error.contains("where 2 was expected"), "{error}");
    let mut tampered = pb::LogRecord::decode(records[2].as_slice()).expect("record");
    if let Some(outcome) = tampered.outcome.as_mut() {
        outcome.ledger_entries.clear();
    }
    let mut altered: Vec<Vec<u8>> = records.clone();
    altered[2] = tampered.encode_to_vec();
    let mut k = fresh();
    let error = k.replay_records(altered.iter().map(Vec::as_slice)).expect_err("divergence");
    assert!(error.contains("diverged at sequence 4"), "{error}");
    assert_eq!(k.last_sequence(), 4, "stopped at the diverging record (the caller discards this kernel)");
    let error = fresh().replay_records([[0xff_u8, 0xff].as_slice()]).expect_err("garbage");
    assert!(error.contains("undecodable"), "{error}");
}

#[test]
fn post_state_holds_what_the_step_touched() {
    let mut drv = Driver::new(2);
    drv.open(0, Side::Long, "1");
    ok(&drv.mark("BTC-USDT", "102"));
    let view = pb::KernelView::decode(drv.kernel.post_state_bytes().as_slice()).expect("view");
    assert_eq!(view.slots.iter().map(|s| s.slot_id).collect::<Vec<_>>(), vec![0], "the revalued slot");
    assert_eq!(view.slots[0].unrealized_pnl.as_ref().map(|d| d.value.as_str()), Some("2"));
    assert!(view.account.is_some() && view.control.is_none());
    let out = drv.exit(1);
    assert!(!out.accepted());
    let view = pb::KernelView::decode(drv.kernel.post_state_bytes().as_slice()).expect("view");
    assert!(view.slots.is_empty() && view.account.is_none(), "a rejection touches nothing");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_122),
        ..ProptestConfig::default()
    })]

    /// decode(encode(x)) == x for every input the model checker's alphabet builds.
    #[test]
    fn inputs_survive_the_wire(seq in prop::collection::vec((0u32..3, 0usize..ALPHABET.len()), 1..60)) {
        let mut explorer = Explorer::new(3);
        explorer.drv.recording = true;
        for (slot, symbol) in seq {
            prop_assert!(explorer.apply(slot, ALPHABET[symbol]).is_ok());
        }
        let cfg = explorer.kernel().config().clone();
        for (input, _) in &explorer.drv.history {
            let wire = encode::input(input, &cfg.settlement_asset);
            let back = decode::input_bytes(&wire.encode_to_vec(), &cfg);
            prop_assert_eq!(back.as_ref(), Ok(input));
        }
    }
}
