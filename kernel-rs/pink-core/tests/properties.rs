//! proptest properties: random sequences keep every invariant, snapshots are
//! indistinguishable from the live kernel, the byte entry point never panics
//! and never changes state on rejection, and trade PnL is exact.

use proptest::prelude::*;
use prost::Message;

use pink_core::pb;
use pink_core::pb::Side;
use pink_core::testkit::alphabet::{Explorer, ALPHABET};
use pink_core::testkit::{d, Driver};
use pink_core::Kernel;

fn symbols() -> impl Strategy<Value = Vec<(u32, usize)>> {
    prop::collection::vec((0u32..3, 0usize..ALPHABET.len()), 1..80)
}

proptest! {
    // Fixed seed: every run explores the same cases, so CI is reproducible.
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_122),
        ..ProptestConfig::default()
    })]

    /// Invariants, exactly-once events, immutable terminal slots and a path
    /// back to free hold after every step of any sequence on three slots.
    #[test]
    fn random_sequences_keep_every_invariant(seq in symbols()) {
        let mut explorer = Explorer::new(3);
        for (slot, symbol) in seq {
            let result = explorer.apply(slot, ALPHABET[symbol]);
            prop_assert!(result.is_ok(), "{:?}", result);
        }
    }

    /// restore(snapshot(k)) continues exactly like k: same outcomes, same hash.
    #[test]
    fn snapshot_restore_is_indistinguishable(seq in symbols(), cut in 0usize..80) {
        let mut explorer = Explorer::new(3);
        let cut = cut.min(seq.len());
        for (slot, symbol) in &seq[..cut] {
            prop_assert!(explorer.apply(*slot, ALPHABET[*symbol]).is_ok());
        }
        let snapshot = explorer.kernel().snapshot_bytes();
        let restored = Kernel::restore_bytes(&snapshot);
        prop_assert!(restored.is_ok(), "{:?}", restored.err());
        let Ok(restored) = restored else { return Ok(()) };
        prop_assert_eq!(restored.state_hash(), explorer.kernel().state_hash());
        let mut twin = explorer.clone();
        twin.drv.kernel = restored;
        for (slot, symbol) in &seq[cut..] {
            prop_assert!(explorer.apply(*slot, ALPHABET[*symbol]).is_ok());
            prop_assert!(twin.apply(*slot, ALPHABET[*symbol]).is_ok());
            prop_assert_eq!(explorer.kernel().state_hash(), twin.kernel().state_hash());
        }
        prop_assert_eq!(explorer.kernel().snapshot_bytes(), twin.kernel().snapshot_bytes());
    }

    /// [G2, N1-adjacent fuzz] arbitrary bytes never panic; an error or a
    /// rejected outcome leaves the state as it was.
    #[test]
    fn step_bytes_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut drv = Driver::new(2);
        let hash = drv.kernel.state_hash();
        match drv.kernel.step_bytes(&bytes) {
            Err(_) => prop_assert_eq!(drv.kernel.state_hash(), hash),
            Ok(out) => {
                let outcome = pb::Outcome::decode(out.as_slice());
                prop_assert!(outcome.is_ok());
                if let Ok(outcome) = outcome {
                    prop_assert_eq!(outcome.accepted, outcome.code == pb::DiagnosticCode::Ok as i32);
                    if !outcome.accepted {
                        prop_assert_eq!(drv.kernel.state_hash(), hash);
                    }
                }
            }
        }
        prop_assert!(drv.kernel.check_invariants().is_ok());
    }

    /// Valid inputs with random bytes overwritten: no panic, rejections change nothing.
    #[test]
    fn mutated_valid_inputs_never_panic(which in 0usize..4, flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut drv = Driver::new(2);
        let time = Some(prost_types::Timestamp { seconds: pink_core::testkit::T0 / 1_000_000_000 + 1, nanos: 0 });
        let dec = |v: &str| Some(pb::Decimal { value: v.to_owned() });
        let payload = match which {
            0 => pb::kernel_input::Payload::Intent(pb::Intent {
                intent_id: "i1".into(), action: 1, symbol: "BTC-USDT".into(), side: 1, order_type: 1,
                target_size: dec("0.01"), leverage: dec("5"), reference_price: dec("100"), ..Default::default()
            }),
            1 => pb::kernel_input::Payload::VenueEvent(pb::VenueEvent {
                kind: 4, client_order_id: "tk-1".into(), venue_event_id: "e1".into(), last_quantity: dec("0.01"),
                cumulative_quantity: dec("0.01"), last_price: dec("100"), exchange_time: time, ..Default::default()
            }),
            2 => pb::kernel_input::Payload::MarkPrice(pb::MarkPrice { symbol: "BTC-USDT".into(), price: dec("101"), exchange_time: None }),
            _ => pb::kernel_input::Payload::ControlUpdate(pb::ControlUpdate { trading_enabled: Some(false), ..Default::default() }),
        };
        let mut bytes = pb::KernelInput { sequence: 0, time, trace: None, payload: Some(payload) }.encode_to_vec();
        for (at, value) in flips {
            let len = bytes.len();
            if let Some(b) = bytes.get_mut(at % len) {
                *b = value;
            }
        }
        let hash = drv.kernel.state_hash();
        if let Ok(out) = drv.kernel.step_bytes(&bytes) {
            let outcome = pb::Outcome::decode(out.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if !outcome.accepted {
                prop_assert_eq!(drv.kernel.state_hash(), hash);
            }
        } else {
            prop_assert_eq!(drv.kernel.state_hash(), hash);
        }
        prop_assert!(drv.kernel.check_invariants().is_ok());
    }

    /// Whatever the fills and legs, a closed trade's realized PnL is exactly
    /// side x (exit notional - entry notional) and capital is conserved.
    #[test]
    fn trade_pnl_is_exact(
        entries in prop::collection::vec((1u32..500, 1u32..2_000_000), 1..6),
        exit_prices in prop::collection::vec(1u32..2_000_000, 3),
        short in any::<bool>(),
    ) {
        let mut drv = Driver::new(1);
        let total: u32 = entries.iter().map(|(q, _)| q).sum();
        let size = rust_decimal::Decimal::new(i64::from(total), 3).to_string();
        let side = if short { Side::Short } else { Side::Long };
        let out = drv.enter_legs(0, side, &size, &["0.3", "0.3", "0.4"]);
        prop_assert!(out.accepted(), "{:?}", out);
        let cid = drv.order_id(0);
        let mut cumulative = 0u32;
        let mut entry_notional = rust_decimal::Decimal::ZERO;
        for (i, (q, p)) in entries.iter().enumerate() {
            cumulative += q;
            let qty = rust_decimal::Decimal::new(i64::from(*q), 3);
            let price = rust_decimal::Decimal::new(i64::from(*p), 2);
            entry_notional += qty * price;
            let last = i + 1 == entries.len();
            let out = drv.fill_order(&cid, &qty.to_string(), &price.to_string(), "0.0001", &rust_decimal::Decimal::new(i64::from(cumulative), 3).to_string(), last);
            prop_assert!(out.accepted(), "{:?}", out);
        }
        let mut exit_notional = rust_decimal::Decimal::ZERO;
        for p in &exit_prices {
            if drv.kernel.slot(0).map(|s| s.state) != Some(pink_core::pb::SlotState::PositionOpen) {
                break;
            }
            let out = drv.exit(0);
            let out = if out.code == pb::DiagnosticCode::LegBelowMinQuantity { drv.exit_residual(0) } else { out };
            prop_assert!(out.accepted(), "{:?}", out);
            let order = drv.kernel.slot(0).and_then(|s| s.order.clone()).expect("exit order");
            let price = rust_decimal::Decimal::new(i64::from(*p), 2);
            exit_notional += order.quantity * price;
            prop_assert!(drv.fill_all(0, &price.to_string(), "0").accepted());
        }
        if drv.kernel.slot(0).map(|s| s.state) == Some(pink_core::pb::SlotState::PositionOpen) {
            prop_assert!(drv.exit_residual(0).accepted());
            let order = drv.kernel.slot(0).and_then(|s| s.order.clone()).expect("residual order");
            exit_notional += order.quantity * d("1");
            prop_assert!(drv.fill_all(0, "1", "0").accepted());
        }
        let expected = if short { entry_notional - exit_notional } else { exit_notional - entry_notional };
        let slot = drv.kernel.slot(0).expect("slot");
        prop_assert_eq!(slot.state, pink_core::pb::SlotState::Closed);
        prop_assert_eq!(slot.book.realized_pnl, expected);
        prop_assert!(drv.kernel.check_invariants().is_ok());
    }
}
