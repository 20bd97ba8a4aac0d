//! Reconcile: the venue's truth, checked against every slot before any of
//! it is adopted. Contradictions are reported field by field; positions the
//! kernel got wrong are corrected in the open (anomalies, transitions) and
//! capital differences go through an ADJUSTMENT ledger entry.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::input::{Reconcile, SlotTruth};
use crate::kernel::{Change, Ctx, Kernel};
use crate::model::Book;
use crate::num;
use crate::output::{Anomaly, Reject, Step, Violation};
use crate::pb::{AnomalyKind, DiagnosticCode, LedgerEntryKind, QueryReason, Side, SlotState, TransitionCause};
use crate::text::Id;

enum Plan {
    /// Position matches; nothing to do.
    Keep,
    /// The slot's order is not open at the venue: ask for its final status.
    Query,
    /// The venue lists the slot's order; learn its id / reported fills.
    Learn { venue_order_id: Option<Id>, cumulative: Option<Decimal> },
    /// Set the position of the slot's trade to the venue's (0 closes it).
    Resize { book: Book },
    /// A position on a free slot: adopt it as a new trade.
    Adopt { symbol: Id, side: Side, book: Book },
}

fn ovf(what: &str) -> Reject {
    Reject::overflow(what)
}

impl Kernel {
    fn judge(
        &self,
        path: &str,
        truth: &SlotTruth,
        violations: &mut Vec<Violation>,
        anomalies: &mut Vec<Anomaly>,
    ) -> Step<Plan> {
        let Some(slot) = self.slots.get(truth.slot as usize) else {
            violations.push(Violation::new(format!("{path}.slot_id"), format!("slot {} does not exist", truth.slot)));
            return Ok(Plan::Keep);
        };
        match (&slot.order, &truth.open_order) {
            (None, Some(open)) => {
                let named = open.client_order_id.as_deref().or(open.venue_order_id.as_deref()).unwrap_or("-");
                violations.push(Violation::new(
                    format!("{path}.open_order"),
                    format!(
                        "slot {} has no working order but the venue lists {named}; a foreign order is not adopted",
                        slot.id
                    ),
                ));
                anomalies.push(
                    Anomaly::new(
                        AnomalyKind::ForeignOrder,
                        format!("venue lists order {named} on slot {} unknown to the kernel", slot.id),
                    )
                    .slot(slot.id, slot.trade_id.as_ref())
                    .reconcile(),
                );
                Ok(Plan::Keep)
            }
            (Some(order), Some(open)) => {
                if open.client_order_id.as_ref().is_some_and(|c| *c != order.client_order_id(&self.cfg.kernel_id)) {
                    violations.push(Violation::new(
                        format!("{path}.open_order.client_order_id"),
                        format!("is not the slot's working order {}", order.client_order_id(&self.cfg.kernel_id)),
                    ));
                }
                if let (Some(theirs), Some(ours)) = (&open.venue_order_id, &order.venue_order_id) {
                    if theirs != ours {
                        violations.push(Violation::new(
                            format!("{path}.open_order.venue_order_id"),
                            format!("is not the slot's working order's venue id {ours}"),
                        ));
                    }
                }
                if let Some(theirs) = &open.venue_order_id {
                    if self.venue_ids.get(theirs).is_some_and(|owner| *owner != order.number) {
                        violations.push(Violation::new(
                            format!("{path}.open_order.venue_order_id"),
                            "belongs to another order of this kernel".to_owned(),
                        ));
                    }
                }
                if truth.symbol.as_ref().is_some_and(|s| *s != order.symbol) {
                    violations.push(Violation::new(
                        format!("{path}.symbol"),
                        format!("is not the order's symbol {}", order.symbol),
                    ));
                }
                let venue_order_id = match (&order.venue_order_id, &open.venue_order_id) {
                    (None, Some(theirs)) => Some(theirs.clone()),
                    _ => None,
                };
                let cumulative = (open.filled > order.fills.venue_cumulative).then_some(open.filled);
                Ok(Plan::Learn { venue_order_id, cumulative })
            }
            (Some(_), None) => Ok(Plan::Query),
            (None, None) => self.judge_position(path, truth, violations),
        }
    }

    fn judge_position(&self, path: &str, truth: &SlotTruth, violations: &mut Vec<Violation>) -> Step<Plan> {
        let Some(slot) = self.slots.get(truth.slot as usize) else { return Ok(Plan::Keep) };
        let has_position = slot.state == SlotState::PositionOpen;
        if truth.position.is_zero() {
            if !has_position {
                return Ok(Plan::Keep);
            }
            let mut book = slot.book;
            book.position = Decimal::ZERO;
            book.cost_basis = Decimal::ZERO;
            book.exit_quantity = book.entry_quantity;
            return Ok(Plan::Resize { book });
        }
        let (Some(symbol), Some(entry_price)) = (truth.symbol.clone(), truth.entry_price) else {
            return Ok(Plan::Keep);
        };
        let cost = num::mul(truth.position, entry_price).ok_or_else(|| ovf("reconciled cost basis"))?;
        if has_position {
            if slot.symbol.as_ref() != Some(&symbol) {
                violations.push(Violation::new(
                    format!("{path}.symbol"),
                    format!(
                        "venue position in {symbol} contradicts the slot's trade in {}",
                        slot.symbol.as_deref().unwrap_or("-")
                    ),
                ));
            }
            if slot.side != truth.side {
                violations.push(Violation::new(
                    format!("{path}.side"),
                    format!(
                        "venue position is {} but the slot's trade is {}",
                        truth.side.as_str_name(),
                        slot.side.as_str_name()
                    ),
                ));
            }
            if truth.position == slot.book.position {
                return Ok(Plan::Keep);
            }
            let mut book = slot.book;
            book.position = truth.position;
            book.cost_basis = cost;
            if truth.position <= book.entry_quantity {
                book.exit_quantity =
                    num::sub(book.entry_quantity, truth.position).ok_or_else(|| ovf("exit quantity"))?;
            } else {
                book.entry_quantity =
                    num::add(book.exit_quantity, truth.position).ok_or_else(|| ovf("entry quantity"))?;
            }
            return Ok(Plan::Resize { book });
        }
        let book = Book {
            position: truth.position,
            entry_quantity: truth.position,
            entry_notional: cost,
            cost_basis: cost,
            ..Book::default()
        };
        Ok(Plan::Adopt { symbol, side: truth.side, book })
    }

    /// A reconcile built against slot versions or a capital the kernel has
    /// moved past is refused whole: the venue snapshot may predate facts the
    /// kernel already applied, and adopting it would undo them.
    fn check_stale(&self, reconcile: &Reconcile) -> Step<()> {
        let mut stale = Vec::new();
        for (i, truth) in reconcile.slots.iter().enumerate() {
            let current = self.slots.get(truth.slot as usize).map(|s| s.version);
            if let (Some(expected), Some(current)) = (truth.expected_version, current) {
                if expected != current {
                    stale.push(Violation::new(
                        format!("reconcile.slots[{i}].expected_version"),
                        format!("slot {} is at version {current}, the truth was built against {expected}", truth.slot),
                    ));
                }
            }
        }
        if let Some(expected) = reconcile.expected_capital {
            if expected != self.account.capital {
                stale.push(Violation::new(
                    "reconcile.expected_capital",
                    format!(
                        "capital is {}, the balance was compared with {}",
                        num::to_text(self.account.capital),
                        num::to_text(expected)
                    ),
                ));
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        let mut reject = Reject::invalid(stale);
        reject.code = DiagnosticCode::VersionConflict;
        reject.message = format!("reconcile {} was built against an older state", reconcile.reconcile_id);
        Err(reject)
    }

    pub(crate) fn on_reconcile(&mut self, cx: &mut Ctx<'_>, reconcile: Reconcile) -> Step {
        self.check_stale(&reconcile)?;
        let mut violations = Vec::new();
        let mut anomalies = Vec::new();
        let mut seen = BTreeSet::new();
        let mut plans = Vec::with_capacity(reconcile.slots.len());
        for (i, truth) in reconcile.slots.iter().enumerate() {
            let path = format!("reconcile.slots[{i}]");
            if !seen.insert(truth.slot) {
                violations.push(Violation::new(
                    format!("{path}.slot_id"),
                    format!("slot {} appears more than once", truth.slot),
                ));
                continue;
            }
            let plan = self.judge(&path, truth, &mut violations, &mut anomalies)?;
            plans.push((truth.slot, plan));
        }
        if !violations.is_empty() {
            let mut reject = Reject::invalid(violations);
            reject.code = DiagnosticCode::ReconcileConflict;
            reject.anomalies = anomalies;
            return Err(reject);
        }
        // Decide the money: a balance difference is an adjustment.
        let planned = plans;
        let adjustment = match reconcile.wallet_balance {
            Some(balance) if balance != self.account.capital => {
                let amount = num::sub(balance, self.account.capital).ok_or_else(|| ovf("balance adjustment"))?;
                let total = num::add(self.account.adjustments, amount).ok_or_else(|| ovf("adjustments"))?;
                Some((amount, balance, total))
            }
            _ => None,
        };
        let adopting = planned.iter().filter(|(_, p)| matches!(p, Plan::Adopt { .. })).count();
        self.check_ids(0, adopting as u64)?;
        // Commit.
        let mut trade_ids = Vec::with_capacity(adopting);
        for _ in 0..adopting {
            trade_ids.push(self.new_trade_id());
        }
        cx.out.anomalies.extend(anomalies);
        let mut trade_ids = trade_ids.into_iter();
        for (slot_id, plan) in planned {
            let index = slot_id as usize;
            match plan {
                Plan::Keep => {}
                Plan::Query => self.order_command(cx, index, Some(QueryReason::Reconcile)),
                Plan::Learn { venue_order_id, cumulative } => self.learn(cx, index, venue_order_id, cumulative),
                Plan::Resize { book } => self.resize(cx, index, book),
                Plan::Adopt { symbol, side, book } => {
                    if let Some(trade_id) = trade_ids.next() {
                        self.adopt(cx, index, trade_id, symbol, side, book);
                    }
                }
            }
        }
        if let Some((amount, balance, total)) = adjustment {
            let before = self.account.capital;
            self.account.capital = balance;
            self.account.adjustments = total;
            self.book(cx, LedgerEntryKind::Adjustment, Change { amount, before, after: balance }, None, None, None);
            cx.out.anomalies.push(Anomaly::new(
                AnomalyKind::BalanceAdjusted,
                format!(
                    "capital {} differed from the venue balance {}: adjusted by {} (reconcile {})",
                    num::to_text(before),
                    num::to_text(balance),
                    num::to_text(amount),
                    reconcile.reconcile_id
                ),
            ));
        }
        cx.out.account_changed = true;
        Ok(())
    }

    fn learn(&mut self, cx: &mut Ctx<'_>, index: usize, venue_order_id: Option<Id>, cumulative: Option<Decimal>) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        let slot_id = slot.id;
        let trade_id = slot.trade_id.clone();
        let Some(order) = slot.order.as_mut() else { return };
        let number = order.number;
        if let Some(venue_id) = venue_order_id {
            order.venue_order_id = Some(venue_id.clone());
            self.venue_ids.insert(venue_id, order.number);
            self.touch_slot(cx, index);
        }
        if let Some(cumulative) = cumulative {
            let cid = Id::from(crate::model::order_id_text(&self.cfg.kernel_id, number));
            if let Some(order) = self.slots.get_mut(index).and_then(|s| s.order.as_mut()) {
                order.fills.venue_cumulative = cumulative;
            }
            cx.out.anomalies.push(
                Anomaly::new(
                    AnomalyKind::FillGap,
                    format!("venue reports {} filled for {cid}", num::to_text(cumulative)),
                )
                .slot(slot_id, trade_id.as_ref())
                .order(&cid),
            );
            self.touch_slot(cx, index);
            self.order_command(cx, index, Some(QueryReason::FillGap));
        }
    }

    fn resize(&mut self, cx: &mut Ctx<'_>, index: usize, book: Book) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        let before = slot.book.position;
        slot.book = book;
        let (slot_id, trade_id) = (slot.id, slot.trade_id.clone());
        cx.out.anomalies.push(
            Anomaly::new(
                AnomalyKind::PositionAdjusted,
                format!(
                    "slot {slot_id} position {} set to the venue's {}",
                    num::to_text(before),
                    num::to_text(book.position)
                ),
            )
            .slot(slot_id, trade_id.as_ref()),
        );
        if book.position.is_zero() {
            if let Some(slot) = self.slots.get_mut(index) {
                slot.close_time = Some(cx.now);
            }
            self.account.trades_closed = self.account.trades_closed.saturating_add(1);
            self.transition(cx, index, SlotState::Closed, TransitionCause::Reconcile, None);
        } else {
            self.touch_slot(cx, index);
        }
    }

    fn adopt(&mut self, cx: &mut Ctx<'_>, index: usize, trade_id: Id, symbol: Id, side: Side, book: Book) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        slot.trade_id = Some(trade_id.clone());
        slot.symbol = Some(symbol.clone());
        slot.side = side;
        slot.leverage = Decimal::ONE;
        slot.exit_leg_ratios = vec![Decimal::ONE];
        slot.next_exit_leg = 0;
        slot.book = book;
        slot.entry_intent_id = None;
        slot.open_time = Some(cx.now);
        slot.close_time = None;
        let slot_id = slot.id;
        cx.out.anomalies.push(
            Anomaly::new(
                AnomalyKind::PositionAdjusted,
                format!(
                    "slot {slot_id} adopted a {} {} position of {} found at the venue as trade {trade_id} (leverage unknown, recorded as 1)",
                    side.as_str_name(),
                    symbol,
                    num::to_text(book.position)
                ),
            )
            .slot(slot_id, Some(&trade_id)),
        );
        self.transition(cx, index, SlotState::PositionOpen, TransitionCause::Reconcile, None);
    }
}
