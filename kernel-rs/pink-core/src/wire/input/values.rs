//! Ids, text, decimals and timestamps, validated straight from their bytes
//! as the `text`, `num` and `check` functions would validate them decoded.

use rust_decimal::Decimal;

use super::reader::{fields, split_varint, word_varint};
use super::Known;
use crate::check::{MAX_LEVERAGE, MAX_SECONDS};
use crate::model::Nanos;
use crate::num;
use crate::text::{self, Id};

/// Byte classes of the `text` charsets (all ASCII).
pub(super) const ID: u8 = 1;
pub(super) const SYMBOL: u8 = 2;
pub(super) const ASSET: u8 = 4;
pub(super) const PRINTABLE: u8 = 8;

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub(super) static CLASSES: [u8; 256] = {
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
pub(super) fn all_in(bytes: &[u8], class: u8) -> bool {
    bytes.iter().all(|b| CLASSES.get(usize::from(*b)).is_some_and(|c| c & class != 0))
}

/// The text of a message's ids: `from_utf8` once over the span of the
/// message that holds them all (in the usual shape the keys and lengths
/// between them are ASCII too) instead of once per id. An id outside that
/// span (a symbol, which usually needs no text), or any id when the span is
/// not UTF-8, is converted on its own.
pub(super) struct Texts<'a> {
    /// Address of the span's first byte.
    base: usize,
    span: &'a str,
}

impl<'a> Texts<'a> {
    /// `ids` are parts of `message` (empty ones are skipped).
    pub(super) fn new(message: &'a [u8], ids: &[&'a [u8]]) -> Texts<'a> {
        let base = message.as_ptr() as usize;
        let (mut lo, mut hi) = (usize::MAX, 0);
        for id in ids.iter().filter(|id| !id.is_empty()) {
            let at = (id.as_ptr() as usize).wrapping_sub(base);
            lo = lo.min(at);
            hi = hi.max(at.wrapping_add(id.len()));
        }
        let span = message.get(lo..hi).and_then(|span| std::str::from_utf8(span).ok()).unwrap_or("");
        Texts { base: base.wrapping_add(lo), span }
    }

    /// `bytes` as text: the same memory, so the same bytes, as the part of
    /// the span at its address.
    #[inline]
    pub(super) fn get(&self, bytes: &'a [u8]) -> Option<&'a str> {
        let at = (bytes.as_ptr() as usize).wrapping_sub(self.base);
        match self.span.get(at..at.wrapping_add(bytes.len())) {
            Some(text) => Some(text),
            None => std::str::from_utf8(bytes).ok(),
        }
    }
}

/// 1..=`max` bytes of `class`: what the `text` check of that charset accepts
/// (ASCII, so characters are bytes).
#[inline]
pub(super) fn ascii<'a>(bytes: &'a [u8], class: u8, max: usize, texts: &Texts<'a>) -> Option<&'a str> {
    if bytes.is_empty() || bytes.len() > max || !all_in(bytes, class) {
        return None;
    }
    texts.get(bytes)
}

/// What `text::free_text` accepts.
pub(super) fn free_text(bytes: &[u8], max: usize) -> Option<&str> {
    if bytes.is_empty() {
        return Some("");
    }
    if bytes.len() <= max && all_in(bytes, PRINTABLE) {
        return std::str::from_utf8(bytes).ok();
    }
    let value = std::str::from_utf8(bytes).ok()?;
    text::free_text(value, max).ok()?;
    Some(value)
}

/// A fresh id (`text::id`).
pub(super) fn new_id<'a>(bytes: &'a [u8], texts: &Texts<'a>) -> Option<Id> {
    ascii(bytes, ID, 64, texts).map(Id::from)
}

/// A venue order id (the kernel's own when it holds it).
pub(super) fn venue_order_id<'a>(bytes: &'a [u8], known: &impl Known, texts: &Texts<'a>) -> Option<Id> {
    let vid = ascii(bytes, ID, 64, texts)?;
    Some(match known.venue_order(vid) {
        Some((vid, _)) => vid,
        None => Id::from(vid),
    })
}

/// A symbol; one the kernel holds needs no text.
pub(super) fn symbol<'a>(bytes: &'a [u8], known: &impl Known, texts: &Texts<'a>) -> Option<Id> {
    if bytes.is_empty() || bytes.len() > 32 || !all_in(bytes, SYMBOL) {
        return None;
    }
    match known.symbol(bytes) {
        Some(id) => Some(id),
        None => texts.get(bytes).map(Id::from),
    }
}

/// Decimal text in the plain grammar `num::parse` reads first
/// (`-?d+(.d{1,18})?`), here with at most 19 digits so that the mantissa is
/// a u64 (longer text is left to `num::parse` on the general path).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(in crate::wire) struct Plain {
    pub(super) negative: bool,
    pub(super) mantissa: u64,
    pub(super) scale: u32,
}

impl Plain {
    #[inline]
    pub(in crate::wire) fn parse(bytes: &[u8]) -> Option<Plain> {
        let (negative, digits) = match bytes.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, bytes),
        };
        // At most 19 digits and a point, checked after the loop: the
        // mantissa of 19 digits is below 10^19 < 2^64 (more are refused).
        if digits.len() > 20 {
            return None;
        }
        let mut mantissa: u64 = 0;
        let mut point = None;
        for (at, &byte) in digits.iter().enumerate() {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
            } else if byte == b'.' && point.is_none() && at > 0 {
                point = Some(at);
            } else {
                return None;
            }
        }
        let count = digits.len().wrapping_sub(usize::from(point.is_some()));
        let scale = match point {
            Some(at) => count.checked_sub(at).filter(|s| (1..=18).contains(s))? as u32,
            None => 0,
        };
        // "-0" is for `num::parse` to judge.
        if count == 0 || count > 19 || (negative && mantissa == 0) {
            return None;
        }
        Some(Plain { negative, mantissa, scale })
    }

    /// The decimal `num::parse` gives: the digits as the mantissa, the fraction's length as the scale.
    pub(in crate::wire) fn decimal(self) -> Decimal {
        Decimal::from_parts(self.mantissa as u32, (self.mantissa >> 32) as u32, 0, self.negative, self.scale)
    }

    /// |value| <= 10^`exp`.
    pub(in crate::wire) fn at_most(self, exp: u32) -> bool {
        let exp = exp.saturating_add(self.scale);
        num::POW10_U64.get(exp as usize).is_none_or(|bound| self.mantissa <= *bound)
    }
}

/// The text of a serialized `pink.v1.Decimal`.
#[inline]
pub(super) fn decimal_text(bytes: &[u8]) -> Option<&[u8]> {
    // Its one field, as prost writes it.
    match bytes {
        [0x0A, len, text @ ..] if *len < 0x80 && usize::from(*len) == text.len() => Some(text),
        _ => decimal_fields(bytes),
    }
}

/// [`decimal_text`] of a decimal in any other shape.
#[cold]
#[inline(never)]
pub(super) fn decimal_fields(bytes: &[u8]) -> Option<&[u8]> {
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

#[inline]
pub(super) fn plain(bytes: &[u8]) -> Option<Plain> {
    Plain::parse(decimal_text(bytes)?)
}

/// A quantity or price: > 0 and <= 1e12 (`Checker::positive_text`).
pub(super) fn positive(bytes: &[u8]) -> Option<Decimal> {
    let value = plain(bytes)?;
    (!value.negative && value.mantissa > 0 && value.at_most(12)).then(|| value.decimal())
}

/// A whole leverage in [1, MAX_LEVERAGE], normalized (`Checker::leverage`).
pub(super) fn leverage(bytes: &[u8]) -> Option<Decimal> {
    let value = plain(bytes)?;
    let unit = num::POW10_U64.get(value.scale as usize)?;
    let whole = value.mantissa.checked_div(*unit)?;
    if value.negative || value.mantissa.checked_rem(*unit)? != 0 || !(1..=u64::from(MAX_LEVERAGE)).contains(&whole) {
        return None;
    }
    Some(value.decimal().normalize())
}

/// Exit leg ratios in (0, 1] summing to 1 within 1e-9 (`decode::exit_leg_ratios`).
pub(super) fn exit_leg_ratios(raw: &[&[u8]]) -> Option<Vec<Decimal>> {
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
pub(super) fn time(bytes: &[u8]) -> Option<Nanos> {
    match time_words(bytes) {
        Some((seconds, nanos)) => nanos_since_epoch(seconds as i64, nanos as i32),
        None => time_short(bytes),
    }
}

/// [`time`] of a timestamp that is not in the shape `time_words` reads.
#[cold]
#[inline(never)]
fn time_short(bytes: &[u8]) -> Option<Nanos> {
    // The fields in order, as prost writes them; anything else is read field by field.
    let (seconds, nanos) = match bytes {
        [] => (0, 0),
        [0x08, rest @ ..] => match split_varint(rest)? {
            (seconds, []) => (seconds, 0),
            (seconds, [0x10, rest @ ..]) => match split_varint(rest)? {
                (nanos, []) => (seconds, nanos),
                _ => return time_fields(bytes),
            },
            _ => return time_fields(bytes),
        },
        [0x10, rest @ ..] => match split_varint(rest)? {
            (nanos, []) => (0, nanos),
            _ => return time_fields(bytes),
        },
        _ => return time_fields(bytes),
    };
    nanos_since_epoch(seconds as i64, nanos as i32)
}

/// Seconds and nanos of a timestamp of 8 to 16 bytes written as prost
/// writes a current one (`08`, seconds in at most 5 bytes, `10`, nanos in at
/// most 5 bytes), from its first and last eight bytes; `None` for any other
/// shape (including longer encodings of the same values).
#[inline(always)]
pub(super) fn time_words(bytes: &[u8]) -> Option<(u64, u64)> {
    let (head, _) = bytes.split_first_chunk::<8>()?;
    let (_, tail) = bytes.split_last_chunk::<8>()?;
    let head = u64::from_le_bytes(*head);
    if head & 0xFF != 0x08 {
        return None;
    }
    // Bytes 1..8; the zero shifted in ends a varint that is longer than that.
    let (seconds, seconds_len) = word_varint(head >> 8)?;
    if seconds_len > 5 {
        return None;
    }
    // The nanos key at 1 + seconds_len (<= 6, within the first word).
    if head.wrapping_shr((seconds_len as u32).wrapping_add(1).wrapping_mul(8)) & 0xFF != 0x10 {
        return None;
    }
    // The nanos start at 2 + seconds_len and must end the timestamp, within its last word.
    let start = seconds_len.wrapping_add(2);
    let skip = start.checked_sub(bytes.len().checked_sub(8)?)?;
    if skip >= 8 {
        return None;
    }
    let (nanos, nanos_len) = word_varint(u64::from_le_bytes(*tail).wrapping_shr((skip as u32).wrapping_mul(8)))?;
    (nanos_len <= 5 && start.checked_add(nanos_len)? == bytes.len()).then_some((seconds, nanos))
}

/// [`time`] of a timestamp in any other shape.
#[cold]
#[inline(never)]
pub(super) fn time_fields(bytes: &[u8]) -> Option<Nanos> {
    let (mut seconds, mut nanos) = (0_i64, 0_i32);
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => seconds = r.varint(wire_type)? as i64,
            2 => nanos = r.varint(wire_type)? as i32,
            _ => return None,
        }
        Some(())
    })?;
    nanos_since_epoch(seconds, nanos)
}

#[inline(always)]
pub(super) fn nanos_since_epoch(seconds: i64, nanos: i32) -> Option<Nanos> {
    if !(0..=MAX_SECONDS).contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    seconds.checked_mul(1_000_000_000)?.checked_add(i64::from(nanos))
}
