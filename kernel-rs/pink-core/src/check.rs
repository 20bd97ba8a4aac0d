//! Field checks shared by input decoding, config and snapshot restore. Each
//! check records a violation naming the field and returns `None` on failure,
//! so one pass reports every bad field at once.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use crate::model::Nanos;
use crate::num;
use crate::output::Violation;
use crate::pb;
use crate::text::{self, Id};

/// Largest quantity or price accepted.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1e12
/// Largest capital, balance or notional limit accepted.
pub const MAX_CAPITAL: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0); // 1e15
/// Latest time accepted (2200-01-01T00:00:00Z), so nanoseconds fit an i64.
pub const MAX_SECONDS: i64 = 7_258_118_400;
/// Highest leverage any config may allow.
pub const MAX_LEVERAGE: u32 = 150;

#[derive(Default)]
pub struct Checker {
    pub violations: Vec<Violation>,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    pub fn bad(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(Violation::new(field, description));
    }

    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<Violation>> {
        match value {
            Some(value) if self.violations.is_empty() => Ok(value),
            _ if self.violations.is_empty() => Err(vec![Violation::new("", "invalid")]),
            _ => Err(self.violations),
        }
    }

    /// Parses an optional decimal; present-but-malformed is a violation.
    pub fn decimal(&mut self, field: &str, value: &Option<pb::Decimal>) -> Option<Decimal> {
        self.decimal_text(field, value.as_ref().map(|d| d.value.as_str()))
    }

    /// `decimal` on the text of a `pink.v1.Decimal` (`None`: the message is absent).
    pub fn decimal_text(&mut self, field: &str, value: Option<&str>) -> Option<Decimal> {
        match num::parse(value?) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.bad(field, error.describe());
                None
            }
        }
    }

    pub fn required_decimal(&mut self, field: &str, value: &Option<pb::Decimal>) -> Option<Decimal> {
        self.required_decimal_text(field, value.as_ref().map(|d| d.value.as_str()))
    }

    pub fn required_decimal_text(&mut self, field: &str, value: Option<&str>) -> Option<Decimal> {
        if value.is_none() {
            self.bad(field, "is required");
            return None;
        }
        self.decimal_text(field, value)
    }

    /// A decimal within [min, max] (min exclusive when `min_exclusive`).
    pub fn bounded(
        &mut self,
        field: &str,
        value: Option<Decimal>,
        min: Decimal,
        min_exclusive: bool,
        max: Decimal,
    ) -> Option<Decimal> {
        let value = value?;
        let low = if min_exclusive { num::cmp(value, min).is_le() } else { num::cmp(value, min).is_lt() };
        if low {
            let rel = if min_exclusive { ">" } else { ">=" };
            self.bad(field, format!("must be {rel} {}, got {}", num::to_text(min), num::to_text(value)));
            return None;
        }
        if num::cmp(value, max).is_gt() {
            self.bad(field, format!("must be <= {}, got {}", num::to_text(max), num::to_text(value)));
            return None;
        }
        Some(value)
    }

    /// A required quantity or price: > 0 and <= 1e12.
    pub fn positive(&mut self, field: &str, value: &Option<pb::Decimal>) -> Option<Decimal> {
        self.positive_text(field, value.as_ref().map(|d| d.value.as_str()))
    }

    pub fn positive_text(&mut self, field: &str, value: Option<&str>) -> Option<Decimal> {
        let parsed = self.required_decimal_text(field, value);
        self.bounded(field, parsed, Decimal::ZERO, true, MAX_AMOUNT)
    }

    /// An optional quantity or price: > 0 and <= 1e12 when present.
    pub fn positive_opt(&mut self, field: &str, value: &Option<pb::Decimal>) -> Option<Decimal> {
        self.positive_opt_text(field, value.as_ref().map(|d| d.value.as_str()))
    }

    pub fn positive_opt_text(&mut self, field: &str, value: Option<&str>) -> Option<Decimal> {
        let parsed = self.decimal_text(field, value);
        self.bounded(field, parsed, Decimal::ZERO, true, MAX_AMOUNT)
    }

    /// A whole-number leverage in [1, cap].
    pub fn leverage(&mut self, field: &str, value: Option<Decimal>, cap: u32) -> Option<Decimal> {
        let value = self.bounded(field, value, Decimal::ONE, false, Decimal::from(cap))?;
        if !value.is_integer() {
            self.bad(field, format!("must be a whole number, got {}", num::to_text(value)));
            return None;
        }
        Some(value.normalize())
    }

    pub fn absent(&mut self, field: &str, present: bool, why: &str) {
        if present {
            self.bad(field, format!("must be empty {why}"));
        }
    }

    pub fn id(&mut self, field: &str, value: &str) -> Option<Id> {
        match text::id(value) {
            Ok(id) => Some(id),
            Err(e) => {
                self.bad(field, e);
                None
            }
        }
    }

    pub fn id_opt(&mut self, field: &str, value: &str) -> Option<Id> {
        if value.is_empty() {
            None
        } else {
            self.id(field, value)
        }
    }

    pub fn symbol(&mut self, field: &str, value: &str) -> Option<Id> {
        match text::symbol(value) {
            Ok(symbol) => Some(symbol),
            Err(e) => {
                self.bad(field, e);
                None
            }
        }
    }

    pub fn symbol_opt(&mut self, field: &str, value: &str) -> Option<Id> {
        if value.is_empty() {
            None
        } else {
            self.symbol(field, value)
        }
    }

    pub fn free_text(&mut self, field: &str, value: &str, max: usize) -> String {
        if self.free_text_ok(field, value, max) {
            value.to_owned()
        } else {
            String::new()
        }
    }

    /// `free_text` when only the check is wanted.
    pub fn free_text_ok(&mut self, field: &str, value: &str, max: usize) -> bool {
        match text::free_text(value, max) {
            Ok(()) => true,
            Err(e) => {
                self.bad(field, e);
                false
            }
        }
    }

    /// A known, specified enum value.
    pub fn enumeration<T>(&mut self, field: &str, raw: i32, unspecified: T) -> Option<T>
    where
        T: TryFrom<i32> + PartialEq + Copy,
    {
        match T::try_from(raw) {
            Ok(value) if value == unspecified => {
                self.bad(field, "is required");
                None
            }
            Ok(value) => Some(value),
            Err(_) => {
                self.bad(field, format!("unknown enum value {raw}"));
                None
            }
        }
    }

    /// A known enum value, unspecified allowed.
    pub fn enumeration_opt<T>(&mut self, field: &str, raw: i32, unspecified: T) -> Option<Option<T>>
    where
        T: TryFrom<i32> + PartialEq + Copy,
    {
        match T::try_from(raw) {
            Ok(value) if value == unspecified => Some(None),
            Ok(value) => Some(Some(value)),
            Err(_) => {
                self.bad(field, format!("unknown enum value {raw}"));
                None
            }
        }
    }

    pub fn time(&mut self, field: &str, value: &Option<prost_types::Timestamp>) -> Option<Nanos> {
        let Some(ts) = value else {
            self.bad(field, "is required");
            return None;
        };
        self.timestamp(field, ts)
    }

    pub fn time_opt(&mut self, field: &str, value: &Option<prost_types::Timestamp>) -> Option<Option<Nanos>> {
        match value {
            None => Some(None),
            Some(ts) => self.timestamp(field, ts).map(Some),
        }
    }

    fn timestamp(&mut self, field: &str, ts: &prost_types::Timestamp) -> Option<Nanos> {
        if !(0..=MAX_SECONDS).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos) {
            self.bad(field, "must be between 1970-01-01 and 2200-01-01 with nanos in [0, 1e9)");
            return None;
        }
        ts.seconds.checked_mul(1_000_000_000).and_then(|s| s.checked_add(i64::from(ts.nanos)))
    }

    /// A positive duration of at most one day.
    pub fn duration(&mut self, field: &str, value: &Option<prost_types::Duration>) -> Option<Nanos> {
        let Some(d) = value else {
            self.bad(field, "is required");
            return None;
        };
        let nanos = d.seconds.checked_mul(1_000_000_000).and_then(|s| s.checked_add(i64::from(d.nanos)));
        match nanos {
            Some(n) if n > 0 && n <= 86_400_000_000_000 && (0..1_000_000_000).contains(&d.nanos) => Some(n),
            _ => {
                self.bad(field, "must be a positive duration of at most 1 day");
                None
            }
        }
    }

    pub fn labels(&mut self, field: &str, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        if labels.len() > 16 {
            self.bad(field, format!("has {} entries, at most 16 allowed", labels.len()));
            return BTreeMap::new();
        }
        for (key, value) in labels {
            if let Err(e) = text::label_key(key) {
                self.bad(format!("{field}[{key:?}]"), format!("key {e}"));
            }
            if let Err(e) = text::free_text(value, 128) {
                self.bad(format!("{field}[{key:?}]"), format!("value {e}"));
            }
        }
        labels.clone()
    }

    /// Sorted, unique, valid symbols.
    pub fn symbol_set(&mut self, field: &str, symbols: &[String]) -> BTreeSet<Id> {
        let mut set = BTreeSet::new();
        if symbols.len() > 1000 {
            self.bad(field, format!("has {} entries, at most 1000 allowed", symbols.len()));
            return set;
        }
        for (i, raw) in symbols.iter().enumerate() {
            if let Some(symbol) = self.symbol(&format!("{field}[{i}]"), raw) {
                if !set.insert(symbol) {
                    self.bad(format!("{field}[{i}]"), format!("{raw} appears more than once"));
                }
            }
        }
        set
    }
}
