//! Domain -> `pink.v1` messages. Decimals are written in canonical form
//! (no trailing zeros) so equal states encode to equal bytes.

use rust_decimal::Decimal;

use crate::input::{Action, Input, Payload};
use crate::kernel::Kernel;
use crate::model::{Account, Control, Nanos, Order, OrderKind, Slot};
use crate::num;
use crate::output::{Anomaly, Command, CommandBody, LedgerEntry, Output, Transition};
use crate::pb;
use crate::pb::{OrderType, TimeInForce};
use crate::text::Id;

pub fn dec(value: Decimal) -> Option<pb::Decimal> {
    Some(pb::Decimal { value: num::to_text(value) })
}

pub fn dec_opt(value: Option<Decimal>) -> Option<pb::Decimal> {
    value.map(|v| pb::Decimal { value: num::to_text(v) })
}

pub fn time(nanos: Nanos) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: nanos.div_euclid(1_000_000_000), nanos: nanos.rem_euclid(1_000_000_000) as i32 }
}

pub fn time_opt(nanos: Option<Nanos>) -> Option<prost_types::Timestamp> {
    nanos.map(time)
}

pub fn duration(nanos: Nanos) -> prost_types::Duration {
    prost_types::Duration { seconds: nanos.div_euclid(1_000_000_000), nanos: nanos.rem_euclid(1_000_000_000) as i32 }
}

fn text(id: &Option<Id>) -> String {
    id.as_deref().unwrap_or("").to_owned()
}

/// Average of `notional / quantity`, or none when nothing was filled.
fn average(notional: Decimal, quantity: Decimal) -> Option<pb::Decimal> {
    if quantity.is_zero() {
        return None;
    }
    dec_opt(num::div_round(notional, quantity, 18))
}

fn kind_fields(kind: &OrderKind) -> (i32, Option<pb::Decimal>, i32) {
    match kind {
        OrderKind::Market => (OrderType::Market as i32, None, TimeInForce::Unspecified as i32),
        OrderKind::Limit { price, tif } => (OrderType::Limit as i32, dec(*price), *tif as i32),
    }
}

pub fn order(order: &Order, kernel_id: &str) -> pb::Order {
    let (order_type, limit_price, time_in_force) = kind_fields(&order.kind);
    let seen: Vec<String> = order.seen_event_ids.iter().map(|id| id.to_string()).collect();
    pb::Order {
        client_order_id: crate::model::order_id_text(kernel_id, order.number),
        venue_order_id: text(&order.venue_order_id),
        purpose: order.purpose as i32,
        symbol: order.symbol.to_string(),
        side: order.side as i32,
        order_type,
        quantity: dec(order.quantity),
        limit_price,
        time_in_force,
        reduce_only: order.reduce_only,
        status: order.status as i32,
        filled_quantity: dec(order.fills.filled),
        fill_notional: dec(order.fills.notional),
        average_fill_price: average(order.fills.notional, order.fills.filled),
        fees: dec(order.fills.fees),
        venue_cumulative_quantity: dec(order.fills.venue_cumulative),
        venue_final: order.venue_final,
        cancel_requested: order.cancel_requested,
        exit_leg: order.exit_leg,
        intent_id: order.intent_id.to_string(),
        seen_event_ids: seen,
        create_sequence: order.create_sequence,
        create_time: Some(time(order.create_time)),
        last_exchange_time: time_opt(order.last_exchange_time),
        queries_sent: order.queries_sent,
        cancels_sent: order.cancels_sent,
    }
}

/// A slot; `kernel_id` formats its order's client order id.
pub fn slot(slot: &Slot, kernel_id: &str, mark: Option<Decimal>, unrealized: Option<Decimal>) -> pb::Slot {
    let book = &slot.book;
    let net = num::sub(book.realized_pnl, book.fees);
    pb::Slot {
        slot_id: slot.id,
        version: slot.version,
        state: slot.state as i32,
        trade_id: text(&slot.trade_id),
        symbol: text(&slot.symbol),
        side: slot.side as i32,
        leverage: if slot.trade_id.is_some() { dec(slot.leverage) } else { None },
        exit_leg_ratios: slot.exit_leg_ratios.iter().map(|r| pb::Decimal { value: num::to_text(*r) }).collect(),
        next_exit_leg: slot.next_exit_leg,
        leg_filled_quantity: dec(book.leg_filled),
        position_size: dec(book.position),
        entry_filled_quantity: dec(book.entry_quantity),
        entry_notional: dec(book.entry_notional),
        entry_average_price: average(book.entry_notional, book.entry_quantity),
        cost_basis: dec(book.cost_basis),
        exit_filled_quantity: dec(book.exit_quantity),
        exit_notional: dec(book.exit_notional),
        exit_average_price: average(book.exit_notional, book.exit_quantity),
        realized_pnl: dec(book.realized_pnl),
        fees: dec(book.fees),
        net_pnl: dec_opt(net),
        unrealized_pnl: dec_opt(unrealized),
        mark_price: dec_opt(mark),
        active_order: slot.order.as_ref().map(|o| order(o, kernel_id)),
        deadline: time_opt(slot.deadline),
        deadline_misses: slot.deadline_misses,
        entry_intent_id: text(&slot.entry_intent_id),
        last_intent_id: text(&slot.last_intent_id),
        open_time: time_opt(slot.open_time),
        close_time: time_opt(slot.close_time),
        update_time: time_opt(slot.update_time),
        labels: (*slot.labels).clone(),
    }
}

pub fn account(account: &Account, asset: &Id, unrealized: Option<Decimal>) -> pb::Account {
    pb::Account {
        settlement_asset: asset.to_string(),
        initial_capital: dec(account.initial_capital),
        capital: dec(account.capital),
        realized_pnl: dec(account.realized_pnl),
        fees: dec(account.fees),
        funding: dec(account.funding),
        adjustments: dec(account.adjustments),
        unrealized_pnl: dec_opt(unrealized),
        equity: dec_opt(unrealized.and_then(|u| account.capital.checked_add(u))),
        ledger_sequence: account.ledger_sequence,
        trades_closed: account.trades_closed,
        active_slots: account.active_slots,
    }
}

pub fn control(control: &Control) -> pb::ControlState {
    pb::ControlState {
        version: control.version,
        trading_enabled: control.trading_enabled,
        reduce_only: control.reduce_only,
        max_leverage: dec(control.max_leverage),
        max_notional_per_slot: dec(control.max_notional_per_slot),
        active_slot_limit: control.active_slot_limit,
        allowed_symbols: control.allowed_symbols.iter().map(|s| s.to_string()).collect(),
        update_time: time_opt(control.update_time),
        updated_by: control.updated_by.clone(),
        reason: control.reason.clone(),
    }
}

/// The client order id of an output's order number ("" for none).
fn order_text(kernel_id: &str, number: Option<u64>) -> String {
    number.map(|n| crate::model::order_id_text(kernel_id, n)).unwrap_or_default()
}

fn transition(kernel_id: &str, t: &Transition) -> pb::Transition {
    pb::Transition {
        slot_id: t.slot,
        trade_id: text(&t.trade_id),
        from_state: t.from as i32,
        to_state: t.to as i32,
        cause: t.cause as i32,
        input_sequence: t.sequence,
        client_order_id: order_text(kernel_id, t.order_number),
        slot_version: t.slot_version,
    }
}

fn command(kernel_id: &str, c: &Command) -> pb::Command {
    let body = match &c.body {
        CommandBody::Place(p) => {
            let (order_type, limit_price, time_in_force) = kind_fields(&p.kind);
            pb::command::Command::PlaceOrder(pb::PlaceOrder {
                client_order_id: order_text(kernel_id, Some(p.order_number)),
                symbol: p.symbol.to_string(),
                side: p.side as i32,
                order_type,
                quantity: dec(p.quantity),
                limit_price,
                time_in_force,
                reduce_only: p.reduce_only,
                leverage: dec(p.leverage),
                purpose: p.purpose as i32,
                position_side: p.position_side as i32,
            })
        }
        CommandBody::Cancel(r) => pb::command::Command::CancelOrder(pb::CancelOrder {
            client_order_id: order_text(kernel_id, Some(r.order_number)),
            venue_order_id: text(&r.venue_order_id),
            symbol: r.symbol.to_string(),
        }),
        CommandBody::Query(r, reason) => pb::command::Command::QueryOrder(pb::QueryOrder {
            client_order_id: order_text(kernel_id, Some(r.order_number)),
            venue_order_id: text(&r.venue_order_id),
            symbol: r.symbol.to_string(),
            reason: *reason as i32,
        }),
    };
    pb::Command {
        idempotency_key: c.idempotency_key(kernel_id),
        slot_id: c.slot,
        trade_id: text(&c.trade_id),
        command: Some(body),
    }
}

fn ledger(kernel_id: &str, e: &LedgerEntry) -> pb::LedgerEntry {
    pb::LedgerEntry {
        ledger_sequence: e.ledger_sequence,
        kind: e.kind as i32,
        amount: dec(e.amount),
        capital_before: dec(e.capital_before),
        capital_after: dec(e.capital_after),
        input_sequence: e.input_sequence,
        time: Some(time(e.time)),
        slot_id: e.slot,
        trade_id: text(&e.trade_id),
        client_order_id: order_text(kernel_id, e.order_number),
        venue_event_id: text(&e.venue_event_id),
        symbol: text(&e.symbol),
    }
}

fn anomaly(a: &Anomaly) -> pb::Anomaly {
    pb::Anomaly {
        kind: a.kind as i32,
        slot_id: a.slot,
        trade_id: text(&a.trade_id),
        client_order_id: text(&a.client_order_id),
        venue_event_id: text(&a.venue_event_id),
        message: a.message.clone(),
        reconcile_needed: a.reconcile_needed,
    }
}

/// A slot of `kernel` with its derived valuation.
pub fn kernel_slot(kernel: &Kernel, s: &Slot) -> pb::Slot {
    slot(s, &kernel.config().kernel_id, kernel.slot_mark(s), kernel.slot_unrealized(s))
}

/// The account of `kernel` with its derived valuation.
pub fn kernel_account(kernel: &Kernel) -> pb::Account {
    account(kernel.account(), &kernel.config().settlement_asset, kernel.account_unrealized())
}

/// The `pink.v1.Outcome` of an output of the kernel `kernel_id` (outputs
/// name orders by number; this id formats their client order ids).
pub fn outcome(out: &Output, kernel_id: &str) -> pb::Outcome {
    pb::Outcome {
        sequence: out.sequence,
        accepted: out.accepted(),
        code: out.code as i32,
        message: out.message.clone(),
        violations: out
            .violations
            .iter()
            .map(|v| pb::FieldViolation { field: v.field.clone(), description: v.description.clone() })
            .collect(),
        transitions: out.transitions.iter().map(|t| transition(kernel_id, t)).collect(),
        commands: out.commands.iter().map(|c| command(kernel_id, c)).collect(),
        ledger_entries: out.ledger.iter().map(|e| ledger(kernel_id, e)).collect(),
        anomalies: out.anomalies.iter().map(anomaly).collect(),
        changed_slots: out.changed_slots.clone(),
        account_changed: out.account_changed,
        control_changed: out.control_changed,
        revalued_symbol: out.revalued_symbol.as_deref().unwrap_or("").to_owned(),
    }
}

/// Post-state: the given slots (unknown ids skipped), and the account and
/// control when asked for.
pub fn view(kernel: &Kernel, slots: &[u32], with_account: bool, with_control: bool) -> pb::KernelView {
    pb::KernelView {
        sequence: kernel.last_sequence(),
        slots: slots.iter().filter_map(|id| kernel.slot(*id)).map(|s| kernel_slot(kernel, s)).collect(),
        account: with_account.then(|| kernel_account(kernel)),
        control: with_control.then(|| control(kernel.control())),
    }
}

/// The serialized `pink.v1.Outcome` of an output of the kernel `kernel_id`
/// (`outcome(out, kernel_id).encode_to_vec()`, written directly by `wire::outcome_into`).
pub fn outcome_bytes(out: &Output, kernel_id: &Id) -> Vec<u8> {
    let mut bytes = Vec::new();
    crate::wire::outcome_into(out, kernel_id, &mut bytes);
    bytes
}

fn text_opt(id: &Option<Id>) -> String {
    id.as_deref().unwrap_or("").to_owned()
}

/// The wire form of a validated input: `decode::input(&encode::input(x, asset))`
/// gives `x` back (fees are in the kernel's settlement `asset`).
pub fn input(input: &Input, settlement_asset: &str) -> pb::KernelInput {
    use pb::kernel_input::Payload as Wire;
    let payload = match &input.payload {
        Payload::Intent(intent) => {
            let mut m = pb::Intent {
                intent_id: intent.intent_id.to_string(),
                slot_id: intent.slot,
                expected_slot_version: intent.expected_version,
                ..Default::default()
            };
            let order = |m: &mut pb::Intent, kind: &OrderKind| {
                let (order_type, limit_price, time_in_force) = kind_fields(kind);
                m.order_type = order_type;
                m.limit_price = limit_price;
                m.time_in_force = time_in_force;
            };
            match &intent.action {
                Action::Enter(e) => {
                    m.action = pb::IntentAction::Enter as i32;
                    m.symbol = e.symbol.to_string();
                    m.side = e.side as i32;
                    order(&mut m, &e.kind);
                    m.target_size = dec(e.size);
                    m.leverage = dec(e.leverage);
                    m.exit_leg_ratios =
                        e.exit_leg_ratios.iter().map(|r| pb::Decimal { value: num::to_text(*r) }).collect();
                    m.reference_price = dec_opt(e.reference_price);
                    m.labels = (*e.labels).clone();
                }
                Action::Exit(kind) => {
                    m.action = pb::IntentAction::Exit as i32;
                    order(&mut m, kind);
                }
                Action::ExitResidual(kind) => {
                    m.action = pb::IntentAction::ExitResidual as i32;
                    order(&mut m, kind);
                }
                Action::Cancel(purpose) => {
                    m.action = pb::IntentAction::Cancel as i32;
                    m.cancel_purpose = purpose.map_or(0, |p| p as i32);
                }
            }
            Wire::Intent(m)
        }
        Payload::Venue(e) => Wire::VenueEvent(pb::VenueEvent {
            kind: e.kind as i32,
            client_order_id: text_opt(&e.client_order_id),
            venue_order_id: text_opt(&e.venue_order_id),
            venue_event_id: e.event_id.to_string(),
            symbol: text_opt(&e.symbol),
            last_quantity: e.fill.and_then(|f| dec(f.quantity)),
            cumulative_quantity: dec_opt(e.cumulative),
            last_price: e.fill.and_then(|f| dec(f.price)),
            average_price: None,
            fee: e.fill.and_then(|f| dec(f.fee)),
            fee_asset: match e.fill {
                Some(fill) if !fill.fee.is_zero() => settlement_asset.to_owned(),
                _ => String::new(),
            },
            exchange_time: Some(time(e.exchange_time)),
            reason: e.reason.clone(),
            // Not part of the domain input (validated, then dropped by decode).
            receive_time: None,
        }),
        Payload::Mark(m) => {
            Wire::MarkPrice(pb::MarkPrice { symbol: m.symbol.to_string(), price: dec(m.price), exchange_time: None })
        }
        Payload::Control(c) => Wire::ControlUpdate(pb::ControlUpdate {
            expected_version: c.expected_version,
            trading_enabled: c.trading_enabled,
            reduce_only: c.reduce_only,
            max_leverage: dec_opt(c.max_leverage),
            max_notional_per_slot: dec_opt(c.max_notional_per_slot),
            active_slot_limit: c.active_slot_limit,
            allowed_symbols: c
                .allowed_symbols
                .as_ref()
                .map(|set| pb::SymbolList { symbols: set.iter().map(|s| s.to_string()).collect() }),
            actor: c.actor.clone(),
            reason: c.reason.clone(),
        }),
        Payload::Reconcile(r) => Wire::Reconcile(pb::Reconcile {
            reconcile_id: r.reconcile_id.to_string(),
            slots: r
                .slots
                .iter()
                .map(|t| pb::SlotTruth {
                    slot_id: t.slot,
                    symbol: text_opt(&t.symbol),
                    side: t.side as i32,
                    position_size: dec(t.position),
                    entry_price: dec_opt(t.entry_price),
                    open_order: t.open_order.as_ref().map(|o| pb::OrderTruth {
                        client_order_id: text_opt(&o.client_order_id),
                        venue_order_id: text_opt(&o.venue_order_id),
                        status: o.status as i32,
                        filled_quantity: dec(o.filled),
                    }),
                    expected_version: t.expected_version,
                })
                .collect(),
            wallet_balance: dec_opt(r.wallet_balance),
            expected_capital: dec_opt(r.expected_capital),
        }),
        Payload::Timer => Wire::Timer(pb::Timer {}),
        Payload::Instruments(list) => Wire::InstrumentUpdate(pb::InstrumentUpdate {
            instruments: list
                .iter()
                .map(|i| pb::Instrument {
                    symbol: i.symbol.to_string(),
                    quantity_step: dec(i.quantity_step),
                    price_tick: dec(i.price_tick),
                    min_quantity: dec(i.min_quantity),
                })
                .collect(),
        }),
        Payload::Funding(f) => Wire::FundingPayment(pb::FundingPayment {
            funding_id: f.funding_id.to_string(),
            symbol: f.symbol.to_string(),
            amount: dec(f.amount),
            funding_time: Some(time(f.time)),
        }),
    };
    pb::KernelInput { sequence: input.sequence, time: Some(time(input.time)), trace: None, payload: Some(payload) }
}
