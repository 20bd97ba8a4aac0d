//! The decoder's shortcuts against its general paths and prost.

use prost::encoding::{decode_key, decode_varint, encode_varint};
use prost::Message;

use super::reader::Reader;
use super::values::{exit_leg_ratios, time, time_fields};
use super::{input, input_known, Known};
use crate::input::{Input, Payload};
use crate::model::Config;
use crate::num;
use crate::testkit::alphabet::{Explorer, ALPHABET};
use crate::testkit::{d, id, Driver, BTC};

/// Whatever the decoder takes, prost plus `decode::input` decode alike.
fn matches_prost(bytes: &[u8], cfg: &Config, ours: Option<Input>) -> bool {
    let Some(ours) = ours else { return false };
    let theirs = crate::pb::KernelInput::decode(bytes)
        .map_err(|e| e.to_string())
        .and_then(|m| crate::decode::input(&m, cfg).map_err(|v| format!("{v:?}")));
    // Debug shows each decimal's scale, which `==` does not compare.
    assert_eq!(format!("{theirs:?}"), format!("{:?}", Ok::<_, String>(&ours)), "{bytes:?}");
    true
}

/// The fields of a message, each with its key, in wire order.
fn split_fields(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let before = rest;
        let (_, wire_type) = decode_key(&mut rest).expect("key");
        match wire_type {
            prost::encoding::WireType::Varint => {
                decode_varint(&mut rest).expect("varint");
            }
            prost::encoding::WireType::LengthDelimited => {
                let len = decode_varint(&mut rest).expect("length") as usize;
                rest = &rest[len..];
            }
            other => panic!("{other:?}"),
        }
        out.push(before[..before.len() - rest.len()].to_vec());
    }
    out
}

/// The message with its fields reversed, and with its payload's fields reversed.
fn reversed(bytes: &[u8]) -> Vec<u8> {
    let mut fields = split_fields(bytes);
    for field in &mut fields {
        if matches!(field.first(), Some(0x52 | 0x5A | 0x62)) {
            let mut r = Reader(&field[1..]);
            let body = r.delimited().expect("payload");
            let mut inner = split_fields(body);
            inner.reverse();
            let inner: Vec<u8> = inner.concat();
            let mut out = vec![field[0]];
            encode_varint(inner.len() as u64, &mut out);
            out.extend(inner);
            *field = out;
        }
    }
    fields.reverse();
    fields.concat()
}

/// Model-check inputs in prost's field order and in reverse order decode
/// alike (the in-order reader and the field loop), and like prost.
#[test]
fn any_field_order_decodes_like_prost_order() {
    let mut explorer = Explorer::new(2);
    explorer.drv.recording = true;
    let mut next = 0_usize;
    for _ in 0..150 {
        next = next.wrapping_mul(31).wrapping_add(17);
        let symbol = ALPHABET[next % ALPHABET.len()];
        assert!(explorer.apply((next / 7 % 2) as u32, symbol).is_ok());
    }
    let cfg = explorer.kernel().config().clone();
    let mut taken = 0;
    for (input_value, _) in &explorer.drv.history {
        let mut wire = crate::encode::input(input_value, &cfg.settlement_asset);
        wire.sequence = 7;
        let bytes = wire.encode_to_vec();
        let back = reversed(&bytes);
        let (ours, theirs) = (input(&bytes, &cfg), input(&back, &cfg));
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        if matches_prost(&back, &cfg, theirs) {
            taken += 1;
        }
    }
    assert!(taken > 50, "{taken}");
}

fn timestamp(seconds: i64, nanos: i32) -> Vec<u8> {
    prost_types::Timestamp { seconds, nanos }.encode_to_vec()
}

/// Timestamps read from two words read as the field loop reads them: every
/// length of seconds and nanos, out-of-range values, padded varints, other
/// orders, and every bit of them flipped.
#[test]
fn timestamps_read_like_the_field_loop() {
    let mut cases = Vec::new();
    for seconds in [0, 1, 127, 128, 16_383, 16_384, 1 << 21, 1 << 28, 1_767_225_600, crate::check::MAX_SECONDS] {
        for seconds in [seconds, seconds + 1, -seconds] {
            for nanos in [0, 1, 127, 128, 1 << 14, 1 << 21, 1 << 28, 999_999_999, 1_000_000_000, -1, i32::MAX] {
                cases.push(timestamp(seconds, nanos));
            }
        }
    }
    cases.push(vec![0x10, 0x81, 0x80, 0x80, 0x80, 0x00, 0x08, 0x01]);
    cases.push(vec![0x08, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x10, 0x01]);
    cases.push(vec![0x08, 0x81, 0x80, 0x80, 0x00, 0x10, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00]);
    cases.push(vec![0x08, 0x01, 0x10, 0x01, 0x10, 0x02, 0x00, 0x00]);
    cases.push(vec![0x08, 0x80, 0xF2, 0xD6, 0xCA, 0x06, 0x10, 0x80, 0x89, 0x7A, 0x00]);
    let mut flipped = Vec::new();
    for case in &cases {
        for at in 0..case.len() {
            for bit in 0..8 {
                let mut bytes = case.clone();
                bytes[at] ^= 1 << bit;
                flipped.push(bytes);
            }
        }
    }
    let mut fast = 0;
    for bytes in cases.iter().chain(&flipped) {
        let ours = time(bytes);
        assert_eq!(ours, time_fields(bytes), "{bytes:02x?}");
        let theirs = prost_types::Timestamp::decode(bytes.as_slice()).ok().and_then(|t| {
            let ok = (0..=crate::check::MAX_SECONDS).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos);
            ok.then(|| t.seconds * 1_000_000_000 + i64::from(t.nanos))
        });
        // (An unknown field, which prost skips, is left to prost.)
        if ours.is_some() {
            assert_eq!(ours, theirs, "{bytes:02x?}");
            fast += 1;
        }
    }
    assert!(fast > 100, "{fast}");
}

/// Leg ratios read from the wire decide as the same ratios parsed as text do.
#[test]
fn exit_leg_ratio_sums_decide_like_decimals() {
    let texts = [
        "1",
        "0.5",
        "0.25",
        "0.75",
        "0.333333333",
        "0.333333334",
        "0.3333333333",
        "0.999999999",
        "0.9999999989",
        "0.000000001",
        "0.0000000001",
        "1.0",
        "0.100000000000000001",
        "0.1",
        "0.2",
        "0.7",
        "0.699999999",
    ];
    let reference = |raw: &[&[u8]]| -> Option<Vec<rust_decimal::Decimal>> {
        let ratios: Vec<_> = raw.iter().map(|t| d(std::str::from_utf8(t).unwrap())).collect();
        let mut sum = rust_decimal::Decimal::ZERO;
        for ratio in &ratios {
            sum = num::add(sum, *ratio)?;
        }
        (num::sub(sum, rust_decimal::Decimal::ONE)?.abs() <= rust_decimal::Decimal::new(1, 9)).then_some(ratios)
    };
    let wrap = |t: &str| crate::pb::Decimal { value: t.to_owned() }.encode_to_vec();
    let mut agreed = 0;
    for a in texts {
        for b in texts {
            for c in ["", "0.5", "0.000000001"] {
                let legs: Vec<&str> = [a, b, c].into_iter().filter(|t| !t.is_empty()).collect();
                let raw: Vec<Vec<u8>> = legs.iter().map(|t| wrap(t)).collect();
                let raw: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
                let texts: Vec<&[u8]> = legs.iter().map(|t| t.as_bytes()).collect();
                let ours = exit_leg_ratios(&raw);
                assert_eq!(format!("{ours:?}"), format!("{:?}", reference(&texts)), "{legs:?}");
                agreed += usize::from(ours.is_some());
            }
        }
    }
    assert!(agreed > 10, "{agreed}");
}

/// Ids decoded against a kernel share what it holds and equal what a
/// decoder that knows nothing makes, with one, two and three instruments
/// (more than two are looked up as text).
#[test]
fn known_ids_decode_like_unknown_ones() {
    for extra in [0, 1] {
        let mut drv = Driver::new(2);
        if extra == 1 {
            let mut list = crate::testkit::instruments();
            list.push(crate::model::Instrument {
                symbol: id("SOL-USDT"),
                quantity_step: d("0.1"),
                price_tick: d("0.01"),
                min_quantity: d("0.1"),
            });
            assert!(drv.step(Payload::Instruments(list)).accepted());
        }
        assert!(drv.enter(0, crate::pb::Side::Long, "0.01").accepted());
        assert!(drv.ack(0).accepted());
        let cid = drv.order_id(0);
        let vid = drv.venue_id(&cid);
        let cfg = drv.kernel.config().clone();
        let mut payloads = Vec::new();
        for symbol in [BTC, "ETH-USDT", "SOL-USDT", "XRP-USDT"] {
            payloads.push(Payload::Mark(crate::input::Mark { symbol: id(symbol), price: d("101.5") }));
        }
        for (cid, vid) in [(Some(cid.clone()), Some(vid.clone())), (Some(cid.clone()), None), (None, Some(vid.clone()))]
        {
            for other in [false, true] {
                let mut event = drv.event(
                    &cid.clone().unwrap_or_else(|| id("tk-9")),
                    crate::pb::VenueEventKind::Unknown,
                    None,
                    None,
                );
                event.client_order_id = if other { Some(id("tk-9")) } else { cid.clone() };
                event.venue_order_id = vid.clone();
                event.symbol = Some(id(BTC));
                payloads.push(Payload::Venue(event));
            }
        }
        let mut taken = 0;
        for payload in payloads {
            let value = Input { sequence: 0, time: drv.now, payload };
            let bytes = crate::encode::input(&value, &cfg.settlement_asset).encode_to_vec();
            let known = input_known(&bytes, &cfg, &drv.kernel);
            assert_eq!(format!("{known:?}"), format!("{:?}", input(&bytes, &cfg)));
            taken += usize::from(matches_prost(&bytes, &cfg, known));
        }
        assert!(taken >= 8, "{taken}");
        assert!(drv.kernel.symbol(b"ETH-USDT").is_some() && drv.kernel.symbol(b"ETH").is_none());
        assert_eq!(drv.kernel.symbol(b"SOL-USDT").is_some(), extra == 1);
    }
}
