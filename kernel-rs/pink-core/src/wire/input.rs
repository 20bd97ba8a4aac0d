//! `pink.v1.KernelInput` bytes -> `Input` for the common inputs (see `wire`).

use prost::encoding::{decode_key, decode_varint, WireType};
use rust_decimal::Decimal;

use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::check::{MAX_LEVERAGE, MAX_SECONDS};
use crate::input::{Action, Enter, Fill, Input, Intent, Mark, Payload, VenueEvent};
use crate::model::{Config, Nanos, OrderKind};
use crate::num;
use crate::pb::{IntentAction, OrderPurpose, OrderType, Side, TimeInForce, VenueEventKind};
use crate::text::{self, Id};

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
pub(super) struct Plain {
    negative: bool,
    mantissa: u64,
    scale: u32,
}

impl Plain {
    pub(super) fn parse(bytes: &[u8]) -> Option<Plain> {
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
    pub(super) fn decimal(self) -> Decimal {
        Decimal::from_parts(self.mantissa as u32, (self.mantissa >> 32) as u32, 0, self.negative, self.scale)
    }

    /// |value| <= 10^`exp`.
    pub(super) fn at_most(self, exp: u32) -> bool {
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
