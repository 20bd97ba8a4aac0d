//! `pink.v1` messages -> validated domain inputs. Every field is checked;
//! every violation names its field; nothing is defaulted silently.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use smallvec::SmallVec;

use crate::check::{Checker, MAX_AMOUNT, MAX_CAPITAL, MAX_LEVERAGE};
use crate::input::{
    Action, ControlChange, Enter, Fill, Funding, Input, Intent, Mark, OrderTruth, Payload, Reconcile, SlotTruth,
    VenueEvent,
};
use crate::model::{Config, Control, Instrument, OrderKind};
use crate::num;
use crate::output::Violation;
use crate::pb::{self, kernel_input::Payload as Wire};
use crate::pb::{IntentAction, OrderPurpose, OrderStatus, OrderType, Side, TimeInForce, VenueEventKind};
use crate::text;

/// Decodes and validates one serialized `pink.v1.KernelInput`.
pub fn input_bytes(bytes: &[u8], cfg: &Config) -> Result<Input, Vec<Violation>> {
    let message = pb::KernelInput::decode(bytes)
        .map_err(|e| vec![Violation::new("", format!("not a valid pink.v1.KernelInput: {e}"))])?;
    input(&message, cfg)
}

pub fn input(message: &pb::KernelInput, cfg: &Config) -> Result<Input, Vec<Violation>> {
    let mut c = Checker::new();
    let time = c.time("time", &message.time);
    if let Some(trace) = &message.trace {
        trace_context(&mut c, &trace.traceparent, &trace.tracestate);
    }
    let payload = match &message.payload {
        None => {
            c.bad("payload", "is required (one of intent, venue_event, mark_price, ...)");
            None
        }
        Some(Wire::Intent(m)) => intent(&mut c, &IntentView::from(m)).map(Payload::Intent),
        Some(Wire::VenueEvent(m)) => venue_event(&mut c, &VenueEventView::from(m), cfg).map(Payload::Venue),
        Some(Wire::MarkPrice(m)) => mark_price(&mut c, &MarkPriceView::from(m)),
        Some(Wire::ControlUpdate(m)) => Some(Payload::Control(control_update(&mut c, m))),
        Some(Wire::Reconcile(m)) => reconcile(&mut c, m, cfg).map(Payload::Reconcile),
        Some(Wire::Timer(_)) => Some(Payload::Timer),
        Some(Wire::InstrumentUpdate(m)) => {
            Some(Payload::Instruments(instruments(&mut c, "instrument_update.instruments", &m.instruments)))
        }
        Some(Wire::FundingPayment(m)) => {
            let funding_id = c.id("funding_payment.funding_id", &m.funding_id);
            let symbol = c.symbol("funding_payment.symbol", &m.symbol);
            let raw = c.required_decimal("funding_payment.amount", &m.amount);
            let amount = c.bounded("funding_payment.amount", raw, -MAX_AMOUNT, false, MAX_AMOUNT);
            if amount.is_some_and(|a| a.is_zero()) {
                c.bad("funding_payment.amount", "must not be zero");
            }
            let time = c.time("funding_payment.funding_time", &m.funding_time);
            match (funding_id, symbol, amount, time) {
                (Some(funding_id), Some(symbol), Some(amount), Some(time)) => {
                    Some(Payload::Funding(Funding { funding_id, symbol, amount, time }))
                }
                _ => None,
            }
        }
    };
    finish_input(c, message.sequence, time, payload)
}

fn trace_context(c: &mut Checker, traceparent: &str, tracestate: &str) {
    c.free_text_ok("trace.traceparent", traceparent, 128);
    c.free_text_ok("trace.tracestate", tracestate, 512);
}

fn finish_input(
    c: Checker,
    sequence: u64,
    time: Option<i64>,
    payload: Option<Payload>,
) -> Result<Input, Vec<Violation>> {
    let built = match (time, payload) {
        (Some(time), Some(payload)) => Some(Input { sequence, time, payload }),
        _ => None,
    };
    c.finish(built)
}

/// A `pink.v1.MarkPrice` with its text borrowed.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct MarkPriceView<'a> {
    pub symbol: &'a str,
    pub price: Option<&'a str>,
    pub exchange_time: Option<prost_types::Timestamp>,
}

impl<'a> From<&'a pb::MarkPrice> for MarkPriceView<'a> {
    fn from(m: &'a pb::MarkPrice) -> MarkPriceView<'a> {
        MarkPriceView {
            symbol: &m.symbol,
            price: m.price.as_ref().map(|p| p.value.as_str()),
            exchange_time: m.exchange_time,
        }
    }
}

fn mark_price(c: &mut Checker, m: &MarkPriceView<'_>) -> Option<Payload> {
    let symbol = c.symbol("mark_price.symbol", m.symbol);
    let price = c.positive_text("mark_price.price", m.price);
    c.time_opt("mark_price.exchange_time", &m.exchange_time);
    match (symbol, price) {
        (Some(symbol), Some(price)) => Some(Payload::Mark(Mark { symbol, price })),
        _ => None,
    }
}

/// A `pink.v1.VenueEvent` with its text borrowed (decimals: the text of a
/// present `Decimal` message).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct VenueEventView<'a> {
    pub kind: i32,
    pub client_order_id: &'a str,
    pub venue_order_id: &'a str,
    pub venue_event_id: &'a str,
    pub symbol: &'a str,
    pub last_quantity: Option<&'a str>,
    pub cumulative_quantity: Option<&'a str>,
    pub last_price: Option<&'a str>,
    pub average_price: Option<&'a str>,
    pub fee: Option<&'a str>,
    pub fee_asset: &'a str,
    pub exchange_time: Option<prost_types::Timestamp>,
    pub reason: &'a str,
    /// Validated only: the state machine never reads it (it is journaled with the input).
    pub receive_time: Option<prost_types::Timestamp>,
}

impl<'a> From<&'a pb::VenueEvent> for VenueEventView<'a> {
    fn from(m: &'a pb::VenueEvent) -> VenueEventView<'a> {
        let text = |d: &'a Option<pb::Decimal>| d.as_ref().map(|d| d.value.as_str());
        VenueEventView {
            kind: m.kind,
            client_order_id: &m.client_order_id,
            venue_order_id: &m.venue_order_id,
            venue_event_id: &m.venue_event_id,
            symbol: &m.symbol,
            last_quantity: text(&m.last_quantity),
            cumulative_quantity: text(&m.cumulative_quantity),
            last_price: text(&m.last_price),
            average_price: text(&m.average_price),
            fee: text(&m.fee),
            fee_asset: &m.fee_asset,
            exchange_time: m.exchange_time,
            reason: &m.reason,
            receive_time: m.receive_time,
        }
    }
}

fn order_kind(c: &mut Checker, order_type: i32, limit: Option<&str>, tif: i32) -> Option<OrderKind> {
    let kind = c.enumeration("intent.order_type", order_type, OrderType::Unspecified)?;
    match kind {
        OrderType::Limit => {
            let price = c.positive_text("intent.limit_price", limit);
            let tif = c.enumeration("intent.time_in_force", tif, TimeInForce::Unspecified);
            Some(OrderKind::Limit { price: price?, tif: tif? })
        }
        _ => {
            c.absent("intent.limit_price", limit.is_some(), "for MARKET orders");
            if c.enumeration_opt("intent.time_in_force", tif, TimeInForce::Unspecified)?.is_some() {
                c.bad("intent.time_in_force", "must be unspecified for MARKET orders");
            }
            Some(OrderKind::Market)
        }
    }
}

fn exit_leg_ratios(c: &mut Checker, raw: &[&str]) -> Option<Vec<Decimal>> {
    if raw.is_empty() {
        return Some(vec![Decimal::ONE]);
    }
    if raw.len() > 16 {
        c.bad("intent.exit_leg_ratios", format!("has {} legs, at most 16 allowed", raw.len()));
        return None;
    }
    let mut ratios = Vec::with_capacity(raw.len());
    for (i, ratio) in raw.iter().enumerate() {
        // A valid ratio needs no field name; an invalid one is checked again to report it.
        if let Some(value) = num::parse(ratio).ok().filter(|r| *r > Decimal::ZERO && *r <= Decimal::ONE) {
            ratios.push(value);
            continue;
        }
        let field = format!("intent.exit_leg_ratios[{i}]");
        let parsed = c.decimal_text(&field, Some(ratio));
        if let Some(value) = c.bounded(&field, parsed, Decimal::ZERO, true, Decimal::ONE) {
            ratios.push(value);
        }
    }
    if ratios.len() != raw.len() {
        return None;
    }
    let mut sum = Decimal::ZERO;
    for ratio in &ratios {
        sum = num::add(sum, *ratio)?;
    }
    let tolerance = Decimal::new(1, 9);
    let off = num::sub(sum, Decimal::ONE)?.abs();
    if off > tolerance {
        c.bad("intent.exit_leg_ratios", format!("sum to {}, they must sum to 1", num::to_text(sum)));
        return None;
    }
    Some(ratios)
}

/// A `pink.v1.Intent` with its text borrowed.
#[derive(Debug, PartialEq)]
pub(crate) struct IntentView<'a> {
    pub intent_id: &'a str,
    pub action: i32,
    pub slot_id: u32,
    pub expected_slot_version: Option<u64>,
    pub symbol: &'a str,
    pub side: i32,
    pub order_type: i32,
    pub limit_price: Option<&'a str>,
    pub time_in_force: i32,
    pub target_size: Option<&'a str>,
    pub leverage: Option<&'a str>,
    pub exit_leg_ratios: SmallVec<[&'a str; 4]>,
    pub reduce_only: bool,
    pub reference_price: Option<&'a str>,
    pub cancel_purpose: i32,
    pub labels: &'a BTreeMap<String, String>,
    pub create_time: Option<prost_types::Timestamp>,
}

impl<'a> From<&'a pb::Intent> for IntentView<'a> {
    fn from(m: &'a pb::Intent) -> IntentView<'a> {
        let text = |d: &'a Option<pb::Decimal>| d.as_ref().map(|d| d.value.as_str());
        IntentView {
            intent_id: &m.intent_id,
            action: m.action,
            slot_id: m.slot_id,
            expected_slot_version: m.expected_slot_version,
            symbol: &m.symbol,
            side: m.side,
            order_type: m.order_type,
            limit_price: text(&m.limit_price),
            time_in_force: m.time_in_force,
            target_size: text(&m.target_size),
            leverage: text(&m.leverage),
            exit_leg_ratios: m.exit_leg_ratios.iter().map(|d| d.value.as_str()).collect(),
            reduce_only: m.reduce_only,
            reference_price: text(&m.reference_price),
            cancel_purpose: m.cancel_purpose,
            labels: &m.labels,
            create_time: m.create_time,
        }
    }
}

fn intent(c: &mut Checker, m: &IntentView<'_>) -> Option<Intent> {
    let intent_id = c.id("intent.intent_id", m.intent_id);
    c.time_opt("intent.create_time", &m.create_time);
    let action = c.enumeration("intent.action", m.action, IntentAction::Unspecified)?;
    let enter_only = "unless action is ENTER";
    let action = match action {
        IntentAction::Enter => {
            let symbol = c.symbol("intent.symbol", m.symbol);
            let side = c.enumeration("intent.side", m.side, Side::Unspecified);
            let kind = order_kind(c, m.order_type, m.limit_price, m.time_in_force);
            let size = c.positive_text("intent.target_size", m.target_size);
            let raw_leverage = c.required_decimal_text("intent.leverage", m.leverage);
            let leverage = c.leverage("intent.leverage", raw_leverage, MAX_LEVERAGE);
            let ratios = exit_leg_ratios(c, &m.exit_leg_ratios);
            if m.reduce_only {
                c.bad("intent.reduce_only", "must be false for ENTER (an entry cannot reduce a position)");
            }
            let reference_price = c.positive_opt_text("intent.reference_price", m.reference_price);
            if matches!(kind, Some(OrderKind::Limit { .. })) {
                c.absent(
                    "intent.reference_price",
                    m.reference_price.is_some(),
                    "for LIMIT orders (the limit price is used)",
                );
            }
            c.absent("intent.cancel_purpose", m.cancel_purpose != 0, "unless action is CANCEL");
            let labels = c.labels("intent.labels", m.labels);
            Action::Enter(Box::new(Enter {
                symbol: symbol?,
                side: side?,
                kind: kind?,
                size: size?,
                leverage: leverage?,
                exit_leg_ratios: ratios?,
                reference_price,
                labels: Arc::new(labels),
            }))
        }
        IntentAction::Exit | IntentAction::ExitResidual => {
            c.absent("intent.symbol", !m.symbol.is_empty(), enter_only);
            c.absent("intent.side", m.side != 0, enter_only);
            c.absent("intent.target_size", m.target_size.is_some(), "(exit sizes come from the trade's exit legs)");
            c.absent("intent.leverage", m.leverage.is_some(), enter_only);
            c.absent("intent.exit_leg_ratios", !m.exit_leg_ratios.is_empty(), enter_only);
            c.absent("intent.reference_price", m.reference_price.is_some(), enter_only);
            c.absent("intent.cancel_purpose", m.cancel_purpose != 0, "unless action is CANCEL");
            c.absent("intent.labels", !m.labels.is_empty(), enter_only);
            let kind = order_kind(c, m.order_type, m.limit_price, m.time_in_force)?;
            if action == IntentAction::Exit {
                Action::Exit(kind)
            } else {
                Action::ExitResidual(kind)
            }
        }
        IntentAction::Cancel => {
            let not_cancel = "for CANCEL";
            c.absent("intent.symbol", !m.symbol.is_empty(), not_cancel);
            c.absent("intent.side", m.side != 0, not_cancel);
            c.absent("intent.order_type", m.order_type != 0, not_cancel);
            c.absent("intent.limit_price", m.limit_price.is_some(), not_cancel);
            c.absent("intent.time_in_force", m.time_in_force != 0, not_cancel);
            c.absent("intent.target_size", m.target_size.is_some(), not_cancel);
            c.absent("intent.leverage", m.leverage.is_some(), not_cancel);
            c.absent("intent.exit_leg_ratios", !m.exit_leg_ratios.is_empty(), not_cancel);
            c.absent("intent.reference_price", m.reference_price.is_some(), not_cancel);
            c.absent("intent.labels", !m.labels.is_empty(), not_cancel);
            c.absent("intent.reduce_only", m.reduce_only, not_cancel);
            let purpose = c.enumeration_opt("intent.cancel_purpose", m.cancel_purpose, OrderPurpose::Unspecified)?;
            Action::Cancel(purpose)
        }
        IntentAction::Unspecified => return None,
    };
    Some(Intent { intent_id: intent_id?, slot: m.slot_id, expected_version: m.expected_slot_version, action })
}

fn venue_event(c: &mut Checker, m: &VenueEventView<'_>, cfg: &Config) -> Option<VenueEvent> {
    let kind = c.enumeration("venue_event.kind", m.kind, VenueEventKind::Unspecified);
    let cid = c.id_opt("venue_event.client_order_id", m.client_order_id);
    let vid = c.id_opt("venue_event.venue_order_id", m.venue_order_id);
    if m.client_order_id.is_empty() && m.venue_order_id.is_empty() {
        c.bad("venue_event.client_order_id", "client_order_id or venue_order_id is required");
    }
    let event_id = c.id("venue_event.venue_event_id", m.venue_event_id);
    let symbol = c.symbol_opt("venue_event.symbol", m.symbol);
    let exchange_time = c.time("venue_event.exchange_time", &m.exchange_time);
    // The adapter's receive time: checked like exchange_time, then left out of the
    // domain input (no state, and so no state hash, depends on it).
    c.time_opt("venue_event.receive_time", &m.receive_time);
    let reason = c.free_text("venue_event.reason", m.reason, 256);
    let raw_cumulative = c.decimal_text("venue_event.cumulative_quantity", m.cumulative_quantity);
    let cumulative = c.bounded("venue_event.cumulative_quantity", raw_cumulative, Decimal::ZERO, false, MAX_AMOUNT);
    if !m.fee_asset.is_empty() {
        if let Err(e) = text::check_asset(m.fee_asset) {
            c.bad("venue_event.fee_asset", e);
        }
    }
    let is_fill = matches!(kind, Some(VenueEventKind::PartialFill | VenueEventKind::Fill));
    let fill = if is_fill {
        let quantity = c.positive_text("venue_event.last_quantity", m.last_quantity);
        let price = c.positive_text("venue_event.last_price", m.last_price);
        c.positive_opt_text("venue_event.average_price", m.average_price);
        let raw_fee = c.decimal_text("venue_event.fee", m.fee);
        let fee = c.bounded("venue_event.fee", raw_fee, -MAX_AMOUNT, false, MAX_AMOUNT);
        if m.cumulative_quantity.is_none() {
            c.bad("venue_event.cumulative_quantity", "is required for fills");
        }
        if let (Some(q), Some(cum)) = (quantity, cumulative) {
            if cum < q {
                c.bad("venue_event.cumulative_quantity", "must be >= last_quantity");
            }
        }
        let fee = fee.unwrap_or(Decimal::ZERO);
        if !fee.is_zero() && m.fee_asset != &*cfg.settlement_asset {
            c.bad(
                "venue_event.fee_asset",
                format!(
                    "must be the settlement asset {} when a fee is charged, got {:?}",
                    cfg.settlement_asset, m.fee_asset
                ),
            );
        }
        match (quantity, price) {
            (Some(quantity), Some(price)) => Some(Fill { quantity, price, fee }),
            _ => None,
        }
    } else {
        let why = "unless the event is a fill";
        c.absent("venue_event.last_quantity", m.last_quantity.is_some(), why);
        c.absent("venue_event.last_price", m.last_price.is_some(), why);
        c.absent("venue_event.average_price", m.average_price.is_some(), why);
        c.absent("venue_event.fee", m.fee.is_some(), why);
        if matches!(kind, Some(VenueEventKind::Cancelled | VenueEventKind::Expired)) && m.cumulative_quantity.is_none()
        {
            c.bad("venue_event.cumulative_quantity", "is required for CANCELLED and EXPIRED");
        }
        None
    };
    if is_fill && fill.is_none() {
        return None;
    }
    Some(VenueEvent {
        kind: kind?,
        client_order_id: cid,
        venue_order_id: vid,
        event_id: event_id?,
        symbol,
        fill,
        cumulative,
        exchange_time: exchange_time?,
        reason,
    })
}

fn control_update(c: &mut Checker, m: &pb::ControlUpdate) -> ControlChange {
    let raw = c.decimal("control_update.max_leverage", &m.max_leverage);
    let max_leverage = c.leverage("control_update.max_leverage", raw, MAX_LEVERAGE);
    let raw = c.decimal("control_update.max_notional_per_slot", &m.max_notional_per_slot);
    let max_notional = c.bounded("control_update.max_notional_per_slot", raw, Decimal::ZERO, true, MAX_CAPITAL);
    let allowed =
        m.allowed_symbols.as_ref().map(|list| c.symbol_set("control_update.allowed_symbols.symbols", &list.symbols));
    // Every change of the limits says who made it (the audit trail of ControlState.updated_by).
    if m.actor.is_empty() {
        c.bad("control_update.actor", "is required: who asks for the change");
    }
    let actor = c.free_text("control_update.actor", &m.actor, 64);
    let reason = c.free_text("control_update.reason", &m.reason, 256);
    ControlChange {
        expected_version: m.expected_version,
        trading_enabled: m.trading_enabled,
        reduce_only: m.reduce_only,
        max_leverage,
        max_notional_per_slot: max_notional,
        active_slot_limit: m.active_slot_limit,
        allowed_symbols: allowed,
        actor,
        reason,
    }
}

fn reconcile(c: &mut Checker, m: &pb::Reconcile, cfg: &Config) -> Option<Reconcile> {
    let reconcile_id = c.id("reconcile.reconcile_id", &m.reconcile_id);
    if m.slots.len() > cfg.slot_count as usize {
        c.bad("reconcile.slots", format!("has {} entries for {} slots", m.slots.len(), cfg.slot_count));
        return None;
    }
    let raw = c.decimal("reconcile.wallet_balance", &m.wallet_balance);
    let wallet_balance = c.bounded("reconcile.wallet_balance", raw, Decimal::ZERO, false, MAX_CAPITAL);
    let raw = c.decimal("reconcile.expected_capital", &m.expected_capital);
    let expected_capital = c.bounded("reconcile.expected_capital", raw, Decimal::ZERO, false, MAX_CAPITAL);
    let mut slots = Vec::with_capacity(m.slots.len());
    for (i, truth) in m.slots.iter().enumerate() {
        let path = format!("reconcile.slots[{i}]");
        let symbol = c.symbol_opt(&format!("{path}.symbol"), &truth.symbol);
        let raw = c.required_decimal(&format!("{path}.position_size"), &truth.position_size);
        let position = c.bounded(&format!("{path}.position_size"), raw, Decimal::ZERO, false, MAX_AMOUNT);
        let side = c.enumeration_opt(&format!("{path}.side"), truth.side, Side::Unspecified);
        let entry_price = c.positive_opt(&format!("{path}.entry_price"), &truth.entry_price);
        if let (Some(size), Some(side)) = (position, side) {
            if size.is_zero() {
                c.absent(&format!("{path}.side"), side.is_some(), "when position_size is 0");
                c.absent(&format!("{path}.entry_price"), truth.entry_price.is_some(), "when position_size is 0");
            } else {
                if side.is_none() {
                    c.bad(format!("{path}.side"), "is required when position_size > 0");
                }
                if truth.entry_price.is_none() {
                    c.bad(format!("{path}.entry_price"), "is required when position_size > 0");
                }
                if truth.symbol.is_empty() {
                    c.bad(format!("{path}.symbol"), "is required when position_size > 0");
                }
            }
        }
        let open_order = truth.open_order.as_ref().and_then(|o| {
            let cid = c.id_opt(&format!("{path}.open_order.client_order_id"), &o.client_order_id);
            let vid = c.id_opt(&format!("{path}.open_order.venue_order_id"), &o.venue_order_id);
            if o.client_order_id.is_empty() && o.venue_order_id.is_empty() {
                c.bad(format!("{path}.open_order.client_order_id"), "client_order_id or venue_order_id is required");
            }
            let status = c.enumeration(&format!("{path}.open_order.status"), o.status, OrderStatus::Unspecified);
            if let Some(status) = status {
                if !matches!(status, OrderStatus::PendingNew | OrderStatus::Accepted | OrderStatus::PartiallyFilled) {
                    c.bad(
                        format!("{path}.open_order.status"),
                        format!("{} is not an open status", status.as_str_name()),
                    );
                }
            }
            let raw = c.decimal(&format!("{path}.open_order.filled_quantity"), &o.filled_quantity);
            let filled =
                c.bounded(&format!("{path}.open_order.filled_quantity"), raw, Decimal::ZERO, false, MAX_AMOUNT);
            Some(OrderTruth {
                client_order_id: cid,
                venue_order_id: vid,
                status: status?,
                filled: filled.unwrap_or(Decimal::ZERO),
            })
        });
        if let (Some(position), Some(side)) = (position, side) {
            slots.push(SlotTruth {
                slot: truth.slot_id,
                symbol,
                side: side.unwrap_or(Side::Unspecified),
                position,
                entry_price,
                open_order,
                expected_version: truth.expected_version,
            });
        }
    }
    Some(Reconcile { reconcile_id: reconcile_id?, slots, wallet_balance, expected_capital })
}

pub fn instruments(c: &mut Checker, field: &str, list: &[pb::Instrument]) -> Vec<Instrument> {
    let mut out: BTreeMap<text::Id, Instrument> = BTreeMap::new();
    if list.len() > 10_000 {
        c.bad(field, format!("has {} entries, at most 10000 allowed", list.len()));
        return Vec::new();
    }
    for (i, m) in list.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let symbol = c.symbol(&format!("{path}.symbol"), &m.symbol);
        let step = c.positive(&format!("{path}.quantity_step"), &m.quantity_step);
        let tick = c.positive(&format!("{path}.price_tick"), &m.price_tick);
        let min = c.positive(&format!("{path}.min_quantity"), &m.min_quantity);
        if let (Some(step), Some(min)) = (step, min) {
            if !num::is_multiple(min, step) {
                c.bad(format!("{path}.min_quantity"), "must be a multiple of quantity_step");
            }
        }
        if let (Some(symbol), Some(step), Some(tick), Some(min)) = (symbol, step, tick, min) {
            if out.contains_key(&symbol) {
                c.bad(format!("{path}.symbol"), format!("{symbol} appears more than once"));
            }
            out.insert(symbol.clone(), Instrument { symbol, quantity_step: step, price_tick: tick, min_quantity: min });
        }
    }
    out.into_values().collect()
}

/// A control state (initial control of a config, or a snapshot's control).
pub fn control_state(
    c: &mut Checker,
    field: &str,
    m: &pb::ControlState,
    slot_count: u32,
    hard_cap: Decimal,
) -> Option<Control> {
    let raw = c.required_decimal(&format!("{field}.max_leverage"), &m.max_leverage);
    let cap = hard_cap.to_u32().unwrap_or(MAX_LEVERAGE).min(MAX_LEVERAGE);
    let max_leverage = c.leverage(&format!("{field}.max_leverage"), raw, cap);
    let raw = c.required_decimal(&format!("{field}.max_notional_per_slot"), &m.max_notional_per_slot);
    let max_notional = c.bounded(&format!("{field}.max_notional_per_slot"), raw, Decimal::ZERO, true, MAX_CAPITAL);
    if m.active_slot_limit > slot_count {
        c.bad(
            format!("{field}.active_slot_limit"),
            format!("{} is above the slot count {slot_count}", m.active_slot_limit),
        );
    }
    let allowed = c.symbol_set(&format!("{field}.allowed_symbols"), &m.allowed_symbols);
    let update_time = c.time_opt(&format!("{field}.update_time"), &m.update_time)?;
    let updated_by = c.free_text(&format!("{field}.updated_by"), &m.updated_by, 64);
    let reason = c.free_text(&format!("{field}.reason"), &m.reason, 256);
    Some(Control {
        version: m.version,
        trading_enabled: m.trading_enabled,
        reduce_only: m.reduce_only,
        max_leverage: max_leverage?,
        max_notional_per_slot: max_notional?,
        active_slot_limit: m.active_slot_limit,
        allowed_symbols: allowed,
        update_time,
        updated_by,
        reason,
    })
}

pub fn config_fields(c: &mut Checker, m: &pb::KernelConfig) -> Option<Config> {
    let kernel_id = match text::kernel_id(&m.kernel_id) {
        Ok(id) => Some(id),
        Err(e) => {
            c.bad("config.kernel_id", e);
            None
        }
    };
    if !(1..=100_000).contains(&m.slot_count) {
        c.bad("config.slot_count", format!("must be in 1..=100000, got {}", m.slot_count));
    }
    let asset = match text::asset(&m.settlement_asset) {
        Ok(asset) => Some(asset),
        Err(e) => {
            c.bad("config.settlement_asset", e);
            None
        }
    };
    let raw = c.required_decimal("config.initial_capital", &m.initial_capital);
    let initial_capital = c.bounded("config.initial_capital", raw, Decimal::ZERO, false, MAX_CAPITAL);
    let raw = c.required_decimal("config.hard_max_leverage", &m.hard_max_leverage);
    let hard_cap = c.leverage("config.hard_max_leverage", raw, MAX_LEVERAGE);
    let control = match (&m.initial_control, hard_cap) {
        (Some(control), Some(cap)) => control_state(c, "config.initial_control", control, m.slot_count, cap),
        (None, _) => {
            c.bad("config.initial_control", "is required");
            None
        }
        _ => None,
    };
    let ack = c.duration("config.ack_timeout", &m.ack_timeout);
    let fill = c.duration("config.fill_timeout", &m.fill_timeout);
    let resting = c.duration("config.resting_check_interval", &m.resting_check_interval);
    let cancel = c.duration("config.cancel_timeout", &m.cancel_timeout);
    let backoff = c.duration("config.max_query_backoff", &m.max_query_backoff);
    if !(16..=1_000_000).contains(&m.retired_order_memory) {
        c.bad("config.retired_order_memory", format!("must be in 16..=1000000, got {}", m.retired_order_memory));
    }
    if !(2..=18).contains(&m.pnl_scale) {
        c.bad("config.pnl_scale", format!("must be in 2..=18, got {}", m.pnl_scale));
    }
    Some(Config {
        kernel_id: kernel_id?,
        slot_count: m.slot_count,
        settlement_asset: asset?,
        initial_capital: initial_capital?,
        initial_control: control?,
        hard_max_leverage: hard_cap?,
        ack_timeout: ack?,
        fill_timeout: fill?,
        resting_check_interval: resting?,
        cancel_timeout: cancel?,
        max_query_backoff: backoff?,
        retired_order_memory: m.retired_order_memory,
        pnl_scale: m.pnl_scale,
    })
}

/// Decodes and validates a serialized `pink.v1.KernelConfig`.
pub fn config_bytes(bytes: &[u8]) -> Result<Config, Vec<Violation>> {
    let message = pb::KernelConfig::decode(bytes)
        .map_err(|e| vec![Violation::new("", format!("not a valid pink.v1.KernelConfig: {e}"))])?;
    config(&message)
}

pub fn config(message: &pb::KernelConfig) -> Result<Config, Vec<Violation>> {
    let mut c = Checker::new();
    let cfg = config_fields(&mut c, message);
    c.finish(cfg)
}
