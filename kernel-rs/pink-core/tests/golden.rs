//! Golden behaviour: one digest of everything the kernel produced for a fixed,
//! seeded workload — every Outcome's protobuf bytes (prost, the reference the
//! wire encoder is tested against) of a trading loop, and the state hash after
//! every step of seeded random model-check sequences.
//!
//! Journals replay only if the kernel answers every recorded input exactly as
//! before, so a performance change must leave this digest alone. If it moves,
//! the behaviour or the encoding changed: that needs a deliberate decision
//! (and a way for existing journals to replay), not a new constant.

use pink_core::input::{Fill, Mark, Payload};
use pink_core::pb::{Side, VenueEventKind};
use pink_core::testkit::alphabet::{Explorer, ALPHABET};
use pink_core::testkit::{d, id, Driver, BTC};
use prost::Message;
use sha2::{Digest, Sha256};

const GOLDEN: &str = "03dffc23c9c6f15032e454f21cad43765c69089df21f55cfd5ab9a33dc01630a";

/// SplitMix64, as pink-verify uses it.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// Records an output of a testkit kernel (kernel id "tk").
fn record(digest: &mut Sha256, out: &pink_core::output::Output) {
    let bytes = pink_core::encode::outcome(out, "tk").encode_to_vec();
    digest.update((bytes.len() as u64).to_le_bytes());
    digest.update(bytes);
}

/// Enter, ack, partial and final fill, mark, exit, ack, fill on 4 slots, 25 rounds.
fn trading_loop(digest: &mut Sha256) {
    let mut drv = Driver::new(4);
    for round in 0..25u32 {
        for slot in 0..4u32 {
            let side = if (round + slot) % 2 == 0 { Side::Long } else { Side::Short };
            record(digest, &drv.enter(slot, side, "0.02"));
            for (quantity, cumulative, price) in [("0.01", "0.01", "100.5"), ("0.01", "0.02", "100.7")] {
                let cid = drv.order_id(slot);
                if cumulative == "0.01" {
                    let ack = drv.event(&cid, VenueEventKind::OrderAccepted, None, None);
                    record(digest, &drv.step(Payload::Venue(ack)));
                }
                let fill = Fill { quantity: d(quantity), price: d(price), fee: d("0.0004") };
                let kind = if cumulative == "0.02" { VenueEventKind::Fill } else { VenueEventKind::PartialFill };
                let event = drv.event(&cid, kind, Some(fill), Some(d(cumulative)));
                record(digest, &drv.step(Payload::Venue(event)));
            }
            let mark = Mark { symbol: id(BTC), price: d(if round % 2 == 0 { "101.3" } else { "99.9" }) };
            record(digest, &drv.step(Payload::Mark(mark)));
            record(digest, &drv.exit(slot));
            let cid = drv.order_id(slot);
            let ack = drv.event(&cid, VenueEventKind::OrderAccepted, None, None);
            record(digest, &drv.step(Payload::Venue(ack)));
            let fill = Fill { quantity: d("0.02"), price: d("100.9"), fee: d("0.0004") };
            let event = drv.event(&cid, VenueEventKind::Fill, Some(fill), Some(d("0.02")));
            record(digest, &drv.step(Payload::Venue(event)));
        }
    }
    drv.check();
    digest.update(drv.kernel.state_hash());
}

fn random_sequences(digest: &mut Sha256) -> Result<(), String> {
    let mut rng = SplitMix(20_261_122);
    for _ in 0..200 {
        let mut explorer = Explorer::new(3);
        for _ in 0..40 {
            let slot = rng.below(3) as u32;
            let symbol = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
            explorer.apply(slot, symbol)?;
            digest.update(explorer.kernel().state_hash());
        }
    }
    Ok(())
}

#[test]
fn outputs_match_the_recorded_digest() {
    let mut digest = Sha256::new();
    trading_loop(&mut digest);
    random_sequences(&mut digest).unwrap_or_else(|e| panic!("model check failed: {e}"));
    let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, GOLDEN, "the kernel's outputs changed (see the module docs)");
}
