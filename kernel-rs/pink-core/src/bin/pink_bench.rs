//! Kernel benchmarks (ACCEPTANCE.md "Performance"). Reports figures; asserts
//! nothing about speed.
//!   step:          Kernel::step on validated inputs (inputs/s)
//!   bytes:         decode + step + encode through Kernel::step_bytes (inputs/s)
//!   snapshot:      snapshot and restore of a 10,000-slot kernel (ms, bytes)
//! The workload is a realistic trading loop over 10 slots: enter, ack, fill,
//! mark, exit, ack, fill, mark. It is recorded once with the test driver and
//! replayed on fresh kernels, which determinism makes exact.
//!
//! Usage: pink-bench [--inputs N] [--rounds N (default 20)] [--out PATH] [--export PATH]
//!                   [--only-step | --only-bytes | --by-kind | --marks]
//! --export writes the config and the encoded inputs (u32 little-endian
//! length prefixes) for the PyO3 benchmark.

use std::io::Write;
use std::time::Instant;

use prost::Message;

use pink_core::input::{Action, Fill, Input, Intent, Mark, Payload};
use pink_core::model::OrderKind;
use pink_core::pb::{Side, VenueEventKind};
use pink_core::snapshot::config_message;
use pink_core::testkit::{config, d, id, Driver, BTC};
use pink_core::Kernel;

/// The PyO3 extension's allocator, so that these figures are the deployed kernel's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SLOTS: u32 = 10;
/// Inputs per replay chunk.
const CHUNK: usize = 512;

/// Steps `payload` (it must be accepted) and records it as an input.
fn push(drv: &mut Driver, inputs: &mut Vec<Input>, payload: Payload) {
    let input = Input { sequence: 0, time: drv.now + 1_000_000, payload: payload.clone() };
    let out = drv.step(payload);
    assert!(out.accepted(), "workload input refused: {:?} {}", out.code, out.message);
    inputs.push(input);
}

/// The venue's side of one order: ack, one complete fill, then a mark price.
fn ack_fill_mark(drv: &mut Driver, inputs: &mut Vec<Input>, slot: u32, fill_price: &str, mark_price: &str) {
    let cid = drv.order_id(slot);
    let ack = drv.event(&cid, VenueEventKind::OrderAccepted, None, None);
    push(drv, inputs, Payload::Venue(ack));
    let fill = Fill { quantity: d("0.01"), price: d(fill_price), fee: d("0.0005") };
    let event = drv.event(&cid, VenueEventKind::Fill, Some(fill), Some(d("0.01")));
    push(drv, inputs, Payload::Venue(event));
    push(drv, inputs, Payload::Mark(Mark { symbol: id(BTC), price: d(mark_price) }));
}

/// Records `count` inputs of the trading loop and the kernel state before them.
fn record(count: usize) -> (Kernel, Vec<Input>) {
    let mut drv = Driver::new(SLOTS);
    let start = drv.kernel.clone();
    let mut inputs = Vec::with_capacity(count);
    let mut round: u64 = 0;
    while inputs.len() < count {
        round += 1;
        let price = if round % 2 == 0 { "100.5" } else { "101.25" };
        for slot in 0..SLOTS {
            let side = if (round + u64::from(slot)) % 2 == 0 { Side::Long } else { Side::Short };
            let spec = Driver::enter_spec(BTC, side, "0.01", OrderKind::Market, &[]);
            let enter = Intent {
                intent_id: id(&format!("b{round}-{slot}")),
                slot,
                expected_version: None,
                action: Action::Enter(Box::new(spec)),
            };
            push(&mut drv, &mut inputs, Payload::Intent(enter));
            ack_fill_mark(&mut drv, &mut inputs, slot, price, "100.75");
            let exit = Intent {
                intent_id: id(&format!("x{round}-{slot}")),
                slot,
                expected_version: None,
                action: Action::Exit(OrderKind::Market),
            };
            push(&mut drv, &mut inputs, Payload::Intent(exit));
            ack_fill_mark(&mut drv, &mut inputs, slot, "100.8", price);
        }
    }
    drv.check();
    (start, inputs)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Rates of `rounds` runs: the best (the figure reported, the least disturbed
/// run) and the median (how much the machine disturbed the others).
#[derive(Clone, Copy, Default)]
struct Rates {
    best: f64,
    median: f64,
}

fn rates(rounds: usize, mut run: impl FnMut() -> (usize, f64)) -> Rates {
    let mut all: Vec<f64> = (0..rounds).map(|_| run()).map(|(n, secs)| n as f64 / secs).collect();
    all.sort_by(f64::total_cmp);
    Rates { best: all.last().copied().unwrap_or(0.0), median: all.get(all.len() / 2).copied().unwrap_or(0.0) }
}

fn ten_thousand_slots() -> Kernel {
    let mut cfg = config(10_000);
    cfg.retired_order_memory = 10_000;
    let mut drv = Driver::with_config(cfg);
    assert!(drv.mark(BTC, "100").accepted());
    for slot in 0..10_000u32 {
        assert!(drv.enter(slot, Side::Long, "0.01").accepted());
        assert!(drv.ack(slot).accepted());
        assert!(drv.fill_all(slot, "100", "0.0005").accepted());
        if slot % 2 == 0 {
            assert!(drv.exit(slot).accepted());
            assert!(drv.ack(slot).accepted());
        }
    }
    drv.check();
    drv.kernel
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = arg(&args, "--inputs").map_or(400_000, |v| v.parse().expect("--inputs takes a number"));
    let rounds: usize = arg(&args, "--rounds").map_or(20, |v| v.parse().expect("--rounds takes a number"));

    let (start, inputs) = record(count);
    let encoded: Vec<Vec<u8>> = inputs.iter().map(|i| pink_core::encode::input(i, "USDT").encode_to_vec()).collect();
    let n = inputs.len();

    // Inputs are replayed in cache-sized chunks: a live kernel steps each input
    // right after decoding it, so a replay that streams 100 MB of cold inputs
    // would measure memory bandwidth, not the kernel.
    let only_bytes = args.iter().any(|a| a == "--only-bytes");
    let step = if only_bytes {
        Rates::default()
    } else {
        rates(rounds, || {
            let mut kernel = start.clone();
            let mut out = pink_core::output::Output::default();
            let mut secs = 0.0;
            for chunk in inputs.chunks(CHUNK) {
                let batch = chunk.to_vec();
                let began = Instant::now();
                for input in batch {
                    kernel.step_into(input, &mut out);
                    std::hint::black_box(&out);
                }
                secs += began.elapsed().as_secs_f64();
            }
            assert!(kernel.check_invariants().is_ok());
            (n, secs)
        })
    };
    if args.iter().any(|a| a == "--marks") {
        let mut kernel = start.clone();
        let marks: Vec<Input> = (0..1_000_000i64)
            .map(|i| Input {
                sequence: 0,
                time: start.clock().unwrap_or(0) + 1_000 * (i + 1),
                payload: Payload::Mark(pink_core::input::Mark {
                    symbol: id(BTC),
                    price: rust_decimal::Decimal::new(10_000 + i % 7, 2),
                }),
            })
            .collect();
        let mut out = pink_core::output::Output::default();
        let began = Instant::now();
        for input in marks {
            kernel.step_into(input, &mut out);
            std::hint::black_box(&out);
        }
        println!("marks: {:.0} ns/input", began.elapsed().as_secs_f64() * 1e9 / 1e6);
        return;
    }
    if args.iter().any(|a| a == "--by-kind") {
        // Per-kind cost: each kind stepped alone against the same states.
        let mut totals = std::collections::BTreeMap::<&str, (f64, u64)>::new();
        let mut kernel = start.clone();
        let mut out = pink_core::output::Output::default();
        let floor = {
            let began = Instant::now();
            for _ in 0..100_000 {
                std::hint::black_box(Instant::now());
            }
            began.elapsed().as_secs_f64() / 100_000.0
        };
        for input in inputs.iter().cloned() {
            let kind = match &input.payload {
                Payload::Intent(i) if matches!(i.action, pink_core::input::Action::Enter(_)) => "enter",
                Payload::Intent(_) => "exit",
                Payload::Venue(e) if e.fill.is_some() => "fill",
                Payload::Venue(_) => "ack",
                Payload::Mark(_) => "mark",
                _ => "other",
            };
            let began = Instant::now();
            kernel.step_into(input, &mut out);
            std::hint::black_box(&out);
            let entry = totals.entry(kind).or_insert((0.0, 0));
            entry.0 += began.elapsed().as_secs_f64() - floor;
            entry.1 += 1;
        }
        for (kind, (secs, count)) in totals {
            println!("{kind:>6}: {:>8.0} ns/input", secs * 1e9 / count as f64);
        }
        return;
    }
    let only_step = args.iter().any(|a| a == "--only-step");
    if only_step {
        println!("step (validated inputs): {:.0} inputs/s (median of rounds {:.0})", step.best, step.median);
        return;
    }
    // Decode + step + encode into the kernel's reused outcome buffer
    // (`step_encoded`, what a Rust caller such as replay uses); `owned` also
    // copies each outcome into a fresh `Vec` (`step_bytes`), as a caller that
    // keeps outcomes must.
    let bytes_run = |owned: bool| {
        rates(rounds, || {
            let mut kernel = start.clone();
            let mut secs = 0.0;
            for chunk in encoded.chunks(CHUNK) {
                let batch = chunk.to_vec();
                let began = Instant::now();
                for bytes in &batch {
                    if owned {
                        std::hint::black_box(kernel.step_bytes(bytes).expect("decodable"));
                    } else {
                        std::hint::black_box(kernel.step_encoded(bytes).expect("decodable"));
                    }
                }
                secs += began.elapsed().as_secs_f64();
            }
            assert_eq!(kernel.last_sequence(), start.last_sequence() + n as u64, "every input accepted");
            (n, secs)
        })
    };
    let bytes = bytes_run(false);
    if only_bytes {
        println!("decode + step + encode: {:.0} inputs/s (median of rounds {:.0})", bytes.best, bytes.median);
        return;
    }
    let owned = bytes_run(true);
    let big = ten_thousand_slots();
    let mut snapshot = Vec::new();
    let mut snapshot_ms = f64::MAX;
    let mut restore_ms = f64::MAX;
    for _ in 0..rounds {
        let began = Instant::now();
        snapshot = big.snapshot_bytes();
        snapshot_ms = snapshot_ms.min(began.elapsed().as_secs_f64() * 1e3);
        let began = Instant::now();
        let restored = Kernel::restore_bytes(&snapshot).expect("restores");
        restore_ms = restore_ms.min(began.elapsed().as_secs_f64() * 1e3);
        assert_eq!(restored.last_sequence(), big.last_sequence());
    }

    println!(
        "workload: {n} inputs over {SLOTS} slots (enter, ack, fill, mark, exit, ack, fill, mark), best of {rounds}"
    );
    println!(
        "step (validated inputs):      {:>12.0} inputs/s   (target >= 5,000,000; median of rounds {:.0})",
        step.best, step.median
    );
    println!(
        "decode + step + encode:       {:>12.0} inputs/s   (target >= 1,000,000; median of rounds {:.0})",
        bytes.best, bytes.median
    );
    println!("  ... + copy to an owned Vec: {:>12.0} inputs/s   (median of rounds {:.0})", owned.best, owned.median);
    println!("snapshot 10,000 slots:        {snapshot_ms:>12.2} ms  ({} bytes)", snapshot.len());
    println!("restore 10,000 slots:         {restore_ms:>12.2} ms",);

    if let Some(path) = arg(&args, "--out") {
        let json = format!(
            "{{\n  \"benchmark\": \"kernel_rust\",\n  \"inputs\": {n},\n  \"rounds\": {rounds},\n  \"slots\": {SLOTS},\n  \"step_inputs_per_second\": {:.0},\n  \"step_inputs_per_second_median\": {:.0},\n  \"decode_step_encode_inputs_per_second\": {:.0},\n  \"decode_step_encode_inputs_per_second_median\": {:.0},\n  \"decode_step_encode_owned_inputs_per_second\": {:.0},\n  \"decode_step_encode_owned_inputs_per_second_median\": {:.0},\n  \"snapshot_10k_slots_ms\": {snapshot_ms:.3},\n  \"restore_10k_slots_ms\": {restore_ms:.3},\n  \"snapshot_10k_slots_bytes\": {}\n}}\n",
            step.best,
            step.median,
            bytes.best,
            bytes.median,
            owned.best,
            owned.median,
            snapshot.len()
        );
        std::fs::write(&path, json).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    if let Some(path) = arg(&args, "--export") {
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {path}: {e}"));
        let cfg = config_message(start.config()).encode_to_vec();
        let prefix = |len: usize| u32::try_from(len).expect("frame fits u32").to_le_bytes();
        let mut write = |bytes: &[u8]| {
            file.write_all(&prefix(bytes.len())).and_then(|()| file.write_all(bytes)).expect("write export");
        };
        write(&cfg);
        write(&start.snapshot_bytes());
        for bytes in &encoded {
            write(bytes);
        }
        println!("exported config, snapshot and {n} inputs to {path}");
    }
}
