//! `Output` -> `pink.v1.Outcome` bytes (see `wire`).

use rust_decimal::Decimal;

use super::order_ids::{KernelOrderIds, OrderIds};
use crate::model::{Nanos, OrderKind};
use crate::num::Text;
use crate::output::{Anomaly, Command, CommandBody, LedgerEntry, OrderRef, Output, Place, Transition};
use crate::pb::{OrderType, TimeInForce};
use crate::text::Id;

/// `None`: the buffer ran out; the outcome is written again into a larger one.
pub(super) type Room = Option<()>;

/// Room for most outcomes at the first try.
const FIRST_ROOM: usize = 256;

const VARINT: u8 = 0;
const LEN: u8 = 2;

/// A field key. Every tag here is below 16: one byte.
#[inline(always)]
const fn key(tag: u8, wire_type: u8) -> u8 {
    tag << 3 | wire_type
}

/// Writes protobuf fields into a zeroed slice from the front. Each write
/// checks the room left once, instead of a capacity check per pushed byte.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    /// The next `n` bytes, consumed.
    #[inline(always)]
    fn take(&mut self, n: usize) -> Option<&mut [u8]> {
        let end = self.pos.checked_add(n)?;
        let dst = self.buf.get_mut(self.pos..end)?;
        self.pos = end;
        Some(dst)
    }

    #[inline(always)]
    fn byte(&mut self, byte: u8) -> Room {
        *self.buf.get_mut(self.pos)? = byte;
        self.pos = self.pos.wrapping_add(1);
        Some(())
    }

    /// A varint (what `prost::encoding::encode_varint` writes).
    #[inline(always)]
    fn varint(&mut self, mut value: u64) -> Room {
        let mut len: usize = 0;
        for slot in self.buf.get_mut(self.pos..)? {
            len = len.wrapping_add(1);
            if value < 0x80 {
                *slot = value as u8;
                self.pos = self.pos.wrapping_add(len);
                return Some(());
            }
            *slot = value as u8 | 0x80;
            value >>= 7;
        }
        None
    }

    #[inline(always)]
    fn key_varint(&mut self, key: u8, value: u64) -> Room {
        if value < 0x80 {
            // Most values here (slots, enums, flags): two bytes, one check.
            if let [k, byte] = self.take(2)? {
                (*k, *byte) = (key, value as u8);
            }
            return Some(());
        }
        self.byte(key)?;
        self.varint(value)
    }

    /// An `int32`/enum value: sign-extended like prost does.
    #[inline]
    fn int32(&mut self, tag: u8, value: i32) -> Room {
        if value == 0 {
            return Some(());
        }
        self.key_varint(key(tag, VARINT), i64::from(value) as u64)
    }

    #[inline]
    fn int64(&mut self, tag: u8, value: i64) -> Room {
        self.uint64(tag, value as u64)
    }

    #[inline]
    fn uint64(&mut self, tag: u8, value: u64) -> Room {
        if value == 0 {
            return Some(());
        }
        self.key_varint(key(tag, VARINT), value)
    }

    #[inline]
    fn uint32(&mut self, tag: u8, value: u32) -> Room {
        self.uint64(tag, u64::from(value))
    }

    /// A proto3 `optional uint32`: written whenever it is set, even to 0.
    fn uint32_opt(&mut self, tag: u8, value: Option<u32>) -> Room {
        match value {
            Some(value) => self.key_varint(key(tag, VARINT), u64::from(value)),
            None => Some(()),
        }
    }

    #[inline]
    fn bool(&mut self, tag: u8, value: bool) -> Room {
        if value {
            if let [k, one] = self.take(2)? {
                *k = key(tag, VARINT);
                *one = 1;
            }
        }
        Some(())
    }

    #[inline]
    pub(super) fn bytes(&mut self, tag: u8, value: &[u8]) -> Room {
        let len = value.len();
        if len == 0 {
            return Some(());
        }
        if len < 0x80 {
            if let [k, short, text @ ..] = self.take(len.wrapping_add(2))? {
                *k = key(tag, LEN);
                *short = len as u8;
                copy_short(text, value);
            }
            return Some(());
        }
        self.key_varint(key(tag, LEN), len as u64)?;
        self.take(len)?.copy_from_slice(value);
        Some(())
    }

    #[inline]
    fn str(&mut self, tag: u8, value: &str) -> Room {
        self.bytes(tag, value.as_bytes())
    }

    #[inline]
    fn id(&mut self, tag: u8, value: &Option<Id>) -> Room {
        match value {
            Some(value) => self.str(tag, value),
            None => Some(()),
        }
    }

    /// The client order id of order `number`, "<kernel_id>-<number>".
    #[inline(always)]
    fn order_id(&mut self, tag: u8, ids: &mut KernelOrderIds<'_>, number: u64) -> Room {
        self.bytes(tag, ids.text(number))
    }

    #[inline]
    fn order_opt(&mut self, tag: u8, ids: &mut KernelOrderIds<'_>, number: Option<u64>) -> Room {
        match number {
            Some(number) => self.order_id(tag, ids, number),
            None => Some(()),
        }
    }

    /// A nested message (always written, even when empty): the body is
    /// written after a one-byte length and moved right if it needs more.
    #[inline]
    pub(super) fn message(&mut self, tag: u8, body: impl FnOnce(&mut Self) -> Room) -> Room {
        self.byte(key(tag, LEN))?;
        let at = self.pos;
        self.byte(0)?;
        body(self)?;
        let end = self.pos;
        let len = end.wrapping_sub(at).wrapping_sub(1);
        if len < 0x80 {
            *self.buf.get_mut(at)? = len as u8;
            return Some(());
        }
        let width = prost::encoding::encoded_len_varint(len as u64);
        self.take(width.wrapping_sub(1))?;
        self.buf.copy_within(at.wrapping_add(1)..end, at.wrapping_add(width));
        self.pos = at;
        self.varint(len as u64)?;
        self.pos = end.wrapping_add(width).wrapping_sub(1);
        Some(())
    }

    /// A `pink.v1.Decimal` in the canonical text `num::Text` writes.
    pub(super) fn decimal(&mut self, tag: u8, value: Decimal) -> Room {
        match u64::try_from(value.mantissa().unsigned_abs()) {
            Ok(mantissa) => self.small_decimal(tag, value.is_sign_negative(), mantissa, value.scale()),
            Err(_) => {
                let text = Text::new(value);
                self.message(tag, |w| w.bytes(1, text.as_bytes()))
            }
        }
    }

    /// A decimal whose mantissa fits a u64: its digits eight at a time,
    /// then the whole part and the fraction (less its trailing zeros) copied
    /// out as 32-byte windows (what follows each copy is written over). The
    /// text is at most 1 + 20 + 1 + 28 bytes: one-byte lengths.
    fn small_decimal(&mut self, tag: u8, negative: bool, mantissa: u64, scale: u32) -> Room {
        if mantissa == 0 {
            if let [k, outer, inner_key, inner, zero] = self.take(5)? {
                (*k, *outer, *inner_key, *inner, *zero) = (key(tag, LEN), 3, key(1, LEN), 1, b'0');
            }
            return Some(());
        }
        // The mantissa's 20 digits right-aligned at 32, zeros before them.
        let mut digits = [b'0'; 64];
        let low = put_digits(&mut digits, 24, mantissa.wrapping_rem(EIGHT_DIGITS));
        let high = mantissa.wrapping_div(EIGHT_DIGITS);
        let (count, zeros) = if high == 0 {
            (low.count, low.zeros)
        } else {
            let middle = put_digits(&mut digits, 16, high.wrapping_rem(EIGHT_DIGITS));
            let top = high.wrapping_div(EIGHT_DIGITS);
            let top = put_digits(&mut digits, 8, top);
            let count = if top.count == 0 { middle.count.wrapping_add(8) } else { top.count.wrapping_add(16) };
            let zeros = match (low.zeros, middle.zeros) {
                (8, 8) => top.zeros.wrapping_add(16),
                (8, middle) => middle.wrapping_add(8),
                (low, _) => low,
            };
            (count, zeros)
        };
        let scale = scale as usize;
        let fraction = scale.saturating_sub(zeros);
        let whole = count.saturating_sub(scale).max(1);
        let point = 32_usize.saturating_sub(scale);
        let len =
            usize::from(negative).wrapping_add(whole).wrapping_add(fraction).wrapping_add(usize::from(fraction > 0));
        if let [k, outer, inner_key, inner] = self.take(4)? {
            (*k, *outer, *inner_key, *inner) = (key(tag, LEN), (len as u8).wrapping_add(2), key(1, LEN), len as u8);
        }
        if negative {
            self.byte(b'-')?;
        }
        self.window(digits.get(point.wrapping_sub(whole)..)?, whole)?;
        if fraction > 0 {
            self.byte(b'.')?;
            self.window(digits.get(point..)?, fraction)?;
        }
        Some(())
    }

    /// Copies the first 32 bytes of `from` and keeps `len` of them.
    #[inline(always)]
    fn window(&mut self, from: &[u8], len: usize) -> Room {
        let end = self.pos.checked_add(32)?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(from.get(..32)?);
        self.pos = self.pos.wrapping_add(len);
        Some(())
    }

    /// A `google.protobuf.Timestamp`.
    fn time(&mut self, tag: u8, nanos: Nanos) -> Room {
        self.message(tag, |w| {
            w.int64(1, nanos.div_euclid(1_000_000_000))?;
            w.int32(2, nanos.rem_euclid(1_000_000_000) as i32)
        })
    }
}

/// `to.copy_from_slice(from)` (equal lengths): up to 16 bytes as two
/// overlapping words or bytes, cheaper than a call to `memcpy`.
#[inline(always)]
pub(super) fn copy_short(to: &mut [u8], from: &[u8]) {
    match from.len() {
        0 => {}
        1..=3 => {
            let middle = from.len() >> 1;
            if let (Some(t), Some(f)) = (to.first_mut(), from.first()) {
                *t = *f;
            }
            if let (Some(t), Some(f)) = (to.get_mut(middle), from.get(middle)) {
                *t = *f;
            }
            if let (Some(t), Some(f)) = (to.last_mut(), from.last()) {
                *t = *f;
            }
        }
        4..=7 => {
            if let (Some(t), Some(f)) = (to.first_chunk_mut::<4>(), from.first_chunk::<4>()) {
                *t = *f;
            }
            if let (Some(t), Some(f)) = (to.last_chunk_mut::<4>(), from.last_chunk::<4>()) {
                *t = *f;
            }
        }
        8..=16 => {
            if let (Some(t), Some(f)) = (to.first_chunk_mut::<8>(), from.first_chunk::<8>()) {
                *t = *f;
            }
            if let (Some(t), Some(f)) = (to.last_chunk_mut::<8>(), from.last_chunk::<8>()) {
                *t = *f;
            }
        }
        _ => to.copy_from_slice(from),
    }
}

const EIGHT_DIGITS: u64 = 100_000_000;

/// The decimal text of `n` ("0" for 0), written into `digits` (which
/// holds b'0's) ending at 32: one eight-digit group for most numbers.
#[inline(always)]
pub(super) fn decimal(digits: &mut [u8; 64], n: u64) -> &[u8] {
    let count = if n < EIGHT_DIGITS {
        put_digits(digits, 24, n).count.max(1)
    } else {
        let high = n.wrapping_div(EIGHT_DIGITS);
        put_digits(digits, 24, n.wrapping_rem(EIGHT_DIGITS));
        let middle = put_digits(digits, 16, high.wrapping_rem(EIGHT_DIGITS));
        let top = put_digits(digits, 8, high.wrapping_div(EIGHT_DIGITS));
        if top.count == 0 {
            middle.count.wrapping_add(8)
        } else {
            top.count.wrapping_add(16)
        }
    };
    digits.get(32_usize.wrapping_sub(count)..32).unwrap_or_default()
}

/// Digits of an eight-digit group after its leading zeros, and its
/// trailing zero digits (8 for 0).
struct Group {
    count: usize,
    zeros: usize,
}

/// Writes the eight digits of `n` (below 10^8) at `at`: in 64-bit lanes,
/// then 16-bit, then 8-bit ones, no division by a variable.
#[inline(always)]
fn put_digits(digits: &mut [u8; 64], at: usize, n: u64) -> Group {
    let hi = n.wrapping_div(10_000);
    let lo = n.wrapping_sub(hi.wrapping_mul(10_000));
    let x = hi | lo << 32;
    let hundreds = (x.wrapping_mul(10_486) >> 20) & 0x0000_007F_0000_007F;
    let x = hundreds | x.wrapping_sub(hundreds.wrapping_mul(100)) << 16;
    let tens = (x.wrapping_mul(103) >> 10) & 0x000F_000F_000F_000F;
    let x = tens | x.wrapping_sub(tens.wrapping_mul(10)) << 8;
    if let Some(slot) = digits.get_mut(at..at.wrapping_add(8)) {
        slot.copy_from_slice(&(x | 0x3030_3030_3030_3030).to_le_bytes());
    }
    // The first digit is the lowest byte.
    Group { count: 8_usize.wrapping_sub((x.trailing_zeros() >> 3) as usize), zeros: (x.leading_zeros() >> 3) as usize }
}

fn transition(w: &mut Writer<'_>, ids: &mut KernelOrderIds<'_>, t: &Transition) -> Room {
    w.uint32(1, t.slot)?;
    w.id(2, &t.trade_id)?;
    w.int32(3, t.from as i32)?;
    w.int32(4, t.to as i32)?;
    w.int32(5, t.cause as i32)?;
    w.uint64(6, t.sequence)?;
    w.order_opt(7, ids, t.order_number)?;
    w.uint64(8, t.slot_version)
}

/// Order type, limit price and time in force of an order kind.
fn kind_fields(kind: &OrderKind) -> (i32, Option<Decimal>, i32) {
    match kind {
        OrderKind::Market => (OrderType::Market as i32, None, TimeInForce::Unspecified as i32),
        OrderKind::Limit { price, tif } => (OrderType::Limit as i32, Some(*price), *tif as i32),
    }
}

fn place(w: &mut Writer<'_>, ids: &mut KernelOrderIds<'_>, p: &Place) -> Room {
    let (order_type, limit_price, time_in_force) = kind_fields(&p.kind);
    w.order_id(1, ids, p.order_number)?;
    w.str(2, &p.symbol)?;
    w.int32(3, p.side as i32)?;
    w.int32(4, order_type)?;
    w.decimal(5, p.quantity)?;
    if let Some(price) = limit_price {
        w.decimal(6, price)?;
    }
    w.int32(7, time_in_force)?;
    w.bool(8, p.reduce_only)?;
    w.decimal(9, p.leverage)?;
    w.int32(10, p.purpose as i32)?;
    w.int32(11, p.position_side as i32)
}

fn order_ref(w: &mut Writer<'_>, ids: &mut KernelOrderIds<'_>, r: &OrderRef) -> Room {
    w.order_id(1, ids, r.order_number)?;
    w.id(2, &r.venue_order_id)?;
    w.str(3, &r.symbol)
}

/// Writes `Command::idempotency_key` without building the string.
fn idempotency_key(w: &mut Writer<'_>, ids: &mut KernelOrderIds<'_>, c: &Command) -> Room {
    let (order, what) = match &c.body {
        CommandBody::Place(place) => return w.order_id(1, ids, place.order_number),
        CommandBody::Cancel(order) => (order, ":cancel:"),
        CommandBody::Query(order, _) => (order, ":query:"),
    };
    let mut count = [b'0'; 64];
    let count = decimal(&mut count, u64::from(c.number));
    let cid = ids.text(order.order_number);
    let len = cid.len().wrapping_add(what.len()).wrapping_add(count.len());
    w.key_varint(key(1, LEN), len as u64)?;
    copy_short(w.take(cid.len())?, cid);
    copy_short(w.take(what.len())?, what.as_bytes());
    copy_short(w.take(count.len())?, count);
    Some(())
}

fn command(w: &mut Writer<'_>, ids: &mut KernelOrderIds<'_>, c: &Command) -> Room {
    idempotency_key(w, ids, c)?;
    w.uint32(2, c.slot)?;
    w.id(3, &c.trade_id)?;
    match &c.body {
        CommandBody::Place(p) => w.message(10, |w| place(w, ids, p)),
        CommandBody::Cancel(r) => w.message(11, |w| order_ref(w, ids, r)),
        CommandBody::Query(r, reason) => w.message(12, |w| {
            order_ref(w, ids, r)?;
            w.int32(4, *reason as i32)
        }),
    }
}

fn ledger(w: &mut Writer<'_>, ids: &mut KernelOrderIds<'_>, e: &LedgerEntry) -> Room {
    w.uint64(1, e.ledger_sequence)?;
    w.int32(2, e.kind as i32)?;
    w.decimal(3, e.amount)?;
    w.decimal(4, e.capital_before)?;
    w.decimal(5, e.capital_after)?;
    w.uint64(6, e.input_sequence)?;
    w.time(7, e.time)?;
    w.uint32_opt(8, e.slot)?;
    w.id(9, &e.trade_id)?;
    w.order_opt(10, ids, e.order_number)?;
    w.id(11, &e.venue_event_id)?;
    w.id(12, &e.symbol)
}

fn anomaly(w: &mut Writer<'_>, a: &Anomaly) -> Room {
    w.int32(1, a.kind as i32)?;
    w.uint32_opt(2, a.slot)?;
    w.id(3, &a.trade_id)?;
    w.id(4, &a.client_order_id)?;
    w.id(5, &a.venue_event_id)?;
    w.str(6, &a.message)?;
    w.bool(7, a.reconcile_needed)
}

fn outcome(w: &mut Writer<'_>, ids: &mut OrderIds, kernel_id: &Id, out: &Output) -> Room {
    let ids = &mut ids.of(kernel_id);
    w.uint64(1, out.sequence)?;
    w.bool(2, out.accepted())?;
    w.int32(3, out.code as i32)?;
    w.str(4, &out.message)?;
    for v in &out.violations {
        w.message(5, |w| {
            w.str(1, &v.field)?;
            w.str(2, &v.description)
        })?;
    }
    for t in &out.transitions {
        w.message(6, |w| transition(w, ids, t))?;
    }
    for c in &out.commands {
        w.message(7, |w| command(w, ids, c))?;
    }
    for e in &out.ledger {
        w.message(8, |w| ledger(w, ids, e))?;
    }
    for a in &out.anomalies {
        w.message(9, |w| anomaly(w, a))?;
    }
    if !out.changed_slots.is_empty() {
        let len: usize = out.changed_slots.iter().map(|s| prost::encoding::encoded_len_varint(u64::from(*s))).sum();
        w.key_varint(key(10, LEN), len as u64)?;
        for slot in &out.changed_slots {
            w.varint(u64::from(*slot))?;
        }
    }
    w.bool(11, out.account_changed)?;
    w.bool(12, out.control_changed)?;
    w.id(13, &out.revalued_symbol)
}

/// Room beyond which `write_at` stops growing the buffer. No outcome comes
/// near it (a timer over 10,000 slots is a few MiB); reaching it means a
/// write failed for a reason other than room, which must not grow forever.
const MAX_ROOM: usize = 1 << 30;

/// Writes with `write` into `buf` from `start`, growing `buf` (zeroed) until
/// it fits; returns where the bytes end, or `None` past `max_room`. `buf` is
/// never shrunk: past the end are bytes of earlier writes, so a reused buffer
/// is not zeroed again.
fn write_at(
    buf: &mut Vec<u8>,
    start: usize,
    max_room: usize,
    mut write: impl FnMut(&mut Writer<'_>) -> Room,
) -> Option<usize> {
    let mut room = FIRST_ROOM;
    while room <= max_room {
        let need = start.saturating_add(room);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let rest = buf.get_mut(start..)?;
        let mut w = Writer { buf: rest, pos: 0 };
        if write(&mut w).is_some() {
            return Some(start.saturating_add(w.pos));
        }
        room = buf.len().saturating_sub(start).saturating_mul(2);
    }
    None
}

/// Writes the serialized `pink.v1.Outcome` of `out`, an output of the kernel
/// `kernel_id`, into `buf` from `start` (see `write_at`); returns where it
/// ends. Should the writer ever fail for another reason than room, prost
/// writes the same bytes instead. `ids` is reused from the last outcome written.
pub(crate) fn outcome_at(out: &Output, kernel_id: &Id, buf: &mut Vec<u8>, ids: &mut OrderIds, start: usize) -> usize {
    if let Some(end) = write_at(buf, start, MAX_ROOM, |w| outcome(w, ids, kernel_id, out)) {
        return end;
    }
    buf.truncate(start);
    prost::Message::encode(&crate::encode::outcome(out, kernel_id), buf).map_or(start, |()| buf.len())
}

/// Appends the serialized `pink.v1.Outcome` of `out`, an output of the
/// kernel `kernel_id`, to `buf`.
pub fn outcome_into(out: &Output, kernel_id: &Id, buf: &mut Vec<u8>) {
    let end = outcome_at(out, kernel_id, buf, &mut OrderIds::default(), buf.len());
    buf.truncate(end);
}

/// The bytes `write` writes (tests).
#[cfg(test)]
pub(super) fn written(write: impl Fn(&mut Writer<'_>) -> Room) -> Vec<u8> {
    let mut buf = Vec::new();
    let end = write_at(&mut buf, 0, MAX_ROOM, write).unwrap_or(0);
    buf.truncate(end);
    buf
}

#[cfg(test)]
mod bounds {
    use super::write_at;

    #[test]
    fn a_writer_that_never_succeeds_stops_at_the_bound() {
        let mut buf = Vec::new();
        assert_eq!(write_at(&mut buf, 0, 4096, |_| None), None);
        assert_eq!(buf.len(), 4096);
        // One that fits once there is room returns where it ended.
        let mut buf = Vec::new();
        let end = write_at(&mut buf, 3, 4096, |w| w.bytes(1, &[7; 300]));
        assert_eq!(end, Some(3 + 2 + 1 + 300));
    }
}
