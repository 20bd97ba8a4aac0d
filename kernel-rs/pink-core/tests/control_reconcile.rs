//! Control limits, the kill switch, and reconcile against the venue's truth.

use std::collections::BTreeSet;

use pink_core::input::{ControlChange, OrderTruth, Payload, Reconcile, SlotTruth};
use pink_core::output::{CommandBody, Output};
use pink_core::pb::{
    AnomalyKind as A, DiagnosticCode as C, LedgerEntryKind as L, OrderPurpose, OrderStatus, QueryReason, Side,
    SlotState as S, TransitionCause as T,
};
use pink_core::testkit::{d, expect_code as code, expect_ok as ok, id, truth, Driver, BTC, ETH};

fn control(drv: &mut Driver, change: ControlChange) -> Output {
    drv.control(change)
}

#[test]
fn kill_switch_blocks_entries_but_not_exits_or_cancels() {
    let mut drv = Driver::new(3);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.enter_limit(1, Side::Long, "1", "90", &[]));
    let out = control(
        &mut drv,
        ControlChange {
            trading_enabled: Some(false),
            actor: "ops".into(),
            reason: "test".into(),
            ..Default::default()
        },
    );
    ok(&out);
    assert_eq!(drv.kernel.control().version, 2);
    assert_eq!(drv.kernel.control().updated_by, "ops");
    code(&drv.enter(2, Side::Long, "1"), C::TradingDisabled);
    ok(&drv.exit(0));
    ok(&drv.fill_all(0, "101", "0"));
    // The working entry was already cancelled by the switch; its cancel completes it.
    ok(&drv.cancelled(1));
    assert_eq!(drv.kernel.slot(1).unwrap().state, S::Idle);
    drv.check();
}

#[test]
fn reduce_only_mode_blocks_entries() {
    let mut drv = Driver::new(2);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&control(&mut drv, ControlChange { reduce_only: Some(true), ..Default::default() }));
    code(&drv.enter(1, Side::Long, "1"), C::ReduceOnlyMode);
    ok(&drv.exit(0));
    drv.check();
}

#[test]
fn limits_are_enforced_with_specific_codes() {
    let mut drv = Driver::new(3);
    ok(&control(
        &mut drv,
        ControlChange {
            max_leverage: Some(d("3")),
            max_notional_per_slot: Some(d("150")),
            active_slot_limit: Some(1),
            allowed_symbols: Some([id(BTC)].into_iter().collect::<BTreeSet<_>>()),
            ..Default::default()
        },
    ));
    code(&drv.enter(0, Side::Long, "1"), C::LeverageAboveLimit);
    ok(&control(&mut drv, ControlChange { max_leverage: Some(d("10")), ..Default::default() }));
    code(&drv.enter(0, Side::Long, "2"), C::NotionalAboveLimit);
    ok(&drv.enter(0, Side::Long, "1"));
    code(&drv.enter(1, Side::Long, "1"), C::ActiveSlotLimit);
    let spec = Driver::enter_spec(ETH, Side::Long, "1", pink_core::model::OrderKind::Market, &[]);
    code(&drv.intent(1, pink_core::input::Action::Enter(Box::new(spec))), C::SymbolNotAllowed);
    let mut spec = Driver::enter_spec(BTC, Side::Long, "1", pink_core::model::OrderKind::Market, &[]);
    spec.reference_price = None;
    ok(&control(&mut drv, ControlChange { active_slot_limit: Some(3), ..Default::default() }));
    code(&drv.intent(1, pink_core::input::Action::Enter(Box::new(spec.clone()))), C::NoReferencePrice);
    ok(&drv.mark(BTC, "100"));
    ok(&drv.intent(1, pink_core::input::Action::Enter(Box::new(spec))));
    drv.check();
}

#[test]
fn control_updates_are_versioned_and_validated() {
    let mut drv = Driver::new(2);
    code(
        &control(
            &mut drv,
            ControlChange { expected_version: Some(5), trading_enabled: Some(false), ..Default::default() },
        ),
        C::VersionConflict,
    );
    assert!(drv.kernel.control().trading_enabled);
    let out = control(
        &mut drv,
        ControlChange { max_leverage: Some(d("126")), active_slot_limit: Some(3), ..Default::default() },
    );
    code(&out, C::InvalidInput);
    let fields: Vec<&str> = out.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, vec!["control_update.max_leverage", "control_update.active_slot_limit"]);
    assert_eq!(drv.kernel.control().version, 1);
    ok(&control(&mut drv, ControlChange { expected_version: Some(1), reduce_only: Some(true), ..Default::default() }));
    assert_eq!(drv.kernel.control().version, 2);
}

fn reconcile(drv: &mut Driver, slots: Vec<SlotTruth>, balance: Option<&str>) -> Output {
    drv.step(Payload::Reconcile(Reconcile {
        reconcile_id: id("r1"),
        slots,
        wallet_balance: balance.map(d),
        expected_capital: None,
    }))
}

/// [S11, G8, M15, F7] reconcile is checked against the slots field by field and
/// refused whole; nothing is adopted from a contradictory truth.
#[test]
fn contradictory_reconcile_is_refused_field_by_field() {
    let mut drv = Driver::new(2);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.fill_all(0, "100", "0"));
    let hash = drv.kernel.state_hash();
    let mut foreign = truth(1, Some(BTC), Side::Unspecified, "0", None);
    foreign.open_order = Some(OrderTruth {
        client_order_id: Some(id("x-1")),
        venue_order_id: None,
        status: OrderStatus::Accepted,
        filled: d("0"),
    });
    let out = reconcile(
        &mut drv,
        vec![
            truth(0, Some(ETH), Side::Short, "1", Some("100")),
            truth(0, None, Side::Unspecified, "0", None),
            truth(7, None, Side::Unspecified, "0", None),
            foreign,
        ],
        None,
    );
    code(&out, C::ReconcileConflict);
    let fields: Vec<&str> = out.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "reconcile.slots[0].symbol",
            "reconcile.slots[0].side",
            "reconcile.slots[1].slot_id",
            "reconcile.slots[2].slot_id",
            "reconcile.slots[3].open_order"
        ]
    );
    assert!(out.anomalies.iter().any(|a| a.kind == A::ForeignOrder));
    assert_eq!(drv.kernel.state_hash(), hash);
}

#[test]
fn reconcile_corrects_positions_in_the_open() {
    let mut drv = Driver::new(3);
    ok(&drv.enter(0, Side::Long, "1"));
    ok(&drv.fill_all(0, "100", "0"));
    ok(&drv.enter(1, Side::Short, "2"));
    ok(&drv.fill_all(1, "100", "0"));
    let out = reconcile(
        &mut drv,
        vec![
            truth(0, Some(BTC), Side::Long, "1", Some("100")),
            truth(1, None, Side::Unspecified, "0", None),
            truth(2, Some(ETH), Side::Long, "3", Some("20")),
        ],
        None,
    );
    ok(&out);
    let moves: Vec<(S, S, T)> = out.transitions.iter().map(|t| (t.from, t.to, t.cause)).collect();
    assert_eq!(moves, vec![(S::PositionOpen, S::Closed, T::Reconcile), (S::Idle, S::PositionOpen, T::Reconcile)]);
    assert_eq!(out.anomalies.iter().filter(|a| a.kind == A::PositionAdjusted).count(), 2);
    let adopted = drv.kernel.slot(2).unwrap();
    assert_eq!(adopted.book.position, d("3"));
    assert_eq!(adopted.book.cost_basis, d("60"));
    assert!(adopted.trade_id.is_some());
    ok(&drv.exit(2));
    drv.check();
}

/// A balance difference becomes an ADJUSTMENT ledger entry; conservation holds.
#[test]
fn balance_difference_is_an_adjustment() {
    let mut drv = Driver::new(1);
    let out = reconcile(&mut drv, vec![], Some("9990.5"));
    ok(&out);
    assert_eq!(out.ledger.len(), 1);
    assert_eq!(out.ledger[0].kind, L::Adjustment);
    assert_eq!(out.ledger[0].amount, d("-9.5"));
    assert!(out.anomalies.iter().any(|a| a.kind == A::BalanceAdjusted));
    assert_eq!(drv.kernel.account().adjustments, d("-9.5"));
    let out = reconcile(&mut drv, vec![], Some("9990.5"));
    assert!(out.ledger.is_empty(), "no difference, no entry");
    drv.check();
}

/// A reconcile built against slot versions or a capital the kernel has moved
/// past (a fill applied while the venue was being read) is refused whole with
/// VERSION_CONFLICT and changes nothing; built against the current state it
/// applies.
#[test]
fn stale_reconcile_is_refused_whole() {
    let mut drv = Driver::new(2);
    ok(&drv.enter(0, Side::Long, "1"));
    let seen_version = drv.kernel.slot(0).unwrap().version;
    let seen_capital = drv.kernel.account().capital;
    ok(&drv.fill_all(0, "100", "0.05"));
    let hash = drv.kernel.state_hash();
    let mut stale = truth(0, None, Side::Unspecified, "0", None);
    stale.expected_version = Some(seen_version);
    let out = drv.step(Payload::Reconcile(Reconcile {
        reconcile_id: id("r-stale"),
        slots: vec![stale],
        wallet_balance: Some(d("10000")),
        expected_capital: Some(seen_capital),
    }));
    code(&out, C::VersionConflict);
    let fields: Vec<&str> = out.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, vec!["reconcile.slots[0].expected_version", "reconcile.expected_capital"]);
    assert!(out.transitions.is_empty() && out.ledger.is_empty());
    assert_eq!(drv.kernel.state_hash(), hash, "nothing of a stale truth is applied");
    let mut current = truth(0, Some(BTC), Side::Long, "1", Some("100"));
    current.expected_version = Some(drv.kernel.slot(0).unwrap().version);
    let capital = drv.kernel.account().capital;
    let out = drv.step(Payload::Reconcile(Reconcile {
        reconcile_id: id("r-now"),
        slots: vec![current],
        wallet_balance: Some(capital),
        expected_capital: Some(capital),
    }));
    ok(&out);
    assert!(out.ledger.is_empty() && out.transitions.is_empty(), "the truth matches: nothing to change");
    drv.check();
}

/// A working order the venue does not list is queried, never guessed.
#[test]
fn reconcile_queries_orders_the_venue_does_not_list() {
    let mut drv = Driver::new(1);
    ok(&drv.enter_limit(0, Side::Long, "1", "90", &[]));
    let out = reconcile(&mut drv, vec![truth(0, None, Side::Unspecified, "0", None)], None);
    ok(&out);
    assert!(matches!(out.commands[0].body, CommandBody::Query(_, QueryReason::Reconcile)));
    assert_eq!(drv.kernel.slot(0).unwrap().state, S::EntryPending);
    // Listed with fills the kernel has not seen: learn the id, ask for the fills.
    let cid = drv.order_id(0);
    let mut listed = truth(0, Some(BTC), Side::Long, "0.2", Some("90"));
    listed.open_order = Some(OrderTruth {
        client_order_id: Some(cid),
        venue_order_id: Some(id("v77")),
        status: OrderStatus::PartiallyFilled,
        filled: d("0.2"),
    });
    let out = reconcile(&mut drv, vec![listed], None);
    ok(&out);
    assert!(out.commands.iter().any(|c| matches!(c.body, CommandBody::Query(_, QueryReason::FillGap))));
    let order = drv.kernel.slot(0).unwrap().order.clone().unwrap();
    assert_eq!(order.venue_order_id.as_deref(), Some("v77"));
    assert_eq!(order.fills.venue_cumulative, d("0.2"));
    ok(&drv.cancel(0, Some(OrderPurpose::Entry)));
    drv.check();
}
