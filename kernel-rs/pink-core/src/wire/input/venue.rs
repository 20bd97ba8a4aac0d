//! `pink.v1.VenueEvent` and `pink.v1.MarkPrice`.

use rust_decimal::Decimal;

use super::reader::{bytes_key, fields, varint_key, Reader};
use super::values::{all_in, free_text, new_id, plain, positive, symbol, time, venue_order_id, Texts, ASSET};
use super::Known;
use crate::input::{Fill, Mark, VenueEvent};
use crate::model::Config;
use crate::pb::VenueEventKind;

/// A `pink.v1.VenueEvent`, its fields as on the wire.
#[derive(Default)]
struct RawEvent<'a> {
    kind: i32,
    cid: &'a [u8],
    vid: &'a [u8],
    event_id: &'a [u8],
    symbol: &'a [u8],
    last_quantity: Option<&'a [u8]>,
    cumulative: Option<&'a [u8]>,
    last_price: Option<&'a [u8]>,
    average_price: Option<&'a [u8]>,
    fee: Option<&'a [u8]>,
    fee_asset: &'a [u8],
    exchange_time: Option<&'a [u8]>,
    reason: &'a [u8],
    receive_time: Option<&'a [u8]>,
}

impl<'a> RawEvent<'a> {
    /// The fields as prost writes them: in tag order, each at most once;
    /// `None` for anything else (see `Reader::next_is`).
    #[inline(always)]
    fn in_order(bytes: &'a [u8]) -> Option<RawEvent<'a>> {
        let mut r = Reader(bytes);
        let mut m = RawEvent::default();
        if r.next_is(varint_key(1)) {
            m.kind = r.raw_varint()? as i32;
        }
        if r.next_is(bytes_key(2)) {
            m.cid = r.delimited()?;
        }
        if r.next_is(bytes_key(3)) {
            m.vid = r.delimited()?;
        }
        if r.next_is(bytes_key(4)) {
            m.event_id = r.delimited()?;
        }
        if r.next_is(bytes_key(5)) {
            m.symbol = r.delimited()?;
        }
        if r.next_is(bytes_key(6)) {
            m.last_quantity = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(7)) {
            m.cumulative = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(8)) {
            m.last_price = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(9)) {
            m.average_price = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(10)) {
            m.fee = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(11)) {
            m.fee_asset = r.delimited()?;
        }
        if r.next_is(bytes_key(12)) {
            m.exchange_time = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(13)) {
            m.reason = r.delimited()?;
        }
        if r.next_is(bytes_key(14)) {
            m.receive_time = Some(r.delimited()?);
        }
        r.done().then_some(m)
    }

    /// The fields in any order.
    #[cold]
    #[inline(never)]
    fn any_order(bytes: &'a [u8]) -> Option<RawEvent<'a>> {
        let mut m = RawEvent::default();
        fields(bytes, |r, tag, wire_type| {
            match tag {
                1 => m.kind = r.varint(wire_type)? as i32,
                2 => m.cid = r.bytes(wire_type)?,
                3 => m.vid = r.bytes(wire_type)?,
                4 => m.event_id = r.bytes(wire_type)?,
                5 => m.symbol = r.bytes(wire_type)?,
                6 => m.last_quantity = Some(r.bytes(wire_type)?),
                7 => m.cumulative = Some(r.bytes(wire_type)?),
                8 => m.last_price = Some(r.bytes(wire_type)?),
                9 => m.average_price = Some(r.bytes(wire_type)?),
                10 => m.fee = Some(r.bytes(wire_type)?),
                11 => m.fee_asset = r.bytes(wire_type)?,
                12 => m.exchange_time = Some(r.bytes(wire_type)?),
                13 => m.reason = r.bytes(wire_type)?,
                14 => m.receive_time = Some(r.bytes(wire_type)?),
                _ => return None,
            }
            Some(())
        })?;
        Some(m)
    }
}

/// `decode::venue_event` of a valid venue event.
pub(super) fn venue_event(bytes: &[u8], cfg: &Config, known: &impl Known) -> Option<VenueEvent> {
    let RawEvent {
        kind,
        cid,
        vid,
        event_id,
        symbol: symbol_text,
        last_quantity,
        cumulative,
        last_price,
        average_price,
        fee,
        fee_asset,
        exchange_time,
        reason,
        receive_time,
    } = RawEvent::in_order(bytes).or_else(|| RawEvent::any_order(bytes))?;
    let kind = VenueEventKind::try_from(kind).ok().filter(|k| *k != VenueEventKind::Unspecified)?;
    if cid.is_empty() && vid.is_empty() {
        return None;
    }
    let texts = Texts::new(bytes, &[cid, vid, event_id]);
    let venue_order_id = if vid.is_empty() { None } else { Some(venue_order_id(vid, known, &texts)?) };
    // Orders keep only their numbers: a client order id has no text to share.
    let client_order_id = if cid.is_empty() { None } else { Some(new_id(cid, &texts)?) };
    let symbol = if symbol_text.is_empty() { None } else { Some(symbol(symbol_text, known, &texts)?) };
    let exchange_time = time(exchange_time?)?;
    if let Some(at) = receive_time {
        time(at)?;
    }
    let reason = if reason.is_empty() { String::new() } else { free_text(reason, 256)?.to_owned() };
    let cumulative = match cumulative {
        Some(bytes) => {
            let value = plain(bytes)?;
            Some((!value.negative && value.at_most(12)).then(|| value.decimal())?)
        }
        None => None,
    };
    // What `text::check_asset` accepts; no text needed.
    if !fee_asset.is_empty() && (fee_asset.len() > 16 || !all_in(fee_asset, ASSET)) {
        return None;
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
        event_id: new_id(event_id, &texts)?,
        symbol,
        fill,
        cumulative,
        exchange_time,
        reason,
    })
}

/// `decode::mark_price` of a valid mark price.
pub(super) fn mark_price(bytes: &[u8], known: &impl Known) -> Option<Mark> {
    let (mut symbol_text, mut price, mut exchange_time): (&[u8], _, _) = (b"", None, None);
    // In tag order, as prost writes them (see `Reader::next_is`), or else in any order.
    let mut r = Reader(bytes);
    if r.next_is(bytes_key(1)) {
        symbol_text = r.delimited()?;
    }
    if r.next_is(bytes_key(2)) {
        price = Some(r.delimited()?);
    }
    if r.next_is(bytes_key(3)) {
        exchange_time = Some(r.delimited()?);
    }
    if !r.done() {
        (symbol_text, price, exchange_time) = (b"", None, None);
        fields(bytes, |r, tag, wire_type| {
            match tag {
                1 => symbol_text = r.bytes(wire_type)?,
                2 => price = Some(r.bytes(wire_type)?),
                3 => exchange_time = Some(r.bytes(wire_type)?),
                _ => return None,
            }
            Some(())
        })?;
    }
    let symbol = symbol(symbol_text, known, &Texts::new(bytes, &[]))?;
    let price = positive(price?)?;
    if let Some(at) = exchange_time {
        time(at)?;
    }
    Some(Mark { symbol, price })
}
