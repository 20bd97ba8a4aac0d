//! `pink.v1.Intent` without labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use super::reader::{bytes_key, fields_repeating, varint_key, Reader};
use super::values::{exit_leg_ratios, leverage, new_id, positive, symbol, time, Texts};
use super::Known;
use crate::input::{Action, Enter, Intent};
use crate::model::OrderKind;
use crate::pb::{IntentAction, OrderPurpose, OrderType, Side, TimeInForce};

/// A `pink.v1.Intent` without labels, its fields as on the wire.
#[derive(Default)]
pub(super) struct RawIntent<'a> {
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

impl<'a> RawIntent<'a> {
    /// The fields as prost writes them: in tag order, each at most once
    /// (legs in one run); `None` for anything else (see `Reader::next_is`).
    #[inline(always)]
    fn in_order(bytes: &'a [u8]) -> Option<RawIntent<'a>> {
        let mut r = Reader(bytes);
        let mut m = RawIntent::default();
        if r.next_is(bytes_key(1)) {
            m.intent_id = r.delimited()?;
        }
        if r.next_is(varint_key(2)) {
            m.action = r.raw_varint()? as i32;
        }
        if r.next_is(varint_key(3)) {
            m.slot_id = r.raw_varint()? as u32;
        }
        if r.next_is(varint_key(4)) {
            m.expected_slot_version = Some(r.raw_varint()?);
        }
        if r.next_is(bytes_key(5)) {
            m.symbol = r.delimited()?;
        }
        if r.next_is(varint_key(6)) {
            m.side = r.raw_varint()? as i32;
        }
        if r.next_is(varint_key(7)) {
            m.order_type = r.raw_varint()? as i32;
        }
        if r.next_is(bytes_key(8)) {
            m.limit_price = Some(r.delimited()?);
        }
        if r.next_is(varint_key(9)) {
            m.time_in_force = r.raw_varint()? as i32;
        }
        if r.next_is(bytes_key(10)) {
            m.target_size = Some(r.delimited()?);
        }
        if r.next_is(bytes_key(11)) {
            m.leverage = Some(r.delimited()?);
        }
        while r.next_is(bytes_key(12)) {
            if m.exit_leg_ratios.len() >= 16 {
                return None;
            }
            m.exit_leg_ratios.push(r.delimited()?);
        }
        if r.next_is(varint_key(13)) {
            m.reduce_only = r.raw_varint()? != 0;
        }
        if r.next_is(bytes_key(14)) {
            m.reference_price = Some(r.delimited()?);
        }
        if r.next_is(varint_key(15)) {
            m.cancel_purpose = r.raw_varint()? as i32;
        }
        // Tag 17 has a two-byte key.
        if r.0.starts_with(&[0x8A, 0x01]) {
            r.0 = r.0.get(2..)?;
            m.create_time = Some(r.delimited()?);
        }
        r.done().then_some(m)
    }

    /// The fields in any order.
    #[cold]
    #[inline(never)]
    fn any_order(bytes: &'a [u8]) -> Option<RawIntent<'a>> {
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
        Some(m)
    }
}

/// `decode::order_kind` of a valid order kind.
pub(super) fn order_kind(order_type: i32, limit: Option<&[u8]>, tif: i32) -> Option<OrderKind> {
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
pub(super) fn intent(bytes: &[u8], known: &impl Known) -> Option<Intent> {
    let m = RawIntent::in_order(bytes).or_else(|| RawIntent::any_order(bytes))?;
    let texts = Texts::new(bytes, &[m.intent_id]);
    let intent_id = new_id(m.intent_id, &texts)?;
    if let Some(at) = m.create_time {
        time(at)?;
    }
    let action = match IntentAction::try_from(m.action).ok()? {
        IntentAction::Unspecified => return None,
        IntentAction::Enter => {
            let symbol = symbol(m.symbol, known, &texts)?;
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
