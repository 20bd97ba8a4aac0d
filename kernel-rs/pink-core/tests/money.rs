//! PnL, fees, funding and the ledger: exact to the last decimal.

use pink_core::input::{Funding, Payload};
use pink_core::output::Output;
use pink_core::pb::{DiagnosticCode as C, LedgerEntryKind as L, Side};
use pink_core::testkit::{d, expect_ok as ok, id, Driver, ETH, T0};

fn ledger(out: &Output) -> Vec<(L, String, String, String)> {
    out.ledger
        .iter()
        .map(|e| {
            (
                e.kind,
                e.amount.normalize().to_string(),
                e.capital_before.normalize().to_string(),
                e.capital_after.normalize().to_string(),
            )
        })
        .collect()
}

fn row(kind: L, amount: &str, before: &str, after: &str) -> (L, String, String, String) {
    (kind, amount.to_owned(), before.to_owned(), after.to_owned())
}

/// [S5, E18, E22, G23, A7] every fill settles its fee, every exit fill its PnL,
/// each as a ledger entry with the capital before and after.
#[test]
fn long_round_trip_books_pnl_and_fees_per_fill() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    let out = drv.fill_all(0, "100", "0.05");
    assert_eq!(ledger(&out), vec![row(L::Fee, "-0.05", "10000", "9999.95")]);
    ok(&drv.exit(0));
    let out = drv.fill_all(0, "110", "0.055");
    assert_eq!(
        ledger(&out),
        vec![row(L::RealizedPnl, "10", "9999.95", "10009.95"), row(L::Fee, "-0.055", "10009.95", "10009.895")]
    );
    let account = drv.kernel.account();
    assert_eq!(account.capital, d("10009.895"));
    assert_eq!(account.realized_pnl, d("10"));
    assert_eq!(account.fees, d("0.105"));
    assert_eq!(account.trades_closed, 1);
    let slot = drv.kernel.slot(0).unwrap();
    assert_eq!(slot.book.realized_pnl, d("10"));
    assert_eq!(slot.book.fees, d("0.105"));
    let encoded = pink_core::encode::kernel_slot(&drv.kernel, slot);
    assert_eq!(encoded.net_pnl.unwrap().value, "9.895");
    assert_eq!(encoded.exit_average_price.unwrap().value, "110");
    drv.check();
}

#[test]
fn short_pnl_has_the_right_sign_and_rebates_add_capital() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Short, "2"));
    ok(&drv.fill_all(0, "100", "-0.01"));
    ok(&drv.exit(0));
    let out = drv.fill_all(0, "95", "0");
    assert_eq!(ledger(&out), vec![row(L::RealizedPnl, "10", "10000.01", "10010.01")]);
    assert_eq!(drv.kernel.account().capital, d("10010.01"));
    drv.check();
}

/// [S5] partial exits settle immediately, not only when the trade closes.
#[test]
fn partial_exit_fills_settle_immediately() {
    let mut drv = Driver::new(1);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.exit(0));
    let cid = drv.order_id(0);
    let out = drv.fill_order(&cid, "0.3", "110", "0", "0.3", false);
    assert_eq!(ledger(&out), vec![row(L::RealizedPnl, "3", "10000", "10003")]);
    assert_eq!(drv.kernel.account().capital, d("10003"));
    drv.check();
}

/// Cost basis is released pro rata and the last exit takes the rest, so a
/// trade's total PnL is exact whatever the split.
#[test]
fn total_trade_pnl_is_exact_across_uneven_legs() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_legs(0, Side::Long, "3", &["0.5", "0.5"]));
    let cid = drv.order_id(0);
    ok(&drv.fill_order(&cid, "1", "100.1", "0", "1", false));
    ok(&drv.fill_order(&cid, "2", "99.9", "0", "3", true));
    assert_eq!(drv.kernel.slot(0).unwrap().book.cost_basis, d("299.9"));
    ok(&drv.exit(0));
    let cid = drv.order_id(0);
    let first = drv.fill_order(&cid, "1", "101", "0", "1", false);
    assert_eq!(first.ledger[0].amount, d("1.0333333333"));
    let second = drv.fill_order(&cid, "0.5", "101", "0", "1.5", true);
    ok(&second);
    ok(&drv.exit(0));
    let last = drv.fill_all(0, "102", "0");
    let total = first.ledger[0].amount + second.ledger[0].amount + last.ledger[0].amount;
    assert_eq!(total, d("4.6"), "(101 + 50.5 + 153) - 299.9");
    assert_eq!(drv.kernel.account().realized_pnl, d("4.6"));
    drv.check();
}

/// [J4, G6, J2] mark prices move unrealized PnL (never capital); equity = capital + unrealized.
#[test]
fn mark_prices_update_unrealized_pnl() {
    let mut drv = Driver::new(2);
    ok(&drv.enter(0, Side::Long, "2"));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.enter(1, Side::Short, "1"));
    ok(&drv.fill_all(1, "100", "0"));
    let out = drv.mark("BTC-USDT", "104.5");
    ok(&out);
    assert!(out.account_changed);
    assert!(out.changed_slots.is_empty(), "a mark changes no slot version");
    let outcome = pink_core::encode::outcome(&out, "tk");
    assert_eq!(outcome.revalued_symbol, "BTC-USDT");
    assert!(outcome.account_changed);
    let touched = drv.kernel.touched_slots(&out);
    assert_eq!(touched, vec![0, 1]);
    let view = pink_core::encode::view(&drv.kernel, &touched, true, false);
    let valuations: Vec<(u32, String, String)> = view
        .slots
        .iter()
        .map(|s| (s.slot_id, s.mark_price.clone().unwrap().value, s.unrealized_pnl.clone().unwrap().value))
        .collect();
    assert_eq!(valuations, vec![(0, "104.5".into(), "9".into()), (1, "104.5".into(), "-4.5".into())]);
    let account = view.account.expect("account in the view");
    assert_eq!(account.unrealized_pnl.unwrap().value, "4.5");
    assert_eq!(account.capital.unwrap().value, "10000");
    assert_eq!(account.equity.unwrap().value, "10004.5");
    // Closing at the mark realises exactly what was unrealized.
    ok(&drv.exit(0));
    ok(&drv.fill_all(0, "104.5", "0"));
    assert_eq!(drv.kernel.account().realized_pnl, d("9"));
    assert_eq!(drv.kernel.account_unrealized(), Some(d("-4.5")));
    drv.check();
}

#[test]
fn mark_for_unknown_instrument_is_refused() {
    let mut drv = Driver::new(1);
    let out = drv.mark("DOGE-USDT", "0.1");
    assert_eq!(out.code, C::UnknownInstrument);
}

/// Funding is a ledger entry, booked once per symbol and time.
#[test]
fn funding_is_booked_once() {
    let mut drv = Driver::new(1);
    let funding = Funding { funding_id: id("f1"), symbol: id(ETH), amount: d("-1.25"), time: T0 };
    let out = drv.step(Payload::Funding(funding.clone()));
    assert_eq!(ledger(&out), vec![row(L::Funding, "-1.25", "10000", "9998.75")]);
    let again = drv.step(Payload::Funding(Funding { funding_id: id("f2"), ..funding }));
    assert_eq!(again.code, C::DuplicateFunding);
    assert_eq!(drv.kernel.account().funding, d("-1.25"));
    drv.check();
}

/// Capital = initial + realized - fees + funding + adjustments, exactly, after a busy session.
#[test]
fn capital_is_conserved_exactly() {
    let mut drv = Driver::new(3);
    for round in 0..20u32 {
        let slot = round % 3;
        let side = if round % 2 == 0 { Side::Long } else { Side::Short };
        ok(&drv.enter(slot, side, "0.013"));
        ok(&drv.fill_all(slot, &format!("{}.7", 100 + round), "0.0013"));
        ok(&drv.mark("BTC-USDT", &format!("{}.3", 101 + round)));
        ok(&drv.exit(slot));
        ok(&drv.fill_all(slot, &format!("{}.1", 99 + 2 * round), "0.00123"));
        drv.check();
    }
    let a = drv.kernel.account();
    assert_eq!(a.capital, a.initial_capital + a.realized_pnl - a.fees + a.funding + a.adjustments);
    assert_eq!(a.trades_closed, 20);
    assert_eq!(a.ledger_sequence, 60);
}
