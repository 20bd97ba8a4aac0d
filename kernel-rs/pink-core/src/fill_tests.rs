//! `plan_small` against `plan_general`: the same plan, value and scale, or
//! the fall-back.

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

/// Every amount of a plan, bit for bit (mantissa, scale and sign), and its flags.
fn bits(plan: &FillPlan) -> (Vec<[u8; 16]>, bool, bool, Option<[u8; 16]>) {
    let amounts = [
        plan.applied,
        plan.excess,
        plan.filled,
        plan.order_notional,
        plan.order_fees,
        plan.venue_cumulative,
        plan.position,
        plan.cost_basis,
        plan.side_quantity,
        plan.side_notional,
        plan.book_fees,
        plan.book_realized,
        plan.leg_filled,
        plan.capital_after_pnl,
        plan.account_realized,
        plan.capital_after_fee,
        plan.account_fees,
    ];
    (amounts.iter().map(Decimal::serialize).collect(), plan.covers, plan.gap, plan.gross.map(|g| g.serialize()))
}

fn account(capital: Decimal, realized: Decimal, fees: Decimal) -> Account {
    Account {
        initial_capital: capital,
        capital,
        realized_pnl: realized,
        fees,
        funding: Decimal::ZERO,
        adjustments: Decimal::ZERO,
        ledger_sequence: 0,
        trades_closed: 0,
        active_slots: 0,
    }
}

/// Compares both plans; returns whether the small one applied.
fn same_plan(on: FillOn<'_>, fill: &Fill, cumulative: Decimal) -> Result<bool, TestCaseError> {
    let mut general = FillPlan::default();
    let want = plan_general(&mut general, on, fill, cumulative);
    let mut small = FillPlan::default();
    let fast = plan_small(&mut small, on, fill, cumulative).is_some();
    if fast {
        prop_assert!(want.is_ok(), "small plan where the general one refuses: {:?}", want);
        prop_assert_eq!(bits(&small), bits(&general));
    }
    let mut chosen = FillPlan::default();
    let got = plan_fill(&mut chosen, on, fill, cumulative);
    prop_assert_eq!(got, want);
    if want.is_ok() {
        prop_assert_eq!(bits(&chosen), bits(&general));
    }
    Ok(fast)
}

/// Mantissas of every width around the i64 boundary, scales 0..=28, zeros
/// of several scales and "-0".
fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        4 => (-1_000_000i64..1_000_000, 0u32..9).prop_map(|(m, s)| Decimal::new(m, s)),
        2 => (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
        1 => (any::<i64>(), 0u32..=28, 0u32..3)
            .prop_map(|(m, s, w)| Decimal::from_i128_with_scale(i128::from(m) << (w * 16), s)),
        1 => (i64::MAX - 3..=i64::MAX, 0u32..=28, any::<bool>())
            .prop_map(|(m, s, n)| Decimal::new(if n { -m } else { m }, s)),
        1 => (0u32..=28, any::<bool>()).prop_map(|(s, n)| {
            let mut zero = Decimal::new(0, s);
            zero.set_sign_negative(n);
            zero
        }),
    ]
}

/// A positive quantity (most fills) with an occasional odd one.
fn quantity() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        6 => (1i64..100_000, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s)),
        1 => amount(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123),
        ..ProptestConfig::default()
    })]

    #[test]
    fn small_plan_is_the_general_plan(
        quantity in quantity(),
        fills in (quantity(), amount(), amount(), quantity(), any::<[bool; 4]>()),
        entry in any::<bool>(),
        book in proptest::collection::vec(amount(), 9),
        zero_book in any::<[bool; 9]>(),
        position in quantity(),
        short in any::<bool>(),
        acct in (amount(), amount(), amount()),
        fill in (quantity(), quantity(), amount(), any::<bool>()),
        cumulative in quantity(),
        pnl_scale in 0u32..12,
    ) {
        let pick = |zero: bool, value: Decimal| if zero { Decimal::ZERO } else { value };
        let (filled, notional, fees, venue, zero) = fills;
        let fills = OrderFills {
            filled: pick(zero[0], filled),
            notional: pick(zero[1], notional),
            fees: pick(zero[2], fees),
            venue_cumulative: pick(zero[3], venue),
        };
        let b = |i: usize| pick(zero_book[i], book[i]);
        let book = Book {
            position: if zero_book[0] { Decimal::ZERO } else { position },
            entry_quantity: b(1),
            entry_notional: b(2),
            cost_basis: b(3),
            exit_quantity: b(4),
            exit_notional: b(5),
            realized_pnl: b(6),
            fees: b(7),
            leg_filled: b(8),
        };
        let account = account(acct.0, acct.1, acct.2);
        let fill = Fill { quantity: fill.0, price: fill.1, fee: if fill.3 { Decimal::ZERO } else { fill.2 } };
        let on = FillOn {
            quantity,
            fills: &fills,
            purpose: if entry { OrderPurpose::Entry } else { OrderPurpose::Exit },
            book: &book,
            side: if short { Side::Short } else { Side::Long },
            account: &account,
            pnl_scale,
        };
        same_plan(on, &fill, cumulative)?;
    }
}

/// The bench's fills (an entry, then the full exit) take the small plan.
#[test]
fn usual_fills_take_the_small_plan() {
    let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
    let account = account(d("10000"), d("-1.25"), d("0.0015"));
    let fill = Fill { quantity: d("0.01"), price: d("101.25"), fee: d("0.0005") };
    let fills = OrderFills::default();
    let mut book = Book::default();
    for (purpose, side) in [(OrderPurpose::Entry, Side::Long), (OrderPurpose::Exit, Side::Short)] {
        let on =
            FillOn { quantity: d("0.01"), fills: &fills, purpose, book: &book, side, account: &account, pnl_scale: 8 };
        assert_eq!(same_plan(on, &fill, d("0.01")).ok(), Some(true), "{purpose:?}");
        book.position = d("0.01");
        book.cost_basis = d("1.0125");
        book.fees = d("0.0005");
    }
    // A partial exit releases cost through the rounded division.
    book.position = d("0.03");
    let on = FillOn {
        quantity: d("0.03"),
        fills: &fills,
        purpose: OrderPurpose::Exit,
        book: &book,
        side: Side::Long,
        account: &account,
        pnl_scale: 8,
    };
    assert_eq!(same_plan(on, &fill, d("0.01")).ok(), Some(true));
}
