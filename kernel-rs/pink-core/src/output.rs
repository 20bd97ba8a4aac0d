//! What one step produces. `encode` turns an `Output` into `pink.v1.Outcome`.

use rust_decimal::Decimal;

use crate::model::{Nanos, OrderKind};
use crate::pb::{
    AnomalyKind, DiagnosticCode, LedgerEntryKind, OrderPurpose, OrderSide, QueryReason, Side, SlotState,
    TransitionCause,
};
use crate::text::Id;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// Accepted: the input's sequence. Rejected: the last applied sequence.
    pub sequence: u64,
    pub code: DiagnosticCode,
    pub message: String,
    pub violations: Vec<Violation>,
    pub transitions: Vec<Transition>,
    pub commands: Vec<Command>,
    pub ledger: Vec<LedgerEntry>,
    pub anomalies: Vec<Anomaly>,
    /// Slots whose version the input changed, in first-change order, without repeats.
    pub changed_slots: Vec<u32>,
    /// A mark price input: the slots of this symbol were revalued.
    pub revalued_symbol: Option<Id>,
    pub account_changed: bool,
    pub control_changed: bool,
}

impl Output {
    pub const fn new(sequence: u64) -> Output {
        Output::with_code(sequence, DiagnosticCode::Ok)
    }

    /// An output with nothing in it; `with_code(0, Unspecified)` is `Output::default()`.
    pub(crate) const fn with_code(sequence: u64, code: DiagnosticCode) -> Output {
        Output {
            sequence,
            code,
            message: String::new(),
            violations: Vec::new(),
            transitions: Vec::new(),
            commands: Vec::new(),
            ledger: Vec::new(),
            anomalies: Vec::new(),
            changed_slots: Vec::new(),
            revalued_symbol: None,
            account_changed: false,
            control_changed: false,
        }
    }

    /// True exactly when the code is OK (the contract of `Outcome.accepted`).
    pub fn accepted(&self) -> bool {
        self.code == DiagnosticCode::Ok
    }

    /// Empties the output for the next step, keeping its capacity.
    #[inline]
    pub fn reset(&mut self, sequence: u64) {
        self.sequence = sequence;
        self.code = DiagnosticCode::Ok;
        self.message.clear();
        // Most lists are empty after most steps: skip their drop loops.
        if !self.violations.is_empty() {
            self.violations.clear();
        }
        if !self.transitions.is_empty() {
            self.transitions.clear();
        }
        if !self.commands.is_empty() {
            self.commands.clear();
        }
        if !self.ledger.is_empty() {
            self.ledger.clear();
        }
        if !self.anomalies.is_empty() {
            self.anomalies.clear();
        }
        self.changed_slots.clear();
        self.revalued_symbol = None;
        self.account_changed = false;
        self.control_changed = false;
    }

    pub fn touch(&mut self, slot: u32) {
        // A plain scan: the list holds one or two slots, too few for the
        // chunked search of `contains`.
        for &changed in &self.changed_slots {
            if changed == slot {
                return;
            }
        }
        self.changed_slots.push(slot);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Violation {
        Violation { field: field.into(), description: description.into() }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub slot: u32,
    pub trade_id: Option<Id>,
    pub from: SlotState,
    pub to: SlotState,
    pub cause: TransitionCause,
    pub sequence: u64,
    /// The order's number (its client order id is "<kernel_id>-<n>").
    pub order_number: Option<u64>,
    pub slot_version: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Per-order count of this kind of command (1 for the first cancel or
    /// query of an order; 0 for a placement).
    pub number: u32,
    pub slot: u32,
    pub trade_id: Option<Id>,
    pub body: CommandBody,
}

impl Command {
    /// Stable dispatch key: the client order id for a placement,
    /// "<cid>:cancel:<n>" and "<cid>:query:<n>" for the others.
    pub fn idempotency_key(&self, kernel_id: &str) -> String {
        let cid = |number| crate::model::order_id_text(kernel_id, number);
        match &self.body {
            CommandBody::Place(place) => cid(place.order_number),
            CommandBody::Cancel(order) => format!("{}:cancel:{}", cid(order.order_number), self.number),
            CommandBody::Query(order, _) => format!("{}:query:{}", cid(order.order_number), self.number),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CommandBody {
    Place(Place),
    Cancel(OrderRef),
    Query(OrderRef, QueryReason),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    /// The order's number (its client order id is "<kernel_id>-<n>").
    pub order_number: u64,
    pub symbol: Id,
    pub side: OrderSide,
    pub kind: OrderKind,
    pub quantity: Decimal,
    pub reduce_only: bool,
    pub leverage: Decimal,
    pub purpose: OrderPurpose,
    pub position_side: Side,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderRef {
    /// The order's number (its client order id is "<kernel_id>-<n>").
    pub order_number: u64,
    pub venue_order_id: Option<Id>,
    pub symbol: Id,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub ledger_sequence: u64,
    pub kind: LedgerEntryKind,
    pub amount: Decimal,
    pub capital_before: Decimal,
    pub capital_after: Decimal,
    pub input_sequence: u64,
    pub time: Nanos,
    pub slot: Option<u32>,
    pub trade_id: Option<Id>,
    /// The order's number (its client order id is "<kernel_id>-<n>").
    pub order_number: Option<u64>,
    pub venue_event_id: Option<Id>,
    pub symbol: Option<Id>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub slot: Option<u32>,
    pub trade_id: Option<Id>,
    pub client_order_id: Option<Id>,
    pub venue_event_id: Option<Id>,
    pub message: String,
    pub reconcile_needed: bool,
}

impl Anomaly {
    pub fn new(kind: AnomalyKind, message: impl Into<String>) -> Anomaly {
        Anomaly {
            kind,
            slot: None,
            trade_id: None,
            client_order_id: None,
            venue_event_id: None,
            message: message.into(),
            reconcile_needed: false,
        }
    }

    pub fn slot(mut self, slot: u32, trade_id: Option<&Id>) -> Anomaly {
        self.slot = Some(slot);
        self.trade_id = trade_id.cloned();
        self
    }

    pub fn order(mut self, client_order_id: &Id) -> Anomaly {
        self.client_order_id = Some(client_order_id.clone());
        self
    }

    pub fn event(mut self, event_id: &Id) -> Anomaly {
        self.venue_event_id = Some(event_id.clone());
        self
    }

    pub fn reconcile(mut self) -> Anomaly {
        self.reconcile_needed = true;
        self
    }
}

/// Why an input was rejected. A rejection changes no state.
#[derive(Clone, Debug, PartialEq)]
pub struct Reject {
    pub code: DiagnosticCode,
    pub message: String,
    pub violations: Vec<Violation>,
    pub anomalies: Vec<Anomaly>,
}

impl Reject {
    pub fn new(code: DiagnosticCode, message: impl Into<String>) -> Reject {
        Reject { code, message: message.into(), violations: Vec::new(), anomalies: Vec::new() }
    }

    pub fn invalid(violations: Vec<Violation>) -> Reject {
        let message = match violations.first() {
            Some(first) if violations.len() == 1 => format!("{}: {}", first.field, first.description),
            Some(first) => {
                format!("{}: {} (and {} more)", first.field, first.description, violations.len().saturating_sub(1))
            }
            None => "invalid input".to_owned(),
        };
        Reject { code: DiagnosticCode::InvalidInput, message, violations, anomalies: Vec::new() }
    }

    pub fn field(field: &str, description: impl Into<String>) -> Reject {
        Reject::invalid(vec![Violation::new(field, description)])
    }

    pub fn with(mut self, anomaly: Anomaly) -> Reject {
        self.anomalies.push(anomaly);
        self
    }

    pub fn overflow(what: &str) -> Reject {
        Reject::new(
            DiagnosticCode::ArithmeticOverflow,
            format!("{what} cannot be computed exactly within 28 significant digits"),
        )
    }
}

/// Result of a handler.
pub type Step<T = ()> = Result<T, Reject>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_output_is_the_default_one() {
        assert_eq!(Output::with_code(0, DiagnosticCode::Unspecified), Output::default());
        assert_eq!(Output::new(7).code, DiagnosticCode::Ok);
    }
}
