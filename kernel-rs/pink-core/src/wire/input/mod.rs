//! `pink.v1.KernelInput` bytes -> `Input` for the common inputs (see `wire`).

mod intent;
mod reader;
mod values;
mod venue;

use crate::input::{Input, Payload};
use crate::model::Config;
use crate::text::Id;
use reader::{bytes_key, fields, varint_key, Reader};
use values::{free_text, time};

#[cfg(test)]
pub(super) use values::Plain;

/// Ids the kernel already holds: a decoded id equal to one of them shares its
/// allocation instead of allocating (and later freeing) a copy.
pub(crate) trait Known {
    /// A venue order id and the number of the order it maps to.
    fn venue_order(&self, vid: &str) -> Option<(Id, u64)>;
    /// An instrument's symbol, given as its bytes (checked ASCII).
    fn symbol(&self, symbol: &[u8]) -> Option<Id>;
}

/// No ids known (decoding ahead of the kernel).
pub(crate) struct Unknown;

impl Known for Unknown {
    fn venue_order(&self, _: &str) -> Option<(Id, u64)> {
        None
    }
    fn symbol(&self, _: &[u8]) -> Option<Id> {
        None
    }
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
    let (sequence, time_bytes, tag, body) = match in_order(bytes) {
        Some(fields) => fields,
        None => any_order(bytes)?,
    };
    let time = time(time_bytes?)?;
    let payload = match tag {
        10 => Payload::Intent(intent::intent(body, known)?),
        11 => Payload::Venue(venue::venue_event(body, cfg, known)?),
        _ => Payload::Mark(venue::mark_price(body, known)?),
    };
    Some(Input { sequence, time, payload })
}

/// A `KernelInput`'s sequence, time, payload tag and payload (its trace
/// validated on the way).
type RawInput<'a> = (u64, Option<&'a [u8]>, u8, &'a [u8]);

/// The fields as prost writes them: in tag order, each at most once; `None`
/// for anything else (see `Reader::next_is`).
#[inline(always)]
fn in_order(bytes: &[u8]) -> Option<RawInput<'_>> {
    let mut r = Reader(bytes);
    let (mut sequence, mut time_bytes) = (0, None);
    if r.next_is(varint_key(1)) {
        sequence = r.raw_varint()?;
    }
    if r.next_is(bytes_key(2)) {
        time_bytes = Some(r.delimited()?);
    }
    if r.next_is(bytes_key(3)) {
        trace(r.delimited()?)?;
    }
    let (&key, rest) = r.0.split_first()?;
    let tag = match key {
        0x52 => 10,
        0x5A => 11,
        0x62 => 12,
        _ => return None,
    };
    r.0 = rest;
    let body = r.delimited()?;
    r.done().then_some((sequence, time_bytes, tag, body))
}

/// The fields in any order.
#[cold]
#[inline(never)]
fn any_order(bytes: &[u8]) -> Option<RawInput<'_>> {
    let mut sequence = 0;
    let mut time_bytes = None;
    let mut payload = None;
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => sequence = r.varint(wire_type)?,
            2 => time_bytes = Some(r.bytes(wire_type)?),
            3 => trace(r.bytes(wire_type)?)?,
            // One payload only: a second one (even another kind) is for prost to resolve.
            10..=12 if payload.is_none() => payload = Some((tag as u8, r.bytes(wire_type)?)),
            _ => return None,
        }
        Some(())
    })?;
    let (tag, body) = payload?;
    Some((sequence, time_bytes, tag, body))
}

#[cfg(test)]
mod tests;
