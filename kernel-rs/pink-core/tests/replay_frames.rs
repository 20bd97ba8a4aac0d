//! Replay straight from journal segment frames (`Kernel::replay_frames`, ADR
//! 0010): the same state as `replay_records`, the same first error, whether
//! the records are decoded ahead on a second thread or not.

use proptest::prelude::*;
use prost::Message;

use pink_core::frames::checksum;
use pink_core::input::Payload;
use pink_core::pb;
use pink_core::pb::Side;
use pink_core::testkit::{Driver, BTC};
use pink_core::{encode, Kernel};

/// A journal of `rounds` trading rounds over 4 slots: the kernel before it,
/// its serialized LogRecords, and the kernel after it.
fn journal(rounds: u32) -> (Kernel, Vec<Vec<u8>>, Kernel) {
    let mut drv = Driver::new(4);
    let start = drv.kernel.clone();
    drv.recording = true;
    for round in 0..rounds {
        let slot = round % 4;
        let side = if round % 3 == 0 { Side::Short } else { Side::Long };
        assert!(drv.enter(slot, side, "0.01").accepted());
        assert!(drv.ack(slot).accepted());
        assert!(drv.fill_all(slot, "100", "0.0005").accepted());
        assert!(drv.mark(BTC, if round % 2 == 0 { "101" } else { "99.5" }).accepted());
        assert!(drv.exit(slot).accepted());
        assert!(drv.ack(slot).accepted());
        assert!(drv.fill_all(slot, "100.5", "0.0005").accepted());
        if round % 5 == 0 {
            assert!(!drv.exit(slot).accepted(), "a refused input is not journaled");
        }
    }
    let mut kernel = start.clone();
    let mut records = Vec::new();
    for (input, accepted) in &drv.history {
        let out = kernel.step(input.clone()).clone();
        assert_eq!(out.accepted(), *accepted);
        if !accepted {
            continue;
        }
        let venue = matches!(input.payload, Payload::Venue(_));
        let record = pb::LogRecord {
            kernel_id: "tk".into(),
            sequence: out.sequence,
            input: Some(encode::input(input, "USDT")),
            outcome: Some(encode::outcome(&out, &kernel.config().kernel_id)),
            trace: None,
            record_time: None,
            post_state: pb::KernelView::decode(kernel.post_state_bytes().as_slice()).ok(),
            venue_stream_position: if venue { format!("pos-{}", out.sequence) } else { String::new() },
        };
        records.push(record.encode_to_vec());
    }
    assert_eq!(kernel.state_hash(), drv.kernel.state_hash());
    (start, records, drv.kernel)
}

fn frame(sequence: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_le_bytes());
    out.extend_from_slice(&checksum(sequence, payload).to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frames of `records`, numbered from `first`.
fn frames(first: u64, records: &[Vec<u8>]) -> Vec<u8> {
    records.iter().zip(first..).flat_map(|(record, seq)| frame(seq, record)).collect()
}

/// Result, sequence reached and state hash of replaying `buf` on a copy of `start`.
fn run(start: &Kernel, buf: &[u8], verify: bool, pipelined: bool) -> (Result<(u64, String), String>, u64, String) {
    let mut kernel = start.clone();
    let result = kernel.replay_frames(buf, verify, pipelined);
    (result, kernel.last_sequence(), kernel.state_hash())
}

#[test]
fn frames_replay_to_the_recorded_state_in_every_mode() {
    let (start, records, end) = journal(120);
    assert!(records.len() > 3 * 256, "several pipeline batches: {}", records.len());
    let first = start.last_sequence() + 1;
    let buf = frames(first, &records);
    let last_position = format!("pos-{}", end.last_sequence());
    for verify in [false, true] {
        for pipelined in [false, true] {
            let (result, sequence, hash) = run(&start, &buf, verify, pipelined);
            assert_eq!(
                result,
                Ok((records.len() as u64, last_position.clone())),
                "verify {verify} pipelined {pipelined}"
            );
            assert_eq!((sequence, hash.as_str()), (end.last_sequence(), end.state_hash().as_str()));
        }
    }
    // The automatic choice, and the records path, agree.
    let mut kernel = start.clone();
    assert_eq!(kernel.replay_frames(&buf, true, true), Ok((records.len() as u64, last_position.clone())));
    let mut by_records = start.clone();
    assert_eq!(by_records.replay_records(records.iter().map(Vec::as_slice)), Ok(last_position));
    assert_eq!(kernel.state_hash(), by_records.state_hash());
    kernel.check_invariants().expect("invariants");
}

#[test]
fn frames_replay_in_pieces_and_from_a_snapshot() {
    let (start, records, end) = journal(20);
    let first = start.last_sequence() + 1;
    let (head, tail) = records.split_at(50);
    let mut kernel = start.clone();
    let (count, _) = kernel.replay_frames(&frames(first, head), true, true).expect("head");
    assert_eq!(count, 50);
    let mut restored = Kernel::restore_bytes(&kernel.snapshot_bytes()).expect("snapshot");
    let (count, _) = restored.replay_frames(&frames(first + 50, tail), true, true).expect("tail");
    assert_eq!(count as usize, tail.len());
    assert_eq!(restored.state_hash(), end.state_hash());
    assert_eq!(kernel.replay_frames(&[], true, true), Ok((0, String::new())), "no frames, nothing done");
}

#[test]
fn bad_frames_and_records_stop_replay_with_the_same_error_in_every_mode() {
    let (start, records, _) = journal(50);
    let first = start.last_sequence() + 1;
    let good = frames(first, &records);
    let offset_of = |k: usize| records.iter().take(k).map(|r| r.len() + 16).sum::<usize>();
    let k = 300;
    let at = offset_of(k);
    let seq = first + k as u64;

    let mut flipped = good.clone();
    flipped[at + 40] ^= 0x10;
    let torn = good[..good.len() - 3].to_vec();
    let gap = [frames(first, &records[..k]), frames(seq + 1, &records[k + 1..])].concat();
    let mut tampered = pb::LogRecord::decode(records[k].as_slice()).expect("record");
    if let Some(outcome) = tampered.outcome.as_mut() {
        outcome.sequence += 1;
    }
    let mut diverging = records.clone();
    diverging[k] = tampered.encode_to_vec();
    let diverging = frames(first, &diverging);

    let last = first + records.len() as u64 - 1;
    let cases: [(&str, &[u8], bool, String, u64); 4] = [
        (
            "checksum",
            &flipped,
            true,
            format!("journal frame at offset {at}: checksum mismatch in the frame at sequence {seq}"),
            seq - 1,
        ),
        (
            "torn",
            &torn,
            true,
            format!("journal frame at offset {}: incomplete frame", offset_of(records.len() - 1)),
            last - 1,
        ),
        (
            "gap",
            &gap,
            true,
            format!("journal frame at offset {at}: sequence {} where {seq} was expected", seq + 1),
            seq - 1,
        ),
        ("divergence", &diverging, true, format!("replay diverged at sequence {seq}"), seq),
    ];
    for (name, buf, verify, message, reached) in cases {
        for pipelined in [false, true] {
            let (result, sequence, _) = run(&start, buf, verify, pipelined);
            let error = result.expect_err(name);
            assert!(error.starts_with(&message), "{name} pipelined {pipelined}: {error}");
            assert_eq!(sequence, reached, "{name} pipelined {pipelined}: stopped at the bad record");
        }
    }
    // Unchecked checksums: the flipped byte is found by the record's own checks, or replays.
    let (seq_result, seq_reached, seq_hash) = run(&start, &flipped, false, false);
    assert_eq!(run(&start, &flipped, false, true), (seq_result, seq_reached, seq_hash));
    // A first frame that is not the next sequence.
    let error = run(&start, &frames(first + 1, &records), true, true).0.expect_err("wrong start");
    assert!(error.contains(&format!("sequence {} where {first} was expected", first + 1)), "{error}");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123),
        ..ProptestConfig::default()
    })]

    /// Any damage (a flipped bit, a cut) anywhere in the frames: decoding
    /// ahead on a second thread changes nothing (result, sequence, state).
    #[test]
    fn pipelining_never_changes_the_outcome(
        bit in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        verify in any::<bool>(),
    ) {
        let (start, records, _) = journal(40);
        let mut buf = frames(start.last_sequence() + 1, &records);
        let bit = bit.index(buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        buf.truncate(cut.index(buf.len() + 1));
        prop_assert_eq!(run(&start, &buf, verify, true), run(&start, &buf, verify, false));
    }
}
