//! Hand-written protobuf for the hot paths. Encoding: an `Output` as a
//! `pink.v1.Outcome`, into a reused buffer. It writes exactly the bytes `encode::outcome(out).encode_to_vec()`
//! writes (prost: fields in tag order, proto3 defaults omitted, `optional`
//! fields written when set, packed repeated scalars), without building the
//! intermediate messages and their strings. Decoding: the common inputs
//! straight from the wire, borrowing their text. The tests check both
//! against prost.

use prost::encoding::{decode_key, decode_varint, WireType};
use rust_decimal::Decimal;

use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::check::{MAX_LEVERAGE, MAX_SECONDS};
use crate::input::{Action, Enter, Fill, Input, Intent, Mark, Payload, VenueEvent};
use crate::model::{Config, Nanos, OrderKind};
use crate::num::{self, Text};
use crate::output::{Anomaly, Command, CommandBody, LedgerEntry, OrderRef, Output, Place, Transition};
use crate::pb::{IntentAction, OrderPurpose, OrderType, Side, TimeInForce, VenueEventKind};
use crate::text::{self, Id};

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
struct Writer<'a>(&'a mut Vec<u8>);

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
    fn bytes(&mut self, tag: u32, value: &[u8]) {
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
    fn message(&mut self, tag: u32, body: impl FnOnce(&mut Writer<'_>)) {
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
    fn decimal(&mut self, tag: u32, value: Decimal) {
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

// ----- decoding ---------------------------------------------------------------------------

/// Reads protobuf fields from a byte slice, borrowing text from it.
struct Reader<'a>(&'a [u8]);

/// Wire types as they appear in a key.
const VARINT: u8 = WireType::Varint as u8;
const LENGTH_DELIMITED: u8 = WireType::LengthDelimited as u8;

impl<'a> Reader<'a> {
    /// The next field key: tag and raw wire type (checked by the reader of
    /// the field); `None` at the end or on a malformed key.
    #[inline(always)]
    fn key(&mut self) -> Option<(u32, u8)> {
        let (&key, rest) = self.0.split_first()?;
        if key < 0x80 {
            // Tag 0 is no field of any message read here.
            self.0 = rest;
            return Some((u32::from(key >> 3), key & 0x07));
        }
        decode_key(&mut self.0).ok().map(|(tag, wire_type)| (tag, wire_type as u8))
    }

    #[inline(always)]
    fn varint(&mut self, wire_type: u8) -> Option<u64> {
        if wire_type != VARINT {
            return None;
        }
        self.raw_varint()
    }

    /// A varint as prost reads it (at most 10 bytes, the last one 0 or 1).
    #[inline(always)]
    fn raw_varint(&mut self) -> Option<u64> {
        let (&byte, rest) = self.0.split_first()?;
        if byte < 0x80 {
            self.0 = rest;
            return Some(u64::from(byte));
        }
        self.long_varint()
    }

    /// A varint of two or more bytes. With eight bytes left: from one
    /// little-endian word, without a branch per byte (a varint ending within
    /// them is its bits, as prost reads it). Otherwise up to five (35 bits:
    /// every length, time and enum here) unrolled, longer ones as prost
    /// reads them. (Zero-padding a shorter tail into a word costs more than
    /// it saves.)
    #[inline(always)]
    fn long_varint(&mut self) -> Option<u64> {
        if let Some((word, _)) = self.0.split_first_chunk::<8>() {
            let word = u64::from_le_bytes(*word);
            let ends = !word & 0x8080_8080_8080_8080;
            if ends != 0 {
                // Every byte up to and including the first without its high bit.
                let x = word & (ends ^ ends.wrapping_sub(1)) & 0x7F7F_7F7F_7F7F_7F7F;
                let x = ((x & 0x7F00_7F00_7F00_7F00) >> 1) | (x & 0x007F_007F_007F_007F);
                let x = ((x & 0x3FFF_0000_3FFF_0000) >> 2) | (x & 0x0000_3FFF_0000_3FFF);
                let x = ((x & 0x0FFF_FFFF_0000_0000) >> 4) | (x & 0x0000_0000_0FFF_FFFF);
                let len = ((ends.trailing_zeros() >> 3) as usize).wrapping_add(1);
                self.0 = self.0.get(len..)?;
                return Some(x);
            }
        }
        let low = |byte: u8, shift: u32| u64::from(byte & 0x7F).wrapping_shl(shift);
        let (value, len) = match *self.0 {
            [b0, b1, ..] if b1 < 0x80 => (low(b0, 0) | low(b1, 7), 2),
            [b0, b1, b2, ..] if b2 < 0x80 => (low(b0, 0) | low(b1, 7) | low(b2, 14), 3),
            [b0, b1, b2, b3, ..] if b3 < 0x80 => (low(b0, 0) | low(b1, 7) | low(b2, 14) | low(b3, 21), 4),
            [b0, b1, b2, b3, b4, ..] if b4 < 0x80 => {
                (low(b0, 0) | low(b1, 7) | low(b2, 14) | low(b3, 21) | low(b4, 28), 5)
            }
            _ => return decode_varint(&mut self.0).ok(),
        };
        self.0 = self.0.split_at_checked(len)?.1;
        Some(value)
    }

    #[inline(always)]
    fn bytes(&mut self, wire_type: u8) -> Option<&'a [u8]> {
        if wire_type != LENGTH_DELIMITED {
            return None;
        }
        let len = usize::try_from(self.raw_varint()?).ok()?;
        let (field, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(field)
    }

    #[inline(always)]
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// Marks field `tag` as seen; `None` if it was already (protobuf would merge).
fn first(seen: &mut u32, tag: u32) -> Option<()> {
    let bit = 1_u32.checked_shl(tag)?;
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// Runs `field` on every field of `bytes`, each tag at most once.
fn fields<'a>(bytes: &'a [u8], field: impl FnMut(&mut Reader<'a>, u32, u8) -> Option<()>) -> Option<()> {
    fields_repeating(bytes, None, field)
}

/// `fields`, where the `repeated` tag (a repeated field) may come any number of times.
fn fields_repeating<'a>(
    bytes: &'a [u8],
    repeated: Option<u32>,
    mut field: impl FnMut(&mut Reader<'a>, u32, u8) -> Option<()>,
) -> Option<()> {
    let mut reader = Reader(bytes);
    let mut seen = 0_u32;
    while !reader.done() {
        let (tag, wire_type) = reader.key()?;
        if Some(tag) != repeated {
            first(&mut seen, tag)?;
        }
        field(&mut reader, tag, wire_type)?;
    }
    Some(())
}

// ----- validating straight from the wire --------------------------------------------------

/// Ids the kernel already holds: a decoded id equal to one of them shares its
/// allocation instead of allocating (and later freeing) a copy.
pub(crate) trait Known {
    fn order_id(&self, cid: &str) -> Option<Id>;
    fn venue_order_id(&self, vid: &str) -> Option<Id>;
    fn symbol(&self, symbol: &str) -> Option<Id>;
}

/// No ids known (decoding ahead of the kernel).
pub(crate) struct Unknown;

impl Known for Unknown {
    fn order_id(&self, _: &str) -> Option<Id> {
        None
    }
    fn venue_order_id(&self, _: &str) -> Option<Id> {
        None
    }
    fn symbol(&self, _: &str) -> Option<Id> {
        None
    }
}

/// Byte classes of the `text` charsets (all ASCII).
const ID: u8 = 1;
const SYMBOL: u8 = 2;
const ASSET: u8 = 4;
const PRINTABLE: u8 = 8;

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
static CLASSES: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut class = 0;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-') {
            class |= ID;
        }
        if c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-') {
            class |= SYMBOL;
        }
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            class |= ASSET;
        }
        if c >= 0x20 && c < 0x7F {
            class |= PRINTABLE;
        }
        table[i] = class;
        i += 1;
    }
    table
};

#[inline]
fn all_in(bytes: &[u8], class: u8) -> bool {
    bytes.iter().all(|b| CLASSES.get(usize::from(*b)).is_some_and(|c| c & class != 0))
}

/// 1..=`max` bytes of `class`: what the `text` check of that charset accepts
/// (ASCII, so characters are bytes).
#[inline]
fn ascii(bytes: &[u8], class: u8, max: usize) -> Option<&str> {
    if bytes.is_empty() || bytes.len() > max || !all_in(bytes, class) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// What `text::free_text` accepts.
fn free_text(bytes: &[u8], max: usize) -> Option<&str> {
    if bytes.len() <= max && all_in(bytes, PRINTABLE) {
        return std::str::from_utf8(bytes).ok();
    }
    let value = std::str::from_utf8(bytes).ok()?;
    text::free_text(value, max).ok()?;
    Some(value)
}

/// A fresh id (`text::id`).
fn new_id(bytes: &[u8]) -> Option<Id> {
    ascii(bytes, ID, 64).map(Id::from)
}

fn order_id(bytes: &[u8], known: &impl Known) -> Option<Id> {
    let cid = ascii(bytes, ID, 64)?;
    Some(known.order_id(cid).unwrap_or_else(|| Id::from(cid)))
}

fn venue_order_id(bytes: &[u8], known: &impl Known) -> Option<Id> {
    let vid = ascii(bytes, ID, 64)?;
    Some(known.venue_order_id(vid).unwrap_or_else(|| Id::from(vid)))
}

fn symbol(bytes: &[u8], known: &impl Known) -> Option<Id> {
    let symbol = ascii(bytes, SYMBOL, 32)?;
    Some(known.symbol(symbol).unwrap_or_else(|| Id::from(symbol)))
}

/// Decimal text in the plain grammar `num::parse` reads first
/// (`-?d+(.d{1,18})?`), here with at most 19 digits so that the mantissa is
/// a u64 (longer text is left to `num::parse` on the general path).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Plain {
    negative: bool,
    mantissa: u64,
    scale: u32,
}

impl Plain {
    fn parse(bytes: &[u8]) -> Option<Plain> {
        let (negative, digits) = match bytes.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, bytes),
        };
        let mut mantissa: u64 = 0;
        let mut count = 0_u32;
        let mut point = None;
        for &byte in digits {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 {
                if count >= 19 {
                    return None;
                }
                // At most 19 digits: below 10^19 < 2^64.
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
                count = count.wrapping_add(1);
            } else if byte == b'.' && point.is_none() && count > 0 {
                point = Some(count);
            } else {
                return None;
            }
        }
        let scale = match point {
            Some(at) => count.checked_sub(at).filter(|s| (1..=18).contains(s))?,
            None => 0,
        };
        // "-0" is for `num::parse` to judge.
        if count == 0 || (negative && mantissa == 0) {
            return None;
        }
        Some(Plain { negative, mantissa, scale })
    }

    /// The decimal `num::parse` gives: the digits as the mantissa, the fraction's length as the scale.
    fn decimal(self) -> Decimal {
        Decimal::from_parts(self.mantissa as u32, (self.mantissa >> 32) as u32, 0, self.negative, self.scale)
    }

    /// |value| <= 10^`exp`.
    fn at_most(self, exp: u32) -> bool {
        let exp = exp.saturating_add(self.scale);
        num::POW10_U64.get(exp as usize).is_none_or(|bound| self.mantissa <= *bound)
    }
}

/// The text of a serialized `pink.v1.Decimal`.
fn decimal_text(bytes: &[u8]) -> Option<&[u8]> {
    // Its one field, as prost writes it.
    if let Some((&0x0A, rest)) = bytes.split_first() {
        if let Some((&len, text)) = rest.split_first() {
            if len < 0x80 && usize::from(len) == text.len() {
                return Some(text);
            }
        }
    }
    let mut value: &[u8] = b"";
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => value = r.bytes(wire_type)?,
            _ => return None,
        }
        Some(())
    })?;
    Some(value)
}

fn plain(bytes: &[u8]) -> Option<Plain> {
    Plain::parse(decimal_text(bytes)?)
}

/// A quantity or price: > 0 and <= 1e12 (`Checker::positive_text`).
fn positive(bytes: &[u8]) -> Option<Decimal> {
    let value = plain(bytes)?;
    (!value.negative && value.mantissa > 0 && value.at_most(12)).then(|| value.decimal())
}

/// A whole leverage in [1, MAX_LEVERAGE], normalized (`Checker::leverage`).
fn leverage(bytes: &[u8]) -> Option<Decimal> {
    let value = plain(bytes)?;
    let unit = num::POW10_U64.get(value.scale as usize)?;
    let whole = value.mantissa.checked_div(*unit)?;
    if value.negative || value.mantissa.checked_rem(*unit)? != 0 || !(1..=u64::from(MAX_LEVERAGE)).contains(&whole) {
        return None;
    }
    Some(value.decimal().normalize())
}

/// Exit leg ratios in (0, 1] summing to 1 within 1e-9 (`decode::exit_leg_ratios`).
fn exit_leg_ratios(raw: &[&[u8]]) -> Option<Vec<Decimal>> {
    if raw.is_empty() {
        return Some(vec![Decimal::ONE]);
    }
    let mut ratios = Vec::with_capacity(raw.len());
    for bytes in raw {
        let ratio = plain(bytes)?;
        if ratio.negative || ratio.mantissa == 0 || !ratio.at_most(0) {
            return None;
        }
        ratios.push(ratio.decimal());
    }
    let mut sum = Decimal::ZERO;
    for ratio in &ratios {
        sum = num::add(sum, *ratio)?;
    }
    (num::sub(sum, Decimal::ONE)?.abs() <= Decimal::new(1, 9)).then_some(ratios)
}

/// A valid `google.protobuf.Timestamp` (`Checker::time`; prost reads int32
/// and int64 by truncation) in nanoseconds.
fn time(bytes: &[u8]) -> Option<Nanos> {
    let (mut seconds, mut nanos) = (0_i64, 0_i32);
    let mut r = Reader(bytes);
    // The fields in order, as prost writes them; anything else is read field by field.
    if let Some((&0x08, rest)) = r.0.split_first() {
        r.0 = rest;
        seconds = r.raw_varint()? as i64;
    }
    if let Some((&0x10, rest)) = r.0.split_first() {
        r.0 = rest;
        nanos = r.raw_varint()? as i32;
    }
    if !r.done() {
        fields(bytes, |r, tag, wire_type| {
            match tag {
                1 => seconds = r.varint(wire_type)? as i64,
                2 => nanos = r.varint(wire_type)? as i32,
                _ => return None,
            }
            Some(())
        })?;
    }
    if !(0..=MAX_SECONDS).contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    seconds.checked_mul(1_000_000_000)?.checked_add(i64::from(nanos))
}

fn trace(bytes: &[u8]) -> Option<()> {
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => free_text(r.bytes(wire_type)?, 128)?,
            2 => free_text(r.bytes(wire_type)?, 512)?,
            _ => return None,
        };
        Some(())
    })
}

/// A `pink.v1.Intent` without labels, its fields as on the wire.
#[derive(Default)]
struct RawIntent<'a> {
    intent_id: &'a [u8],
    action: i32,
    slot_id: u32,
    expected_slot_version: Option<u64>,
    symbol: &'a [u8],
    side: i32,
    order_type: i32,
    limit_price: Option<&'a [u8]>,
    time_in_force: i32,
    target_size: Option<&'a [u8]>,
    leverage: Option<&'a [u8]>,
    exit_leg_ratios: SmallVec<[&'a [u8]; 4]>,
    reduce_only: bool,
    reference_price: Option<&'a [u8]>,
    cancel_purpose: i32,
    create_time: Option<&'a [u8]>,
}

/// `decode::order_kind` of a valid order kind.
fn order_kind(order_type: i32, limit: Option<&[u8]>, tif: i32) -> Option<OrderKind> {
    match OrderType::try_from(order_type).ok()? {
        OrderType::Unspecified => None,
        OrderType::Limit => {
            let price = positive(limit?)?;
            let tif = TimeInForce::try_from(tif).ok().filter(|t| *t != TimeInForce::Unspecified)?;
            Some(OrderKind::Limit { price, tif })
        }
        OrderType::Market => (limit.is_none() && tif == 0).then_some(OrderKind::Market),
    }
}

/// `decode::intent` of a valid intent without labels.
fn intent(bytes: &[u8], known: &impl Known) -> Option<Intent> {
    let mut m = RawIntent::default();
    fields_repeating(bytes, Some(12), |r, tag, wire_type| {
        match tag {
            1 => m.intent_id = r.bytes(wire_type)?,
            2 => m.action = r.varint(wire_type)? as i32,
            3 => m.slot_id = r.varint(wire_type)? as u32,
            4 => m.expected_slot_version = Some(r.varint(wire_type)?),
            5 => m.symbol = r.bytes(wire_type)?,
            6 => m.side = r.varint(wire_type)? as i32,
            7 => m.order_type = r.varint(wire_type)? as i32,
            8 => m.limit_price = Some(r.bytes(wire_type)?),
            9 => m.time_in_force = r.varint(wire_type)? as i32,
            10 => m.target_size = Some(r.bytes(wire_type)?),
            11 => m.leverage = Some(r.bytes(wire_type)?),
            // More than 16 legs is invalid.
            12 if m.exit_leg_ratios.len() < 16 => m.exit_leg_ratios.push(r.bytes(wire_type)?),
            13 => m.reduce_only = r.varint(wire_type)? != 0,
            14 => m.reference_price = Some(r.bytes(wire_type)?),
            15 => m.cancel_purpose = r.varint(wire_type)? as i32,
            17 => m.create_time = Some(r.bytes(wire_type)?),
            _ => return None,
        }
        Some(())
    })?;
    let intent_id = new_id(m.intent_id)?;
    if let Some(at) = m.create_time {
        time(at)?;
    }
    let action = match IntentAction::try_from(m.action).ok()? {
        IntentAction::Unspecified => return None,
        IntentAction::Enter => {
            let symbol = symbol(m.symbol, known)?;
            let side = Side::try_from(m.side).ok().filter(|s| *s != Side::Unspecified)?;
            let kind = order_kind(m.order_type, m.limit_price, m.time_in_force)?;
            let size = positive(m.target_size?)?;
            let leverage = leverage(m.leverage?)?;
            let exit_leg_ratios = exit_leg_ratios(&m.exit_leg_ratios)?;
            let reference_price = match m.reference_price {
                Some(price) => Some(positive(price)?),
                None => None,
            };
            let limit = matches!(kind, OrderKind::Limit { .. });
            if m.reduce_only || (limit && reference_price.is_some()) || m.cancel_purpose != 0 {
                return None;
            }
            Action::Enter(Box::new(Enter {
                symbol,
                side,
                kind,
                size,
                leverage,
                exit_leg_ratios,
                reference_price,
                labels: Arc::new(BTreeMap::new()),
            }))
        }
        action @ (IntentAction::Exit | IntentAction::ExitResidual) => {
            if !m.symbol.is_empty()
                || m.side != 0
                || m.target_size.is_some()
                || m.leverage.is_some()
                || !m.exit_leg_ratios.is_empty()
                || m.reference_price.is_some()
                || m.cancel_purpose != 0
            {
                return None;
            }
            let kind = order_kind(m.order_type, m.limit_price, m.time_in_force)?;
            if action == IntentAction::Exit {
                Action::Exit(kind)
            } else {
                Action::ExitResidual(kind)
            }
        }
        IntentAction::Cancel => {
            if !m.symbol.is_empty()
                || m.side != 0
                || m.order_type != 0
                || m.limit_price.is_some()
                || m.time_in_force != 0
                || m.target_size.is_some()
                || m.leverage.is_some()
                || !m.exit_leg_ratios.is_empty()
                || m.reference_price.is_some()
                || m.reduce_only
            {
                return None;
            }
            let purpose = OrderPurpose::try_from(m.cancel_purpose).ok()?;
            Action::Cancel((purpose != OrderPurpose::Unspecified).then_some(purpose))
        }
    };
    Some(Intent { intent_id, slot: m.slot_id, expected_version: m.expected_slot_version, action })
}

/// `decode::venue_event` of a valid venue event.
fn venue_event(bytes: &[u8], cfg: &Config, known: &impl Known) -> Option<VenueEvent> {
    let mut kind = 0_i32;
    let (mut cid, mut vid, mut event_id, mut symbol_text): (&[u8], &[u8], &[u8], &[u8]) = (b"", b"", b"", b"");
    let (mut fee_asset, mut reason): (&[u8], &[u8]) = (b"", b"");
    let (mut last_quantity, mut cumulative, mut last_price, mut average_price, mut fee) =
        (None, None, None, None, None);
    let (mut exchange_time, mut receive_time) = (None, None);
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => kind = r.varint(wire_type)? as i32,
            2 => cid = r.bytes(wire_type)?,
            3 => vid = r.bytes(wire_type)?,
            4 => event_id = r.bytes(wire_type)?,
            5 => symbol_text = r.bytes(wire_type)?,
            6 => last_quantity = Some(r.bytes(wire_type)?),
            7 => cumulative = Some(r.bytes(wire_type)?),
            8 => last_price = Some(r.bytes(wire_type)?),
            9 => average_price = Some(r.bytes(wire_type)?),
            10 => fee = Some(r.bytes(wire_type)?),
            11 => fee_asset = r.bytes(wire_type)?,
            12 => exchange_time = Some(r.bytes(wire_type)?),
            13 => reason = r.bytes(wire_type)?,
            14 => receive_time = Some(r.bytes(wire_type)?),
            _ => return None,
        }
        Some(())
    })?;
    let kind = VenueEventKind::try_from(kind).ok().filter(|k| *k != VenueEventKind::Unspecified)?;
    if cid.is_empty() && vid.is_empty() {
        return None;
    }
    let client_order_id = if cid.is_empty() { None } else { Some(order_id(cid, known)?) };
    let venue_order_id = if vid.is_empty() { None } else { Some(venue_order_id(vid, known)?) };
    let symbol = if symbol_text.is_empty() { None } else { Some(symbol(symbol_text, known)?) };
    let exchange_time = time(exchange_time?)?;
    if let Some(at) = receive_time {
        time(at)?;
    }
    let reason = free_text(reason, 256)?.to_owned();
    let cumulative = match cumulative {
        Some(bytes) => {
            let value = plain(bytes)?;
            Some((!value.negative && value.at_most(12)).then(|| value.decimal())?)
        }
        None => None,
    };
    if !fee_asset.is_empty() {
        ascii(fee_asset, ASSET, 16)?;
    }
    let fill = if matches!(kind, VenueEventKind::PartialFill | VenueEventKind::Fill) {
        let quantity = positive(last_quantity?)?;
        let price = positive(last_price?)?;
        if let Some(average) = average_price {
            positive(average)?;
        }
        let fee = match fee {
            Some(bytes) => {
                let value = plain(bytes)?;
                value.at_most(12).then(|| value.decimal())?
            }
            None => Decimal::ZERO,
        };
        if cumulative? < quantity || (!fee.is_zero() && fee_asset != cfg.settlement_asset.as_bytes()) {
            return None;
        }
        Some(Fill { quantity, price, fee })
    } else {
        if last_quantity.is_some() || last_price.is_some() || average_price.is_some() || fee.is_some() {
            return None;
        }
        if matches!(kind, VenueEventKind::Cancelled | VenueEventKind::Expired) && cumulative.is_none() {
            return None;
        }
        None
    };
    Some(VenueEvent {
        kind,
        client_order_id,
        venue_order_id,
        event_id: new_id(event_id)?,
        symbol,
        fill,
        cumulative,
        exchange_time,
        reason,
    })
}

/// `decode::mark_price` of a valid mark price.
fn mark_price(bytes: &[u8], known: &impl Known) -> Option<Mark> {
    let (mut symbol_text, mut price, mut exchange_time): (&[u8], _, _) = (b"", None, None);
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => symbol_text = r.bytes(wire_type)?,
            2 => price = Some(r.bytes(wire_type)?),
            3 => exchange_time = Some(r.bytes(wire_type)?),
            _ => return None,
        }
        Some(())
    })?;
    let symbol = symbol(symbol_text, known)?;
    let price = positive(price?)?;
    if let Some(at) = exchange_time {
        time(at)?;
    }
    Some(Mark { symbol, price })
}

/// Decodes and validates a serialized `pink.v1.KernelInput` straight from
/// the wire, for the common case only: an intent without labels, a venue
/// event or a mark price in the plain shape (each field at most once with
/// its own wire type, no unknown field) that validates. `None` means "use
/// `decode::input`", which gives the same `Input` for everything this
/// accepts and reports every error.
pub fn input(bytes: &[u8], cfg: &Config) -> Option<Input> {
    input_known(bytes, cfg, &Unknown)
}

/// [`input`], sharing the ids `known` already holds.
pub(crate) fn input_known(bytes: &[u8], cfg: &Config, known: &impl Known) -> Option<Input> {
    let mut sequence = 0;
    let mut time_bytes = None;
    let mut payload = None;
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => sequence = r.varint(wire_type)?,
            2 => time_bytes = Some(r.bytes(wire_type)?),
            3 => trace(r.bytes(wire_type)?)?,
            // One payload only: a second one (even another kind) is for prost to resolve.
            10..=12 if payload.is_none() => payload = Some((tag, r.bytes(wire_type)?)),
            _ => return None,
        }
        Some(())
    })?;
    let (tag, body) = payload?;
    let time = time(time_bytes?)?;
    let payload = match tag {
        10 => Payload::Intent(intent(body, known)?),
        11 => Payload::Venue(venue_event(body, cfg, known)?),
        _ => Payload::Mark(mark_price(body, known)?),
    };
    Some(Input { sequence, time, payload })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::output::{OrderRef, Violation};
    use crate::pb::{
        AnomalyKind, DiagnosticCode, LedgerEntryKind, OrderPurpose, OrderSide, QueryReason, Side, SlotState,
        TransitionCause,
    };
    use crate::testkit::alphabet::{Explorer, ALPHABET};
    use crate::testkit::{d, id};

    fn same_as_prost(out: &Output) {
        let mut buf = vec![0xAA];
        outcome_into(out, &mut buf);
        assert_eq!(buf.get(1..), Some(crate::encode::outcome(out).encode_to_vec().as_slice()), "{out:?}");
    }

    #[test]
    fn every_field_encodes_like_prost() {
        let long = "x".repeat(300);
        let mut out = Output::new(u64::MAX);
        out.code = DiagnosticCode::ReconcileConflict;
        out.message = long.clone();
        out.violations = vec![Violation::new("a.b", long.clone()), Violation::new("", "")];
        out.transitions = vec![Transition {
            slot: 0,
            trade_id: None,
            from: SlotState::Unspecified,
            to: SlotState::ExitCancelling,
            cause: TransitionCause::Reconcile,
            sequence: 0,
            client_order_id: Some(id("c-1")),
            slot_version: 1 << 40,
        }];
        let reference = OrderRef { client_order_id: id("k-1"), venue_order_id: Some(id("v9")), symbol: id("BTC-USDT") };
        out.commands = vec![
            Command {
                number: 0,
                slot: 7,
                trade_id: Some(id("k-t1")),
                body: CommandBody::Place(Place {
                    client_order_id: id("k-1"),
                    symbol: id("BTC-USDT"),
                    side: OrderSide::Sell,
                    kind: OrderKind::Limit { price: d("-0.000100"), tif: TimeInForce::PostOnly },
                    quantity: Decimal::MAX,
                    reduce_only: true,
                    leverage: Decimal::new(0, 5),
                    purpose: OrderPurpose::Exit,
                    position_side: Side::Short,
                }),
            },
            Command { number: 3, slot: 0, trade_id: None, body: CommandBody::Cancel(reference.clone()) },
            Command {
                number: u32::MAX,
                slot: u32::MAX,
                trade_id: None,
                body: CommandBody::Query(
                    OrderRef { venue_order_id: None, ..reference.clone() },
                    QueryReason::Unspecified,
                ),
            },
            Command { number: 1, slot: 1, trade_id: None, body: CommandBody::Query(reference, QueryReason::FillGap) },
        ];
        out.ledger = vec![LedgerEntry {
            ledger_sequence: 9,
            kind: LedgerEntryKind::Funding,
            amount: Decimal::from_i128_with_scale(-1, 28),
            capital_before: Decimal::ZERO,
            capital_after: Decimal::MIN,
            input_sequence: 0,
            time: -1_500_000_001,
            slot: Some(0),
            trade_id: Some(id("t")),
            client_order_id: None,
            venue_event_id: Some(id("e")),
            symbol: Some(id("S")),
        }];
        out.anomalies = vec![
            Anomaly::new(AnomalyKind::FillGap, long).slot(0, None).reconcile(),
            Anomaly::new(AnomalyKind::Unspecified, ""),
        ];
        out.changed_slots = vec![0, 127, 128, 300_000, u32::MAX];
        out.revalued_symbol = Some(id("ETH-USDT"));
        out.account_changed = true;
        out.control_changed = true;
        same_as_prost(&out);
        same_as_prost(&Output::default());
        same_as_prost(&Output::new(1));
        for time in [0, 1, 999_999_999, 1_000_000_000, i64::MAX, i64::MIN] {
            let mut entry = out.ledger.clone();
            if let Some(e) = entry.first_mut() {
                e.time = time;
            }
            same_as_prost(&Output { ledger: entry, ..Output::default() });
        }
    }

    /// Whatever the wire decoder accepts, prost plus `decode::input` decode
    /// to the same input: over model-check inputs, with traces, and with
    /// every byte of them flipped in turn.
    #[test]
    fn wire_inputs_decode_like_prost() {
        let mut explorer = Explorer::new(2);
        explorer.drv.recording = true;
        let mut next = 0_usize;
        for _ in 0..150 {
            next = next.wrapping_mul(31).wrapping_add(17);
            let symbol = ALPHABET.get(next % ALPHABET.len()).copied().unwrap_or(ALPHABET[0]);
            assert!(explorer.apply((next / 7 % 2) as u32, symbol).is_ok());
        }
        let cfg = explorer.kernel().config().clone();
        let (mut fast, mut checked) = (0, 0);
        for (input, _) in &explorer.drv.history {
            let mut wire = crate::encode::input(input, &cfg.settlement_asset);
            if next % 3 == 0 {
                wire.trace =
                    Some(crate::pb::TraceContext { traceparent: "00-ab-cd-01".into(), tracestate: "x=1".into() });
            }
            next = next.wrapping_add(1);
            let bytes = wire.encode_to_vec();
            let plain = match &input.payload {
                crate::input::Payload::Intent(intent) => match &intent.action {
                    crate::input::Action::Enter(enter) => enter.labels.is_empty(),
                    _ => true,
                },
                crate::input::Payload::Venue(_) | crate::input::Payload::Mark(_) => true,
                _ => false,
            };
            assert_eq!(input_matches(&bytes, &cfg), plain, "{input:?}");
            fast += usize::from(plain);
            for at in 0..bytes.len() {
                for bit in [0x01_u8, 0x80] {
                    let mut flipped = bytes.clone();
                    if let Some(byte) = flipped.get_mut(at) {
                        *byte ^= bit;
                    }
                    input_matches(&flipped, &cfg);
                    checked += 1;
                }
            }
        }
        assert!(fast > 50 && checked > 10_000, "{fast} {checked}");
    }

    /// A venue event's receive time (tag 14): a valid one is taken by the fast
    /// path and decodes as prost does; an invalid one is left to prost, which
    /// names the field; every other field reads as before.
    #[test]
    fn receive_time_decodes_like_prost() {
        let cfg = crate::testkit::config(1);
        let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
        let message = |kind: crate::pb::VenueEventKind, receive_time| crate::pb::KernelInput {
            sequence: 0,
            time: at(1_767_225_600, 0),
            trace: None,
            payload: Some(crate::pb::kernel_input::Payload::VenueEvent(crate::pb::VenueEvent {
                kind: kind as i32,
                client_order_id: "tk-1".into(),
                venue_order_id: "v1".into(),
                venue_event_id: "v1:unknown:X".into(),
                symbol: "BTC-USDT".into(),
                reason: "X".into(),
                exchange_time: at(1_767_225_599, 1),
                receive_time,
                ..Default::default()
            })),
        };
        for kind in [crate::pb::VenueEventKind::Unknown, crate::pb::VenueEventKind::OrderAccepted] {
            for valid in [None, at(0, 0), at(1_767_225_600, 999_999_999)] {
                let bytes = message(kind, valid).encode_to_vec();
                assert!(input_matches(&bytes, &cfg), "{kind:?} {valid:?}");
            }
            for invalid in [at(-1, 0), at(1, -1), at(1, 1_000_000_000), at(i64::MAX, 0)] {
                let bytes = message(kind, invalid).encode_to_vec();
                assert!(!input_matches(&bytes, &cfg), "{invalid:?}");
                let decoded = crate::decode::input(&message(kind, invalid), &cfg);
                let violations = decoded.err().unwrap_or_default();
                assert!(violations.iter().any(|v| v.field == "venue_event.receive_time"), "{violations:?}");
            }
        }
    }

    /// Whether the wire decoder took `bytes`; panics if it disagrees with prost.
    fn input_matches(bytes: &[u8], cfg: &crate::model::Config) -> bool {
        let Some(ours) = input(bytes, cfg) else { return false };
        let message = crate::pb::KernelInput::decode(bytes);
        assert!(message.is_ok(), "wire accepted what prost refuses: {bytes:?}");
        let theirs = message
            .map_err(|e| e.to_string())
            .and_then(|m| crate::decode::input(&m, cfg).map_err(|v| format!("{v:?}")));
        // Debug shows each decimal's scale, which `==` does not compare.
        assert_eq!(format!("{theirs:?}"), format!("{:?}", Ok::<_, String>(&ours)), "{bytes:?}");
        assert_eq!(theirs, Ok(ours), "{bytes:?}");
        true
    }

    /// Decimals whose mantissa fits a u64 are written as `num::Text` writes them.
    #[test]
    fn decimals_write_like_text() {
        let mut values = vec![Decimal::ZERO, Decimal::new(0, 5), Decimal::new(-0, 3), Decimal::MAX, Decimal::MIN];
        for (m, s) in
            [(1, 0), (-1, 28), (10, 1), (100, 2), (12345, 2), (-12345, 5), (120, 6), (i64::MAX, 0), (i64::MIN, 18)]
        {
            values.push(Decimal::new(m, s));
        }
        values.push(Decimal::from_i128_with_scale(i128::from(u64::MAX), 28));
        values.push(Decimal::from_i128_with_scale(-i128::from(u64::MAX) - 1, 3));
        values.push(-Decimal::new(0, 2));
        let ten_19 = 10_000_000_000_000_000_000_i128;
        for m in [ten_19 - 1, ten_19, ten_19 + 1, 10_000_500_000_000_000_000_000, 99_999 * ten_19, 10_i128.pow(28) - 1]
        {
            for s in [0, 1, 5, 18, 19, 20, 27, 28] {
                values.push(Decimal::from_i128_with_scale(m, s));
                values.push(Decimal::from_i128_with_scale(-m, s));
            }
        }
        for value in values {
            let mut ours = Vec::new();
            Writer(&mut ours).decimal(5, value);
            let mut theirs = Vec::new();
            let text = Text::new(value);
            Writer(&mut theirs).message(5, |w| w.bytes(1, text.as_bytes()));
            assert_eq!(ours, theirs, "{value:?}");
        }
    }

    /// Decimal text the plain reader takes reads as `num::parse` reads it,
    /// scale included.
    #[test]
    fn plain_decimals_parse_like_num() {
        let texts = [
            "0",
            "1",
            "-1",
            "0.01",
            "0.0100",
            "100.5",
            "-0.000100",
            "1000000000000",
            "1000000000000.0000001",
            "9999999999999999999",
            "99999999999999999999",
            "0.000000000000000001",
            "0.0000000000000000001",
            "-0",
            "-0.0",
            "00012",
            "1.",
            ".5",
            "-",
            "",
            "1e5",
            "1.2.3",
            "+1",
            " 1",
            "18446744073709551615",
            "1844674407370955161.5",
            "150",
            "150.000",
            "0.5",
        ];
        for text in texts {
            let ours = Plain::parse(text.as_bytes());
            let theirs = num::parse(text);
            if let Some(ours) = ours {
                let theirs = theirs.unwrap_or_else(|e| panic!("{text}: {e:?}"));
                assert_eq!(ours.decimal().serialize(), theirs.serialize(), "{text}");
            }
        }
        assert!(Plain::parse(b"1000000000000").is_some_and(|p| p.at_most(12)));
        assert!(Plain::parse(b"1000000000000.000001").is_some_and(|p| !p.at_most(12)));
        assert!(Plain::parse(b"999999999999.999999").is_some_and(|p| p.at_most(12)));
        assert!(Plain::parse(b"1.0000000000000000001").is_none());
    }

    /// Edge values of every checked decimal and id, on each kind of input:
    /// whatever the wire decoder takes, prost takes identically; and it takes
    /// the valid plain ones.
    #[test]
    fn edge_values_decode_like_prost() {
        use crate::pb::{kernel_input::Payload as Wire, Decimal as Dec, KernelInput};
        let cfg = crate::testkit::config(2);
        let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
        let dec = |t: &str| Some(Dec { value: t.to_owned() });
        let wrap =
            |payload| KernelInput { sequence: 3, time: at(1_767_225_600, 5), trace: None, payload: Some(payload) };
        let amounts = [
            "1",
            "0",
            "-1",
            "1000000000000",
            "1000000000000.000000000000000001",
            "1000000000001",
            "-1000000000000",
            "0.000000000000000001",
            "-0",
            "1.5",
            "150",
            "151",
            "0.5",
            "5.000",
            "1e3",
            "x",
            "",
        ];
        let (mut taken, mut valid) = (0, 0);
        let mut check = |message: KernelInput| {
            let bytes = message.encode_to_vec();
            let ok = crate::decode::input(&message, &cfg).is_ok();
            valid += usize::from(ok);
            if input_matches(&bytes, &cfg) {
                taken += 1;
            } else if ok {
                // "-0" is left to `num::parse`.
                assert!(format!("{message:?}").contains("\"-0\""), "valid but not taken: {message:?}");
                taken += 1;
            }
        };
        for a in amounts {
            for b in ["0.01", a] {
                let fill = crate::pb::VenueEvent {
                    kind: crate::pb::VenueEventKind::Fill as i32,
                    client_order_id: "tk-1".into(),
                    venue_event_id: "e:1".into(),
                    last_quantity: dec(b),
                    cumulative_quantity: dec(a),
                    last_price: dec(a),
                    average_price: dec(b),
                    fee: dec(a),
                    fee_asset: if a == "1" { "USDT".into() } else { "BTC".into() },
                    exchange_time: at(1, 0),
                    reason: if a == "0" { "caf\u{e9}".into() } else { "r\u{7}".into() },
                    ..Default::default()
                };
                check(wrap(Wire::VenueEvent(fill.clone())));
                check(wrap(Wire::VenueEvent(crate::pb::VenueEvent { reason: String::new(), ..fill.clone() })));
                check(wrap(Wire::VenueEvent(crate::pb::VenueEvent {
                    kind: crate::pb::VenueEventKind::Cancelled as i32,
                    last_quantity: None,
                    last_price: None,
                    average_price: None,
                    fee: None,
                    reason: String::new(),
                    ..fill.clone()
                })));
                check(wrap(Wire::MarkPrice(crate::pb::MarkPrice {
                    symbol: "BTC-USDT".into(),
                    price: dec(a),
                    exchange_time: at(2, 1),
                })));
                let enter = crate::pb::Intent {
                    intent_id: "i-1".into(),
                    action: crate::pb::IntentAction::Enter as i32,
                    symbol: "BTC-USDT".into(),
                    side: Side::Long as i32,
                    order_type: OrderType::Limit as i32,
                    limit_price: dec(b),
                    time_in_force: TimeInForce::Gtc as i32,
                    target_size: dec(a),
                    leverage: dec(a),
                    exit_leg_ratios: vec![Dec { value: "0.5".into() }, Dec { value: a.into() }],
                    ..Default::default()
                };
                check(wrap(Wire::Intent(enter.clone())));
                check(wrap(Wire::Intent(crate::pb::Intent {
                    order_type: OrderType::Market as i32,
                    limit_price: None,
                    time_in_force: 0,
                    reference_price: dec(b),
                    leverage: dec(b),
                    exit_leg_ratios: vec![],
                    ..enter.clone()
                })));
            }
        }
        assert!(taken == valid && taken > 30, "{taken} of {valid}");
    }

    /// Every output of seeded random model-check sequences.
    #[test]
    fn scenario_outputs_encode_like_prost() {
        let mut seed: u64 = 7;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        for run in 0..60 {
            let slots = 1 + run % 3;
            let mut explorer = Explorer::new(slots as u32);
            for _ in 0..60 {
                let slot = next(slots) as u32;
                let symbol = ALPHABET.get(next(ALPHABET.len())).copied().unwrap_or(ALPHABET[0]);
                let applied = explorer.apply(slot, symbol);
                assert!(applied.is_ok(), "{applied:?}");
                same_as_prost(explorer.kernel().output());
            }
        }
    }
}
