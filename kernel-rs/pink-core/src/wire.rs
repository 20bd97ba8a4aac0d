//! Hand-written protobuf for the hot paths. Encoding: an `Output` as a
//! `pink.v1.Outcome`, into a reused buffer. It writes exactly the bytes `encode::outcome(out).encode_to_vec()`
//! writes (prost: fields in tag order, proto3 defaults omitted, `optional`
//! fields written when set, packed repeated scalars), without building the
//! intermediate messages and their strings. Decoding: the common inputs
//! straight from the wire, borrowing their text. The tests check both
//! against prost.

use prost::encoding::{decode_key, decode_varint, WireType};
use rust_decimal::Decimal;

use crate::decode::{self, InputView, IntentView, MarkPriceView, PayloadView, VenueEventView};
use crate::input::Input;
use crate::model::{Config, Nanos, OrderKind};
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

/// A field key.
fn put_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    put_varint(u64::from(tag << 3 | wire_type as u32), buf);
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
        let text = Text::new(value);
        self.message(tag, |w| w.bytes(1, text.as_bytes()));
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

impl<'a> Reader<'a> {
    /// The next field key; `None` at the end or on a malformed key.
    #[inline]
    fn key(&mut self) -> Option<(u32, WireType)> {
        match self.0.split_first() {
            // One byte (tags 1-15): what `decode_key` reads, without its generic buffer.
            Some((&key, rest)) if key < 0x80 => {
                let tag = u32::from(key >> 3);
                let wire_type = match key & 0x07 {
                    0 => WireType::Varint,
                    1 => WireType::SixtyFourBit,
                    2 => WireType::LengthDelimited,
                    3 => WireType::StartGroup,
                    4 => WireType::EndGroup,
                    5 => WireType::ThirtyTwoBit,
                    _ => return None,
                };
                if tag == 0 {
                    return None;
                }
                self.0 = rest;
                Some((tag, wire_type))
            }
            Some(_) => decode_key(&mut self.0).ok(),
            None => None,
        }
    }

    #[inline]
    fn varint(&mut self, wire_type: WireType) -> Option<u64> {
        if wire_type != WireType::Varint {
            return None;
        }
        self.raw_varint()
    }

    #[inline]
    fn raw_varint(&mut self) -> Option<u64> {
        match self.0.split_first() {
            Some((&byte, rest)) if byte < 0x80 => {
                self.0 = rest;
                Some(u64::from(byte))
            }
            _ => decode_varint(&mut self.0).ok(),
        }
    }

    fn bytes(&mut self, wire_type: WireType) -> Option<&'a [u8]> {
        if wire_type != WireType::LengthDelimited {
            return None;
        }
        let len = usize::try_from(self.raw_varint()?).ok()?;
        let (field, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(field)
    }

    fn str(&mut self, wire_type: WireType) -> Option<&'a str> {
        std::str::from_utf8(self.bytes(wire_type)?).ok()
    }

    #[inline]
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
fn fields<'a>(bytes: &'a [u8], field: impl FnMut(&mut Reader<'a>, u32, WireType) -> Option<()>) -> Option<()> {
    fields_repeating(bytes, None, field)
}

/// `fields`, where the `repeated` tag (a repeated field) may come any number of times.
fn fields_repeating<'a>(
    bytes: &'a [u8],
    repeated: Option<u32>,
    mut field: impl FnMut(&mut Reader<'a>, u32, WireType) -> Option<()>,
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

/// A `pink.v1.Decimal`'s text.
fn decimal(bytes: &[u8]) -> Option<&str> {
    let mut value = "";
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => value = r.str(wire_type)?,
            _ => return None,
        }
        Some(())
    })?;
    Some(value)
}

/// A `google.protobuf.Timestamp` (prost reads int32 and int64 by truncation).
fn timestamp(bytes: &[u8]) -> Option<prost_types::Timestamp> {
    let mut ts = prost_types::Timestamp::default();
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => ts.seconds = r.varint(wire_type)? as i64,
            2 => ts.nanos = r.varint(wire_type)? as i32,
            _ => return None,
        }
        Some(())
    })?;
    Some(ts)
}

/// An intent without labels (labels are left to prost).
fn intent(bytes: &[u8]) -> Option<IntentView<'_>> {
    let mut m = IntentView::default();
    fields_repeating(bytes, Some(12), |r, tag, wire_type| {
        match tag {
            1 => m.intent_id = r.str(wire_type)?,
            2 => m.action = r.varint(wire_type)? as i32,
            3 => m.slot_id = r.varint(wire_type)? as u32,
            4 => m.expected_slot_version = Some(r.varint(wire_type)?),
            5 => m.symbol = r.str(wire_type)?,
            6 => m.side = r.varint(wire_type)? as i32,
            7 => m.order_type = r.varint(wire_type)? as i32,
            8 => m.limit_price = Some(decimal(r.bytes(wire_type)?)?),
            9 => m.time_in_force = r.varint(wire_type)? as i32,
            10 => m.target_size = Some(decimal(r.bytes(wire_type)?)?),
            11 => m.leverage = Some(decimal(r.bytes(wire_type)?)?),
            12 => m.exit_leg_ratios.push(decimal(r.bytes(wire_type)?)?),
            13 => m.reduce_only = r.varint(wire_type)? != 0,
            14 => m.reference_price = Some(decimal(r.bytes(wire_type)?)?),
            15 => m.cancel_purpose = r.varint(wire_type)? as i32,
            17 => m.create_time = Some(timestamp(r.bytes(wire_type)?)?),
            _ => return None,
        }
        Some(())
    })?;
    Some(m)
}

fn venue_event(bytes: &[u8]) -> Option<VenueEventView<'_>> {
    let mut m = VenueEventView::default();
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => m.kind = r.varint(wire_type)? as i32,
            2 => m.client_order_id = r.str(wire_type)?,
            3 => m.venue_order_id = r.str(wire_type)?,
            4 => m.venue_event_id = r.str(wire_type)?,
            5 => m.symbol = r.str(wire_type)?,
            6 => m.last_quantity = Some(decimal(r.bytes(wire_type)?)?),
            7 => m.cumulative_quantity = Some(decimal(r.bytes(wire_type)?)?),
            8 => m.last_price = Some(decimal(r.bytes(wire_type)?)?),
            9 => m.average_price = Some(decimal(r.bytes(wire_type)?)?),
            10 => m.fee = Some(decimal(r.bytes(wire_type)?)?),
            11 => m.fee_asset = r.str(wire_type)?,
            12 => m.exchange_time = Some(timestamp(r.bytes(wire_type)?)?),
            13 => m.reason = r.str(wire_type)?,
            14 => m.receive_time = Some(timestamp(r.bytes(wire_type)?)?),
            _ => return None,
        }
        Some(())
    })?;
    Some(m)
}

fn mark_price(bytes: &[u8]) -> Option<MarkPriceView<'_>> {
    let mut m = MarkPriceView::default();
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => m.symbol = r.str(wire_type)?,
            2 => m.price = Some(decimal(r.bytes(wire_type)?)?),
            3 => m.exchange_time = Some(timestamp(r.bytes(wire_type)?)?),
            _ => return None,
        }
        Some(())
    })?;
    Some(m)
}

fn trace(bytes: &[u8]) -> Option<(&str, &str)> {
    let (mut traceparent, mut tracestate) = ("", "");
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => traceparent = r.str(wire_type)?,
            2 => tracestate = r.str(wire_type)?,
            _ => return None,
        }
        Some(())
    })?;
    Some((traceparent, tracestate))
}

/// Decodes and validates a serialized `pink.v1.KernelInput` straight from
/// the wire, for the common case only: an intent without labels, a venue
/// event or a mark price in the
/// plain shape (each field at most once with its own wire type, no unknown
/// field) that validates. `None` means "use `decode::input`", which gives
/// the same `Input` for everything this accepts and reports every error.
pub fn input(bytes: &[u8], cfg: &Config) -> Option<Input> {
    let mut sequence = 0;
    let mut time = None;
    let mut trace_context = None;
    let mut payload = None;
    fields(bytes, |r, tag, wire_type| {
        match tag {
            1 => sequence = r.varint(wire_type)?,
            2 => time = Some(timestamp(r.bytes(wire_type)?)?),
            3 => trace_context = Some(trace(r.bytes(wire_type)?)?),
            // One payload only: a second one (even another kind) is for prost to resolve.
            10 if payload.is_none() => payload = Some(PayloadView::Intent(intent(r.bytes(wire_type)?)?)),
            11 if payload.is_none() => payload = Some(PayloadView::Venue(venue_event(r.bytes(wire_type)?)?)),
            12 if payload.is_none() => payload = Some(PayloadView::Mark(mark_price(r.bytes(wire_type)?)?)),
            _ => return None,
        }
        Some(())
    })?;
    let view = InputView { sequence, time, trace: trace_context, payload: payload? };
    decode::input_view(&view, cfg).ok()
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
        assert_eq!(theirs, Ok(ours), "{bytes:?}");
        true
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
