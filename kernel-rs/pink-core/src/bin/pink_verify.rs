//! Model check of the kernel (ACCEPTANCE.md "FSM model check"):
//!   1. every sequence of the 15-symbol alphabet up to depth 6 on one slot;
//!   2. N seeded random sequences over three slots (default 100000 x 40 steps).
//!
//! After every step: invariants (capital conservation, sizes, indexes), no
//! event applied twice, rejected inputs change nothing, terminal slots
//! immutable, and every slot has a path back to a free state.
//!
//! Usage: pink-verify [--depth N] [--random N] [--length N] [--seed N] [--record PATH]

use std::time::Instant;

use pink_core::testkit::alphabet::{Explorer, Symbol, ALPHABET};

#[derive(Default)]
struct Stats {
    nodes: u64,
    applied: u64,
    pruned: u64,
}

fn explore(explorer: &Explorer, depth: usize, path: &mut Vec<Symbol>, stats: &mut Stats) -> Result<(), String> {
    if depth == 0 {
        return Ok(());
    }
    for symbol in ALPHABET {
        let mut child = explorer.clone();
        path.push(symbol);
        stats.nodes += 1;
        match child.apply(0, symbol) {
            Ok(true) => {
                stats.applied += 1;
                explore(&child, depth - 1, path, stats)?;
            }
            // The symbol means nothing here and changed nothing: its subtree is
            // the parent's subtree one step shorter, already explored.
            Ok(false) => stats.pruned += 1,
            Err(e) => return Err(format!("{e}\n  sequence: {path:?}")),
        }
        path.pop();
    }
    Ok(())
}

/// SplitMix64: a tiny, well-known seeded generator so runs are reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random(count: u64, length: usize, seed: u64) -> Result<(u64, u64), String> {
    let mut rng = SplitMix(seed);
    let mut steps = 0;
    let mut accepted = 0;
    for run in 0..count {
        let mut explorer = Explorer::new(3);
        let mut path = Vec::with_capacity(length);
        for _ in 0..length {
            let slot = rng.below(3) as u32;
            let symbol = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
            path.push((slot, symbol));
            explorer.apply(slot, symbol).map_err(|e| format!("{e}\n  run {run} (seed {seed}): {path:?}"))?;
        }
        steps += explorer.steps;
        accepted += explorer.accepted;
    }
    Ok((steps, accepted))
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let depth = arg(&args, "--depth", 6) as usize;
    let count = arg(&args, "--random", 100_000);
    let length = arg(&args, "--length", 40) as usize;
    let seed = arg(&args, "--seed", 20261122);
    let record = args.iter().position(|a| a == "--record").and_then(|i| args.get(i + 1)).cloned();

    let started = Instant::now();
    let mut stats = Stats::default();
    if let Err(e) = explore(&Explorer::new(1), depth, &mut Vec::new(), &mut stats) {
        eprintln!("MODEL CHECK FAILED (exhaustive): {e}");
        std::process::exit(1);
    }
    let exhaustive_secs = started.elapsed().as_secs_f64();
    let sequences = (ALPHABET.len() as u64).pow(depth as u32);
    println!(
        "exhaustive: all {sequences} sequences of {} symbols to depth {depth}: {} steps checked ({} applied, {} pruned as no-ops) in {exhaustive_secs:.1}s",
        ALPHABET.len(),
        stats.nodes,
        stats.applied,
        stats.pruned
    );

    let started = Instant::now();
    let (steps, accepted) = match random(count, length, seed) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("MODEL CHECK FAILED (random): {e}");
            std::process::exit(1);
        }
    };
    let random_secs = started.elapsed().as_secs_f64();
    println!("random: {count} sequences x {length} steps over 3 slots (seed {seed}): {steps} steps, {accepted} accepted, in {random_secs:.1}s");
    println!("model check passed");

    if let Some(path) = record {
        let json = format!(
            "{{\n  \"benchmark\": \"model_check\",\n  \"depth\": {depth},\n  \"alphabet\": {},\n  \"sequences\": {sequences},\n  \"exhaustive_steps\": {},\n  \"exhaustive_applied\": {},\n  \"exhaustive_pruned\": {},\n  \"exhaustive_seconds\": {exhaustive_secs:.2},\n  \"random_sequences\": {count},\n  \"random_length\": {length},\n  \"random_seed\": {seed},\n  \"random_steps\": {steps},\n  \"random_accepted\": {accepted},\n  \"random_seconds\": {random_secs:.2}\n}}\n",
            ALPHABET.len(),
            stats.nodes,
            stats.applied,
            stats.pruned
        );
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
}
