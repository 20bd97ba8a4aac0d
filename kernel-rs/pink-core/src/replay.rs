//! Journal replay helpers: taking a serialized `pink.v1.LogRecord` apart
//! without decoding it, decoding its input ahead of the step (on a second
//! thread for bulk replay from journal frames), and the divergence report.

use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

use std::sync::mpsc::SyncSender;

use crate::frames::{Frames, Stop};
use crate::input::Input;
use crate::model::Config;
use crate::{decode, pb, wire};

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

/// A record taken apart by [`split`] (`None`: not plain) with its input
/// decoded and validated ahead of stepping (`None`: it has none, or it does
/// not decode or validate; the general path then reports why).
pub(crate) struct Prepared<'a> {
    pub bytes: &'a [u8],
    pub record: Option<Split<'a>>,
    pub input: Option<Input>,
}

/// [`split`] and decode one serialized `LogRecord`: pure functions of its
/// bytes and the kernel's fixed config, so they can run ahead of the step.
pub(crate) fn prepare<'a>(bytes: &'a [u8], cfg: &Config) -> Prepared<'a> {
    let record = split(bytes);
    let input = record.as_ref().and_then(|record| record.input).and_then(|input| decode_input(input, cfg));
    Prepared { bytes, record, input }
}

fn decode_input(bytes: &[u8], cfg: &Config) -> Option<Input> {
    use prost::Message;
    match wire::input(bytes, cfg) {
        Some(input) => Some(input),
        None => decode::input(&pb::KernelInput::decode(bytes).ok()?, cfg).ok(),
    }
}

/// Frames below this many bytes are replayed on the calling thread alone.
pub(crate) const PIPELINE_MIN_BYTES: usize = 256 * 1024;
/// Records per batch handed from the preparing thread to the stepping one.
const PIPELINE_BATCH: usize = 256;
/// Batches the preparing thread may run ahead.
pub(crate) const PIPELINE_DEPTH: usize = 4;
/// One batch in this many is left for the stepping thread to decode itself:
/// preparing a record costs about 1.5 times stepping it, so with two free
/// cores both threads then have about the same work.
const PIPELINE_SHARE: usize = 5;

/// A record from the preparing thread: decoded, or left for the stepping
/// thread to decode (its payload alone). Unboxed: items live in a batch
/// `Vec` of one size anyway, and a box would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ahead<'a> {
    Prepared(Prepared<'a>),
    Raw(&'a [u8]),
}

/// A batch of records; a frame error ends the last batch.
pub(crate) type Batch<'a> = Vec<Result<Ahead<'a>, Stop>>;

/// The preparing side of a pipelined replay: walks the frames and prepares
/// their records in batches (but every `PIPELINE_SHARE`th batch) until the
/// frames end, a frame is bad (sent as the batch's last item) or the
/// stepping side hangs up.
pub(crate) fn prepare_frames<'a>(
    frames: &'a [u8],
    first: u64,
    verify: bool,
    cfg: &Config,
    batches: &SyncSender<Batch<'a>>,
) {
    let mut batch = Vec::with_capacity(PIPELINE_BATCH);
    let mut sent: usize = 0;
    for frame in Frames::new(frames, first, verify) {
        let raw = sent % PIPELINE_SHARE == PIPELINE_SHARE - 1;
        batch.push(frame.map(|frame| {
            if raw {
                Ahead::Raw(frame.payload)
            } else {
                Ahead::Prepared(prepare(frame.payload, cfg))
            }
        }));
        if batch.len() == PIPELINE_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(PIPELINE_BATCH));
            if batches.send(full).is_err() {
                return;
            }
            sent = sent.wrapping_add(1);
        }
    }
    if !batch.is_empty() {
        // An error means the stepping side stopped: nothing is left to do either way.
        batches.send(batch).ok();
    }
}

/// The error of a bad journal frame.
pub(crate) fn frame_error(stop: Stop) -> String {
    format!("journal frame at offset {}: {}", stop.offset(), stop.reason())
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
