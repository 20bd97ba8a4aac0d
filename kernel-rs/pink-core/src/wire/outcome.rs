//! `Output` -> `pink.v1.Outcome` bytes (see `wire`).

use prost::encoding::WireType;
use rust_decimal::Decimal;

use crate::model::{Nanos, OrderKind};
use crate::num::Text;
use crate::output::{Anomaly, Command, CommandBody, LedgerEntry, OrderRef, Output, Place, Transition};
use crate::pb::{OrderType, TimeInForce};
use crate::text::Id;

/// Appends `value` as a protobuf varint (what `prost::encoding::encode_varint`
/// writes, without its per-byte capacity checks).
fn put_varint(mut value: u64, buf: &mut Vec<u8>) {
    while value >= 0x80 {
        buf.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// A field key: one byte for every tag below 16 (all but a few here; inlined,
/// a constant tag's key is a constant byte).
#[inline(always)]
fn put_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    let key = tag << 3 | wire_type as u32;
    match u8::try_from(key) {
        Ok(byte) if byte < 0x80 => buf.push(byte),
        _ => put_varint(u64::from(key), buf),
    }
}

/// Appends protobuf fields to a byte buffer.
pub(super) struct Writer<'a>(pub(super) &'a mut Vec<u8>);

impl Writer<'_> {
    /// An `int32`/enum value: sign-extended like prost does.
    fn int32(&mut self, tag: u32, value: i32) {
        if value != 0 {
            put_key(tag, WireType::Varint, self.0);
            put_varint(i64::from(value) as u64, self.0);
        }
    }

    fn int64(&mut self, tag: u32, value: i64) {
        if value != 0 {
            put_key(tag, WireType::Varint, self.0);
            put_varint(value as u64, self.0);
        }
    }

    fn uint64(&mut self, tag: u32, value: u64) {
        if value != 0 {
            put_key(tag, WireType::Varint, self.0);
            put_varint(value, self.0);
        }
    }

    fn uint32(&mut self, tag: u32, value: u32) {
        self.uint64(tag, u64::from(value));
    }

    /// A proto3 `optional uint32`: written whenever it is set, even to 0.
    fn uint32_opt(&mut self, tag: u32, value: Option<u32>) {
        if let Some(value) = value {
            put_key(tag, WireType::Varint, self.0);
            put_varint(u64::from(value), self.0);
        }
    }

    fn bool(&mut self, tag: u32, value: bool) {
        if value {
            put_key(tag, WireType::Varint, self.0);
            self.0.push(1);
        }
    }

    #[inline]
    pub(super) fn bytes(&mut self, tag: u32, value: &[u8]) {
        if !value.is_empty() {
            put_key(tag, WireType::LengthDelimited, self.0);
            put_varint(value.len() as u64, self.0);
            self.0.extend_from_slice(value);
        }
    }

    #[inline]
    fn str(&mut self, tag: u32, value: &str) {
        self.bytes(tag, value.as_bytes());
    }

    #[inline]
    fn id(&mut self, tag: u32, value: &Option<Id>) {
        self.str(tag, value.as_deref().unwrap_or(""));
    }

    /// A nested message (always written, even when empty): the body is
    /// written after a one-byte length, which grows in place if needed.
    pub(super) fn message(&mut self, tag: u32, body: impl FnOnce(&mut Writer<'_>)) {
        put_key(tag, WireType::LengthDelimited, self.0);
        let at = self.0.len();
        self.0.push(0);
        body(self);
        let len = self.0.len().saturating_sub(at).saturating_sub(1);
        if let Ok(short) = u8::try_from(len) {
            if short < 0x80 {
                if let Some(byte) = self.0.get_mut(at) {
                    *byte = short;
                }
                return;
            }
        }
        let mut prefix = Vec::with_capacity(4);
        put_varint(len as u64, &mut prefix);
        self.0.splice(at..at.saturating_add(1), prefix);
    }

    /// A `pink.v1.Decimal` in canonical text.
    pub(super) fn decimal(&mut self, tag: u32, value: Decimal) {
        match u64::try_from(value.mantissa().unsigned_abs()) {
            Ok(mantissa) => self.small_decimal(tag, value.is_sign_negative(), mantissa, value.scale()),
            Err(_) => {
                let text = Text::new(value);
                self.message(tag, |w| w.bytes(1, text.as_bytes()));
            }
        }
    }

    /// The text `num::Text` writes for a mantissa that fits a u64: itoa's
    /// digits with the point placed in them.
    fn small_decimal(&mut self, tag: u32, negative: bool, mut mantissa: u64, mut scale: u32) {
        while scale > 0 && mantissa != 0 && mantissa.wrapping_rem(10) == 0 {
            mantissa = mantissa.wrapping_div(10);
            scale = scale.wrapping_sub(1);
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(mantissa).as_bytes();
        let sign: &[u8] = if negative && mantissa != 0 { b"-" } else { b"" };
        let scale = scale as usize;
        let (whole, fraction, pad) = if mantissa == 0 || scale == 0 {
            (digits, &b""[..], 0)
        } else if scale < digits.len() {
            let (whole, fraction) = digits.split_at(digits.len().wrapping_sub(scale));
            (whole, fraction, 0)
        } else {
            (&b"0"[..], digits, scale.wrapping_sub(digits.len()))
        };
        let point = usize::from(!fraction.is_empty());
        // At most 1 + 20 + 1 + 28 bytes: one-byte lengths.
        let len =
            sign.len().wrapping_add(whole.len()).wrapping_add(point).wrapping_add(pad).wrapping_add(fraction.len());
        put_key(tag, WireType::LengthDelimited, self.0);
        self.0.extend_from_slice(&[(len as u8).wrapping_add(2), 0x0A, len as u8]);
        self.0.extend_from_slice(sign);
        self.0.extend_from_slice(whole);
        if point == 1 {
            self.0.push(b'.');
            self.0.extend(std::iter::repeat_n(b'0', pad));
            self.0.extend_from_slice(fraction);
        }
    }

    /// A `google.protobuf.Timestamp`.
    fn time(&mut self, tag: u32, nanos: Nanos) {
        self.message(tag, |w| {
            w.int64(1, nanos.div_euclid(1_000_000_000));
            w.int32(2, nanos.rem_euclid(1_000_000_000) as i32);
        });
    }
}

fn transition(w: &mut Writer<'_>, t: &Transition) {
    w.uint32(1, t.slot);
    w.id(2, &t.trade_id);
    w.int32(3, t.from as i32);
    w.int32(4, t.to as i32);
    w.int32(5, t.cause as i32);
    w.uint64(6, t.sequence);
    w.id(7, &t.client_order_id);
    w.uint64(8, t.slot_version);
}

/// Order type, limit price and time in force of an order kind.
fn kind_fields(kind: &OrderKind) -> (i32, Option<Decimal>, i32) {
    match kind {
        OrderKind::Market => (OrderType::Market as i32, None, TimeInForce::Unspecified as i32),
        OrderKind::Limit { price, tif } => (OrderType::Limit as i32, Some(*price), *tif as i32),
    }
}

fn place(w: &mut Writer<'_>, p: &Place) {
    let (order_type, limit_price, time_in_force) = kind_fields(&p.kind);
    w.str(1, &p.client_order_id);
    w.str(2, &p.symbol);
    w.int32(3, p.side as i32);
    w.int32(4, order_type);
    w.decimal(5, p.quantity);
    if let Some(price) = limit_price {
        w.decimal(6, price);
    }
    w.int32(7, time_in_force);
    w.bool(8, p.reduce_only);
    w.decimal(9, p.leverage);
    w.int32(10, p.purpose as i32);
    w.int32(11, p.position_side as i32);
}

fn order_ref(w: &mut Writer<'_>, r: &OrderRef) {
    w.str(1, &r.client_order_id);
    w.id(2, &r.venue_order_id);
    w.str(3, &r.symbol);
}

/// Writes `Command::idempotency_key` without building the string.
fn idempotency_key(w: &mut Writer<'_>, c: &Command) {
    let (order, what) = match &c.body {
        CommandBody::Place(place) => return w.str(1, &place.client_order_id),
        CommandBody::Cancel(order) => (order, ":cancel:"),
        CommandBody::Query(order, _) => (order, ":query:"),
    };
    let mut number = itoa::Buffer::new();
    let number = number.format(c.number);
    let cid = order.client_order_id.as_bytes();
    let len = cid.len().saturating_add(what.len()).saturating_add(number.len());
    put_key(1, WireType::LengthDelimited, w.0);
    put_varint(len as u64, w.0);
    w.0.extend_from_slice(cid);
    w.0.extend_from_slice(what.as_bytes());
    w.0.extend_from_slice(number.as_bytes());
}

fn command(w: &mut Writer<'_>, c: &Command) {
    idempotency_key(w, c);
    w.uint32(2, c.slot);
    w.id(3, &c.trade_id);
    match &c.body {
        CommandBody::Place(p) => w.message(10, |w| place(w, p)),
        CommandBody::Cancel(r) => w.message(11, |w| order_ref(w, r)),
        CommandBody::Query(r, reason) => w.message(12, |w| {
            order_ref(w, r);
            w.int32(4, *reason as i32);
        }),
    }
}

fn ledger(w: &mut Writer<'_>, e: &LedgerEntry) {
    w.uint64(1, e.ledger_sequence);
    w.int32(2, e.kind as i32);
    w.decimal(3, e.amount);
    w.decimal(4, e.capital_before);
    w.decimal(5, e.capital_after);
    w.uint64(6, e.input_sequence);
    w.time(7, e.time);
    w.uint32_opt(8, e.slot);
    w.id(9, &e.trade_id);
    w.id(10, &e.client_order_id);
    w.id(11, &e.venue_event_id);
    w.id(12, &e.symbol);
}

fn anomaly(w: &mut Writer<'_>, a: &Anomaly) {
    w.int32(1, a.kind as i32);
    w.uint32_opt(2, a.slot);
    w.id(3, &a.trade_id);
    w.id(4, &a.client_order_id);
    w.id(5, &a.venue_event_id);
    w.str(6, &a.message);
    w.bool(7, a.reconcile_needed);
}

/// Appends the serialized `pink.v1.Outcome` of `out` to `buf`.
pub fn outcome_into(out: &Output, buf: &mut Vec<u8>) {
    let w = &mut Writer(buf);
    w.uint64(1, out.sequence);
    w.bool(2, out.accepted());
    w.int32(3, out.code as i32);
    w.str(4, &out.message);
    for v in &out.violations {
        w.message(5, |w| {
            w.str(1, &v.field);
            w.str(2, &v.description);
        });
    }
    for t in &out.transitions {
        w.message(6, |w| transition(w, t));
    }
    for c in &out.commands {
        w.message(7, |w| command(w, c));
    }
    for e in &out.ledger {
        w.message(8, |w| ledger(w, e));
    }
    for a in &out.anomalies {
        w.message(9, |w| anomaly(w, a));
    }
    if !out.changed_slots.is_empty() {
        let len: usize = out.changed_slots.iter().map(|s| prost::encoding::encoded_len_varint(u64::from(*s))).sum();
        put_key(10, WireType::LengthDelimited, w.0);
        put_varint(len as u64, w.0);
        for slot in &out.changed_slots {
            put_varint(u64::from(*slot), w.0);
        }
    }
    w.bool(11, out.account_changed);
    w.bool(12, out.control_changed);
    w.id(13, &out.revalued_symbol);
}
