//! The kernel service journal's segment frames (ADR 0005, ADR 0010), read
//! in bulk: `u32 length | u32 crc32(sequence bytes + payload) | u64 sequence
//! | payload`, all little-endian, sequences contiguous.
//!
//! The journal (Python) reads segment files in large buffers; this module
//! walks the frames of such a buffer: the open-time scan (checksums,
//! sequences, the sparse offset index) and the restart's replay
//! (`Kernel::replay_frames`) both use it, so no per-frame work is left in
//! Python.

/// Bytes of a frame header.
pub const HEADER: usize = 16;

/// One complete frame of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the frame's header in the buffer.
    pub offset: usize,
    pub sequence: u64,
    pub payload: &'a [u8],
}

/// Why a walk stopped before the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The frame at `offset` is not complete in the buffer (a header or a
    /// payload cut short): more bytes are needed, or it is a torn tail.
    Incomplete { offset: usize, needed: usize, available: usize },
    /// The frame at `offset` is complete but its checksum does not match.
    Checksum { offset: usize, expected: u64 },
    /// The frame at `offset` is complete and checksummed (when checksums are
    /// verified) but carries `found` where `expected` was due.
    Sequence { offset: usize, expected: u64, found: u64 },
}

impl Stop {
    /// Offset of the frame the walk stopped at.
    pub fn offset(&self) -> usize {
        match *self {
            Stop::Incomplete { offset, .. } | Stop::Checksum { offset, .. } | Stop::Sequence { offset, .. } => offset,
        }
    }

    /// The reason, in the words of the journal's messages.
    pub fn reason(&self) -> String {
        match *self {
            Stop::Incomplete { needed, available, .. } => {
                format!("incomplete frame: {available} bytes where {needed} are needed")
            }
            Stop::Checksum { expected, .. } => format!("checksum mismatch in the frame at sequence {expected}"),
            Stop::Sequence { expected, found, .. } => format!("sequence {found} where {expected} was expected"),
        }
    }
}

/// crc32 (zlib's) of a frame's sequence bytes and payload, as stored in its header.
pub fn checksum(sequence: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// The frames of a buffer, in order, each checked for completeness, sequence
/// (contiguous from `expected`) and, when `verify`, checksum. Yields
/// `Err(stop)` once at the first frame that fails, then ends; ends without
/// error exactly at the end of the buffer.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    expected: u64,
    verify: bool,
    done: bool,
}

impl<'a> Frames<'a> {
    pub fn new(buf: &'a [u8], expected: u64, verify: bool) -> Frames<'a> {
        Frames { buf, pos: 0, expected, verify, done: false }
    }

    /// Offset after the last frame yielded.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Sequence the next frame must carry.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    fn next_frame(&mut self) -> Result<Frame<'a>, Stop> {
        let offset = self.pos;
        let available = self.buf.len().saturating_sub(offset);
        let incomplete = |needed: usize| Stop::Incomplete { offset, needed, available };
        let (Some(length), Some(crc), Some(sequence)) = (
            u32_at(self.buf, offset),
            u32_at(self.buf, offset.saturating_add(4)),
            u64_at(self.buf, offset.saturating_add(8)),
        ) else {
            return Err(incomplete(HEADER));
        };
        let needed = usize::try_from(length).map_or(usize::MAX, |length| length.saturating_add(HEADER));
        let start = offset.saturating_add(HEADER);
        let Some(payload) = self.buf.get(start..offset.saturating_add(needed)) else {
            return Err(incomplete(needed));
        };
        let expected = self.expected;
        if self.verify && checksum(sequence, payload) != crc {
            return Err(Stop::Checksum { offset, expected });
        }
        if sequence != expected {
            return Err(Stop::Sequence { offset, expected, found: sequence });
        }
        self.pos = offset.saturating_add(needed);
        self.expected = expected.saturating_add(1);
        Ok(Frame { offset, sequence, payload })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, Stop>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let next = self.next_frame();
        self.done = next.is_err();
        Some(next)
    }
}

/// What [`scan`] found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Offset after the last good frame.
    pub end: usize,
    /// Sequence the frame at `end` must carry.
    pub expected: u64,
    /// Sparse index entries `(sequence, offset)`: the first frame at or after
    /// `index_at`, then the first at least `stride` bytes after the previous entry.
    pub index: Vec<(u64, usize)>,
    /// Offset in the buffer from which the next entry is due.
    pub index_at: usize,
    /// Why the scan stopped before the end of the buffer (`None`: it did not).
    pub stop: Option<Stop>,
}

/// Validates the frames of `buf` (contiguous sequences from `expected`,
/// checksums when `verify`) up to the first bad or incomplete frame, and
/// builds the sparse index.
pub fn scan(buf: &[u8], expected: u64, verify: bool, index_at: usize, stride: usize) -> Scan {
    let mut frames = Frames::new(buf, expected, verify);
    let mut index = Vec::new();
    let mut index_at = index_at;
    let mut stop = None;
    for frame in frames.by_ref() {
        match frame {
            Ok(frame) => {
                if frame.offset >= index_at {
                    index.push((frame.sequence, frame.offset));
                    index_at = frame.offset.saturating_add(stride.max(1));
                }
            }
            Err(bad) => stop = Some(bad),
        }
    }
    Scan { end: frames.position(), expected: frames.expected(), index, index_at, stop }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn frame(sequence: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&checksum(sequence, payload).to_le_bytes());
        out.extend_from_slice(&sequence.to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn frames(first: u64, payloads: &[&[u8]]) -> Vec<u8> {
        payloads.iter().zip(first..).flat_map(|(p, s)| frame(s, p)).collect()
    }

    #[test]
    fn checksum_is_zlibs_crc32_of_sequence_and_payload() {
        // zlib.crc32(struct.pack("<Q", 7) + b"abc") in Python.
        assert_eq!(checksum(7, b"abc"), 0x88d9_3cbf);
        assert_eq!(checksum(0, b""), 0x6522_df69);
    }

    #[test]
    fn walks_good_frames_to_the_end() {
        let buf = frames(5, &[b"a", b"", b"ccc"]);
        let got: Vec<_> = Frames::new(&buf, 5, true).collect();
        assert_eq!(
            got,
            vec![
                Ok(Frame { offset: 0, sequence: 5, payload: b"a" }),
                Ok(Frame { offset: 17, sequence: 6, payload: b"" }),
                Ok(Frame { offset: 33, sequence: 7, payload: b"ccc" }),
            ]
        );
        let scanned = scan(&buf, 5, true, 0, 20);
        assert_eq!(
            scanned,
            Scan { end: buf.len(), expected: 8, index: vec![(5, 0), (7, 33)], index_at: 53, stop: None }
        );
        assert_eq!(scan(&[], 1, true, 0, 1), Scan { end: 0, expected: 1, index: vec![], index_at: 0, stop: None });
    }

    #[test]
    fn stops_at_incomplete_corrupt_or_out_of_sequence_frames() {
        let buf = frames(1, &[b"one", b"two"]);
        let cut = buf.get(..buf.len() - 1).unwrap_or_default();
        let scanned = scan(cut, 1, true, 0, 1);
        assert_eq!((scanned.end, scanned.expected), (19, 2));
        assert_eq!(scanned.stop, Some(Stop::Incomplete { offset: 19, needed: 19, available: 18 }));
        let header_cut = buf.get(..25).unwrap_or_default();
        assert_eq!(
            scan(header_cut, 1, true, 0, 1).stop,
            Some(Stop::Incomplete { offset: 19, needed: 16, available: 6 })
        );

        let mut flipped = buf.clone();
        if let Some(byte) = flipped.last_mut() {
            *byte ^= 1;
        }
        let scanned = scan(&flipped, 1, true, 0, 1);
        assert_eq!(scanned.stop, Some(Stop::Checksum { offset: 19, expected: 2 }));
        assert_eq!(scanned.stop.map(|s| s.reason()), Some("checksum mismatch in the frame at sequence 2".to_owned()));
        assert_eq!(scan(&flipped, 1, false, 0, 1).stop, None, "checksums unchecked");

        let gap = [frame(1, b"one"), frame(3, b"three")].concat();
        let scanned = scan(&gap, 1, true, 0, 1);
        assert_eq!(scanned.stop, Some(Stop::Sequence { offset: 19, expected: 2, found: 3 }));
        assert_eq!(scanned.stop.map(|s| s.reason()), Some("sequence 3 where 2 was expected".to_owned()));
        let mut frames = Frames::new(&gap, 1, true);
        assert!(matches!(frames.next(), Some(Ok(_))));
        assert!(matches!(frames.next(), Some(Err(_))));
        assert_eq!(frames.next(), None, "one error, then the end");
    }

    #[test]
    fn huge_lengths_are_incomplete_not_overflows() {
        let mut buf = frame(1, b"x");
        buf.splice(0..4, u32::MAX.to_le_bytes());
        let scanned = scan(&buf, 1, true, 0, 1);
        assert!(matches!(scanned.stop, Some(Stop::Incomplete { offset: 0, .. })), "{scanned:?}");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::tests::frame;
    use super::*;

    proptest! {
        /// Any buffer, however damaged: the scan never panics, `end` is a
        /// frame boundary of good frames, and a stop lies at `end`.
        #[test]
        fn scan_of_any_bytes_is_consistent(bytes in proptest::collection::vec(any::<u8>(), 0..200), first in 0u64..5) {
            let scanned = scan(&bytes, first, true, 0, 8);
            prop_assert!(scanned.end <= bytes.len());
            prop_assert_eq!(scanned.stop.map(|s| s.offset()).unwrap_or(bytes.len()), scanned.end);
        }

        /// Good frames cut or flipped anywhere: everything before the damage is
        /// returned, and the walk stops exactly at the damaged frame.
        #[test]
        fn damage_stops_the_scan_at_its_frame(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let parts: Vec<Vec<u8>> = payloads.iter().zip(1u64..).map(|(p, s)| frame(s, p)).collect();
            let starts: Vec<usize> = parts.iter().scan(0, |at, p| { let s = *at; *at += p.len(); Some(s) }).collect();
            let buf = parts.concat();
            let whole = scan(&buf, 1, true, 0, 1);
            prop_assert_eq!(whole.end, buf.len());
            prop_assert_eq!(whole.expected, payloads.len() as u64 + 1);
            prop_assert_eq!(whole.stop, None);

            let at = cut.index(buf.len());
            let frame_of = |offset: usize| starts.iter().rposition(|&s| s <= offset).unwrap_or(0);
            let cut_scan = scan(buf.get(..at).unwrap_or_default(), 1, true, 0, 1);
            let damaged = frame_of(at);
            let boundary = starts.get(damaged).copied().unwrap_or(0);
            prop_assert_eq!(cut_scan.end, if starts.contains(&at) { at } else { boundary });

            let bit = flip.index(buf.len() * 8);
            let mut flipped = buf.clone();
            if let Some(byte) = flipped.get_mut(bit / 8) { *byte ^= 1 << (bit % 8); }
            let hit = frame_of(bit / 8);
            let flip_scan = scan(&flipped, 1, true, 0, 1);
            prop_assert_eq!(flip_scan.end, starts.get(hit).copied().unwrap_or(0));
            prop_assert!(flip_scan.stop.is_some());
        }
    }
}
