//! Journal replay helpers: taking a serialized `pink.v1.LogRecord` apart
//! without decoding it, and the divergence report.

use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

use crate::pb;

/// The fields of a serialized `LogRecord` that replay needs, as slices of it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Split<'a> {
    pub sequence: u64,
    /// Serialized `KernelInput`.
    pub input: Option<&'a [u8]>,
    /// Serialized `Outcome`.
    pub outcome: Option<&'a [u8]>,
    pub position: &'a str,
}

/// Takes a record apart when it has the plain shape the kernel service
/// writes: each replay field at most once with its own wire type, the other
/// fields well-formed. Anything else (a repeated field that protobuf would
/// merge, a malformed field) is `None`, and the caller decodes the record
/// the general way, which also reports the errors.
pub(crate) fn split(mut buf: &[u8]) -> Option<Split<'_>> {
    let mut split = Split::default();
    let mut seen = [false; 4];
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        let index = match tag {
            2 => 0,
            3 => 1,
            4 => 2,
            8 => 3,
            _ => {
                skip_field(wire_type, tag, &mut buf, DecodeContext::default()).ok()?;
                continue;
            }
        };
        let first = seen.get_mut(index)?;
        if std::mem::replace(first, true) {
            return None;
        }
        if tag == 2 {
            if wire_type != WireType::Varint {
                return None;
            }
            split.sequence = decode_varint(&mut buf).ok()?;
            continue;
        }
        if wire_type != WireType::LengthDelimited {
            return None;
        }
        let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
        let (field, rest) = buf.split_at_checked(len)?;
        buf = rest;
        match tag {
            3 => split.input = Some(field),
            4 => split.outcome = Some(field),
            _ => split.position = std::str::from_utf8(field).ok()?,
        }
    }
    Some(split)
}

/// The error of a record whose outcome differs from the recorded one.
pub(crate) fn diverged(sequence: u64, recorded: Option<&pb::Outcome>, replayed: &pb::Outcome) -> String {
    format!(
        "replay diverged at sequence {sequence}: recorded {:?}, replayed {:?}",
        recorded.map(|o| (o.accepted, o.code, o.sequence)),
        (replayed.accepted, replayed.code, replayed.sequence)
    )
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn record() -> pb::LogRecord {
        pb::LogRecord {
            kernel_id: "pk1".into(),
            sequence: 300,
            input: Some(pb::KernelInput { sequence: 300, ..Default::default() }),
            outcome: Some(pb::Outcome { sequence: 300, accepted: true, code: 1, ..Default::default() }),
            trace: Some(pb::TraceContext { traceparent: "tp".into(), tracestate: String::new() }),
            record_time: Some(prost_types::Timestamp { seconds: 5, nanos: 6 }),
            post_state: Some(pb::KernelView::default()),
            venue_stream_position: "1-0".into(),
        }
    }

    #[test]
    fn splits_a_plain_record_into_its_fields() {
        let r = record();
        let bytes = r.encode_to_vec();
        let split = split(&bytes);
        let input = r.input.as_ref().map(Message::encode_to_vec);
        let outcome = r.outcome.as_ref().map(Message::encode_to_vec);
        assert_eq!(
            split,
            Some(Split { sequence: 300, input: input.as_deref(), outcome: outcome.as_deref(), position: "1-0" })
        );
        assert_eq!(super::split(&[]), Some(Split::default()));
    }

    #[test]
    fn leaves_merged_or_malformed_records_to_the_decoder() {
        let bytes = record().encode_to_vec();
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        assert_eq!(split(&twice), None, "repeated fields merge: not plain");
        assert_eq!(split(bytes.get(..bytes.len() - 1).unwrap_or(&[])), None, "truncated");
        assert_eq!(split(&[0x10]), None, "truncated varint");
        assert_eq!(split(&[0x12, 0x00]), None, "sequence with the wrong wire type");
        assert_eq!(split(&[0x42, 0x01, 0xff]), None, "position is not UTF-8");
        assert_eq!(split(&[0x00]), None, "tag 0");
    }
}
