//! Snapshot and restore: the whole state as one `pink.v1.KernelSnapshot`.
//! Restore validates every field and every invariant and rebuilds the
//! indexes, so a corrupt or hand-edited snapshot is refused, never adopted.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::check::{Checker, MAX_CAPITAL};
use crate::decode;
use crate::encode::{self, dec, duration, time, time_opt};
use crate::kernel::Kernel;
use crate::model::{
    order_id_text, order_number, Account, Book, Config, EventIds, Order, OrderFills, OrderKind, OrderLoc, Retired,
    RetiredRing, Slot,
};
use crate::output::Violation;
use crate::pb::{self, OrderPurpose, OrderSide, OrderStatus, OrderType, Side, SlotState, TimeInForce};

pub const FORMAT_VERSION: u32 = 1;

pub fn config_message(cfg: &Config) -> pb::KernelConfig {
    pb::KernelConfig {
        kernel_id: cfg.kernel_id.to_string(),
        slot_count: cfg.slot_count,
        settlement_asset: cfg.settlement_asset.to_string(),
        initial_capital: dec(cfg.initial_capital),
        initial_control: Some(encode::control(&cfg.initial_control)),
        hard_max_leverage: dec(cfg.hard_max_leverage),
        ack_timeout: Some(duration(cfg.ack_timeout)),
        fill_timeout: Some(duration(cfg.fill_timeout)),
        resting_check_interval: Some(duration(cfg.resting_check_interval)),
        cancel_timeout: Some(duration(cfg.cancel_timeout)),
        max_query_backoff: Some(duration(cfg.max_query_backoff)),
        retired_order_memory: cfg.retired_order_memory,
        pnl_scale: cfg.pnl_scale,
    }
}

impl Kernel {
    pub fn snapshot_message(&self) -> pb::KernelSnapshot {
        pb::KernelSnapshot {
            format_version: FORMAT_VERSION,
            config: Some(config_message(&self.cfg)),
            control: Some(encode::control(&self.control)),
            instruments: self
                .instruments
                .values()
                .map(|i| pb::Instrument {
                    symbol: i.symbol.to_string(),
                    quantity_step: dec(i.quantity_step),
                    price_tick: dec(i.price_tick),
                    min_quantity: dec(i.min_quantity),
                })
                .collect(),
            account: Some(encode::kernel_account(self)),
            slots: self.slots.iter().map(|s| encode::kernel_slot(self, s)).collect(),
            retired_orders: self
                .retired
                .iter()
                .map(|r| pb::RetiredOrder {
                    client_order_id: order_id_text(&self.cfg.kernel_id, r.number),
                    venue_order_id: r.venue_order_id.as_deref().unwrap_or("").to_owned(),
                    slot_id: r.slot,
                    trade_id: r.trade_id.as_deref().unwrap_or("").to_owned(),
                    final_status: r.status as i32,
                    seen_event_ids: r.seen_event_ids.iter().map(|s| s.to_string()).collect(),
                    symbol: r.symbol.to_string(),
                })
                .collect(),
            last_sequence: self.last_sequence,
            clock: time_opt(self.clock),
            next_trade_number: self.next_trade,
            next_order_number: self.next_order,
            marks: self.marks.iter().map(|(s, p)| pb::SymbolPrice { symbol: s.to_string(), price: dec(*p) }).collect(),
            funding_watermarks: self
                .funding_watermarks
                .iter()
                .map(|(s, t)| pb::FundingWatermark { symbol: s.to_string(), funding_time: Some(time(*t)) })
                .collect(),
        }
    }

    pub fn snapshot_bytes(&self) -> Vec<u8> {
        self.snapshot_message().encode_to_vec()
    }

    /// SHA-256 of the canonical snapshot, hex: equal states, equal hashes.
    pub fn state_hash(&self) -> String {
        let digest = Sha256::digest(self.snapshot_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn restore_bytes(bytes: &[u8]) -> Result<Kernel, Vec<Violation>> {
        let message = pb::KernelSnapshot::decode(bytes)
            .map_err(|e| vec![Violation::new("", format!("not a valid pink.v1.KernelSnapshot: {e}"))])?;
        Kernel::restore(&message)
    }

    pub fn restore(m: &pb::KernelSnapshot) -> Result<Kernel, Vec<Violation>> {
        let mut c = Checker::new();
        if m.format_version != FORMAT_VERSION {
            c.bad("format_version", format!("{} is not supported (expected {FORMAT_VERSION})", m.format_version));
            return Err(c.violations);
        }
        let Some(cfg_message) = &m.config else {
            c.bad("config", "is required");
            return Err(c.violations);
        };
        let cfg = decode::config_fields(&mut c, cfg_message);
        let Some(cfg) = cfg.filter(|_| c.ok()) else { return Err(c.violations) };
        let control = match &m.control {
            Some(control) => decode::control_state(&mut c, "control", control, cfg.slot_count, cfg.hard_max_leverage),
            None => {
                c.bad("control", "is required");
                None
            }
        };
        let instruments = decode::instruments(&mut c, "instruments", &m.instruments);
        let account = restore_account(&mut c, m.account.as_ref(), &cfg);
        if m.slots.len() != cfg.slot_count as usize {
            c.bad("slots", format!("has {} slots, the config says {}", m.slots.len(), cfg.slot_count));
        }
        let slots: Vec<Slot> = m
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| restore_slot(&mut c, &format!("slots[{i}]"), s, i, &cfg.kernel_id))
            .collect();
        let mut retired = RetiredRing::with_capacity(m.retired_orders.len());
        if m.retired_orders.len() > cfg.retired_order_memory as usize {
            c.bad("retired_orders", "holds more orders than retired_order_memory");
        }
        for (i, r) in m.retired_orders.iter().enumerate() {
            let path = format!("retired_orders[{i}]");
            let number =
                order_number_of(&mut c, &cfg.kernel_id, &format!("{path}.client_order_id"), &r.client_order_id);
            let vid = c.id_opt(&format!("{path}.venue_order_id"), &r.venue_order_id);
            let trade_id = c.id_opt(&format!("{path}.trade_id"), &r.trade_id);
            let status = c.enumeration(&format!("{path}.final_status"), r.final_status, OrderStatus::Unspecified);
            let symbol = c.symbol(&format!("{path}.symbol"), &r.symbol);
            let seen: EventIds =
                r.seen_event_ids.iter().filter_map(|s| c.id(&format!("{path}.seen_event_ids"), s)).collect();
            if r.slot_id >= cfg.slot_count {
                c.bad(format!("{path}.slot_id"), "is out of range");
            }
            if let (Some(number), Some(status), Some(symbol)) = (number, status, symbol) {
                retired.push_back(Retired {
                    number,
                    venue_order_id: vid,
                    slot: r.slot_id,
                    trade_id,
                    status,
                    seen_event_ids: seen,
                    symbol,
                });
            }
        }
        let clock = c.time_opt("clock", &m.clock).flatten();
        let mut marks = BTreeMap::new();
        for (i, mark) in m.marks.iter().enumerate() {
            let symbol = c.symbol(&format!("marks[{i}].symbol"), &mark.symbol);
            let price = c.positive(&format!("marks[{i}].price"), &mark.price);
            if let (Some(symbol), Some(price)) = (symbol, price) {
                marks.insert(symbol, price);
            }
        }
        let mut funding_watermarks = BTreeMap::new();
        for (i, w) in m.funding_watermarks.iter().enumerate() {
            let symbol = c.symbol(&format!("funding_watermarks[{i}].symbol"), &w.symbol);
            let at = c.time(&format!("funding_watermarks[{i}].funding_time"), &w.funding_time);
            if let (Some(symbol), Some(at)) = (symbol, at) {
                funding_watermarks.insert(symbol, at);
            }
        }
        if m.next_trade_number == 0 || m.next_order_number == 0 {
            c.bad("next_order_number", "id counters start at 1");
        }
        let (Some(control), Some(account)) = (control, account) else { return Err(c.violations) };
        if !c.ok() {
            return Err(c.violations);
        }
        let mut kernel = Kernel {
            cfg,
            control,
            instruments: instruments.into_iter().map(|i| (i.symbol.clone(), i)).collect(),
            account,
            slots,
            orders: FxHashMap::default(),
            venue_ids: FxHashMap::default(),
            retired,
            retired_base: 0,
            last_sequence: m.last_sequence,
            clock,
            next_trade: m.next_trade_number,
            next_order: m.next_order_number,
            marks,
            funding_watermarks,
            scratch: crate::kernel::Scratch::default(),
        };
        kernel.rebuild_indexes().map_err(|e| vec![Violation::new("slots", e)])?;
        kernel.check_invariants().map_err(|e| vec![Violation::new("", format!("invariant violated: {e}"))])?;
        Ok(kernel)
    }

    /// Order indexes from the slots and the retired ring; ids must be unique.
    fn rebuild_indexes(&mut self) -> Result<(), String> {
        let mut orders = FxHashMap::default();
        let mut venue_ids = FxHashMap::default();
        let kernel_id = &self.cfg.kernel_id;
        for (number, r) in self.retired.iter().enumerate() {
            if orders.insert(r.number, OrderLoc::Retired(number as u64)).is_some() {
                return Err(format!("client order id {} appears twice", order_id_text(kernel_id, r.number)));
            }
            if let Some(v) = &r.venue_order_id {
                if venue_ids.insert(v.clone(), r.number).is_some() {
                    return Err(format!("venue order id {v} appears twice"));
                }
            }
        }
        for slot in &self.slots {
            if let Some(order) = &slot.order {
                if orders.insert(order.number, OrderLoc::Live(slot.id)).is_some() {
                    return Err(format!(
                        "client order id {} appears twice",
                        order.client_order_id(&self.cfg.kernel_id)
                    ));
                }
                if let Some(v) = &order.venue_order_id {
                    if venue_ids.insert(v.clone(), order.number).is_some() {
                        return Err(format!("venue order id {v} appears twice"));
                    }
                }
            }
        }
        self.orders = orders;
        self.venue_ids = venue_ids;
        self.retired_base = 0;
        Ok(())
    }
}

fn restore_account(c: &mut Checker, m: Option<&pb::Account>, cfg: &Config) -> Option<Account> {
    let Some(m) = m else {
        c.bad("account", "is required");
        return None;
    };
    if m.settlement_asset != *cfg.settlement_asset {
        c.bad("account.settlement_asset", "differs from the config");
    }
    let mut money = |field: &str, value: &Option<pb::Decimal>| -> Option<Decimal> {
        let path = format!("account.{field}");
        let raw = c.required_decimal(&path, value);
        c.bounded(&path, raw, -MAX_CAPITAL, false, MAX_CAPITAL)
    };
    let initial = money("initial_capital", &m.initial_capital);
    let capital = money("capital", &m.capital);
    let realized = money("realized_pnl", &m.realized_pnl);
    let fees = money("fees", &m.fees);
    let funding = money("funding", &m.funding);
    let adjustments = money("adjustments", &m.adjustments);
    Some(Account {
        initial_capital: initial?,
        capital: capital?,
        realized_pnl: realized?,
        fees: fees?,
        funding: funding?,
        adjustments: adjustments?,
        ledger_sequence: m.ledger_sequence,
        trades_closed: m.trades_closed,
        active_slots: m.active_slots,
    })
}

fn signed(c: &mut Checker, field: &str, value: &Option<pb::Decimal>) -> Option<Decimal> {
    let raw = c.required_decimal(field, value);
    c.bounded(field, raw, -MAX_CAPITAL, false, MAX_CAPITAL)
}

/// The number of a snapshot's client order id: a valid id that this kernel
/// formats (see `model::order_number`).
fn order_number_of(c: &mut Checker, kernel_id: &str, field: &str, cid: &str) -> Option<u64> {
    c.id(field, cid)?;
    let number = order_number(kernel_id, cid);
    if number.is_none() {
        c.bad(field, format!("is not an order id of kernel {kernel_id} (\"{kernel_id}-<number>\")"));
    }
    number
}

fn restore_order(c: &mut Checker, path: &str, m: &pb::Order, kernel_id: &str) -> Option<Order> {
    let field = format!("{path}.client_order_id");
    let number = order_number_of(c, kernel_id, &field, &m.client_order_id);
    let cid = number.and_then(|_| c.id(&field, &m.client_order_id));
    let vid = c.id_opt(&format!("{path}.venue_order_id"), &m.venue_order_id);
    let purpose = c.enumeration(&format!("{path}.purpose"), m.purpose, OrderPurpose::Unspecified);
    let symbol = c.symbol(&format!("{path}.symbol"), &m.symbol);
    let side = c.enumeration(&format!("{path}.side"), m.side, OrderSide::Unspecified);
    let order_type = c.enumeration(&format!("{path}.order_type"), m.order_type, OrderType::Unspecified);
    let kind = match order_type {
        Some(OrderType::Limit) => {
            let price = c.positive(&format!("{path}.limit_price"), &m.limit_price);
            let tif = c.enumeration(&format!("{path}.time_in_force"), m.time_in_force, TimeInForce::Unspecified);
            match (price, tif) {
                (Some(price), Some(tif)) => Some(OrderKind::Limit { price, tif }),
                _ => None,
            }
        }
        Some(_) => Some(OrderKind::Market),
        None => None,
    };
    let quantity = c.positive(&format!("{path}.quantity"), &m.quantity);
    let status = c.enumeration(&format!("{path}.status"), m.status, OrderStatus::Unspecified);
    let filled = signed(c, &format!("{path}.filled_quantity"), &m.filled_quantity);
    let notional = signed(c, &format!("{path}.fill_notional"), &m.fill_notional);
    let fees = signed(c, &format!("{path}.fees"), &m.fees);
    let cumulative = signed(c, &format!("{path}.venue_cumulative_quantity"), &m.venue_cumulative_quantity);
    let intent_id = c.id(&format!("{path}.intent_id"), &m.intent_id);
    let mut seen = EventIds::default();
    for id in &m.seen_event_ids {
        if let Some(id) = c.id(&format!("{path}.seen_event_ids"), id) {
            seen.insert(id);
        }
    }
    let create_time = c.time(&format!("{path}.create_time"), &m.create_time);
    let last_exchange_time = c.time_opt(&format!("{path}.last_exchange_time"), &m.last_exchange_time)?;
    // Validated as an id too (its text is not kept: the number is).
    cid?;
    Some(Order {
        number: number?,
        venue_order_id: vid,
        purpose: purpose?,
        symbol: symbol?,
        side: side?,
        kind: kind?,
        quantity: quantity?,
        reduce_only: m.reduce_only,
        status: status?,
        fills: OrderFills { filled: filled?, notional: notional?, fees: fees?, venue_cumulative: cumulative? },
        venue_final: m.venue_final,
        cancel_requested: m.cancel_requested,
        exit_leg: m.exit_leg,
        intent_id: intent_id?,
        seen_event_ids: seen,
        create_sequence: m.create_sequence,
        create_time: create_time?,
        last_exchange_time,
        queries_sent: m.queries_sent,
        cancels_sent: m.cancels_sent,
    })
}

fn restore_slot(c: &mut Checker, path: &str, m: &pb::Slot, index: usize, kernel_id: &str) -> Option<Slot> {
    if m.slot_id as usize != index {
        c.bad(format!("{path}.slot_id"), format!("is {} at position {index}", m.slot_id));
    }
    let state = c.enumeration(&format!("{path}.state"), m.state, SlotState::Unspecified);
    let trade_id = c.id_opt(&format!("{path}.trade_id"), &m.trade_id);
    let symbol = c.symbol_opt(&format!("{path}.symbol"), &m.symbol);
    let side = c.enumeration_opt(&format!("{path}.side"), m.side, Side::Unspecified)?;
    let leverage = c.decimal(&format!("{path}.leverage"), &m.leverage).unwrap_or(Decimal::ZERO);
    let mut ratios = Vec::with_capacity(m.exit_leg_ratios.len());
    for (i, r) in m.exit_leg_ratios.iter().enumerate() {
        if let Some(r) = c.positive(&format!("{path}.exit_leg_ratios[{i}]"), &Some(r.clone())) {
            ratios.push(r);
        }
    }
    let mut f = |name: &str, value: &Option<pb::Decimal>| signed(c, &format!("{path}.{name}"), value);
    let book = Book {
        position: f("position_size", &m.position_size)?,
        entry_quantity: f("entry_filled_quantity", &m.entry_filled_quantity)?,
        entry_notional: f("entry_notional", &m.entry_notional)?,
        cost_basis: f("cost_basis", &m.cost_basis)?,
        exit_quantity: f("exit_filled_quantity", &m.exit_filled_quantity)?,
        exit_notional: f("exit_notional", &m.exit_notional)?,
        realized_pnl: f("realized_pnl", &m.realized_pnl)?,
        fees: f("fees", &m.fees)?,
        leg_filled: f("leg_filled_quantity", &m.leg_filled_quantity)?,
    };
    let order = match &m.active_order {
        Some(o) => Some(restore_order(c, &format!("{path}.active_order"), o, kernel_id)?),
        None => None,
    };
    let labels = c.labels(&format!("{path}.labels"), &m.labels);
    let deadline = c.time_opt(&format!("{path}.deadline"), &m.deadline)?;
    let open_time = c.time_opt(&format!("{path}.open_time"), &m.open_time)?;
    let close_time = c.time_opt(&format!("{path}.close_time"), &m.close_time)?;
    let update_time = c.time_opt(&format!("{path}.update_time"), &m.update_time)?;
    let entry_intent_id = c.id_opt(&format!("{path}.entry_intent_id"), &m.entry_intent_id);
    let last_intent_id = c.id_opt(&format!("{path}.last_intent_id"), &m.last_intent_id);
    Some(Slot {
        id: m.slot_id,
        version: m.version,
        state: state?,
        trade_id,
        symbol,
        side: side.unwrap_or(Side::Unspecified),
        leverage,
        exit_leg_ratios: ratios,
        next_exit_leg: m.next_exit_leg,
        book,
        order,
        deadline,
        deadline_misses: m.deadline_misses,
        entry_intent_id,
        last_intent_id,
        open_time,
        close_time,
        update_time,
        labels: Arc::new(labels),
    })
}
