//! Protobuf fields read straight from a byte slice.

use prost::encoding::{decode_key, decode_varint, WireType};

/// Reads protobuf fields from a byte slice, borrowing text from it.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

/// Wire types as they appear in a key.
pub(super) const VARINT: u8 = WireType::Varint as u8;
pub(super) const LENGTH_DELIMITED: u8 = WireType::LengthDelimited as u8;

/// The one-byte key of field `tag` (below 16) holding a varint.
pub(super) const fn varint_key(tag: u8) -> u8 {
    tag.wrapping_shl(3) | VARINT
}

/// The one-byte key of field `tag` (below 16) holding length-delimited bytes.
pub(super) const fn bytes_key(tag: u8) -> u8 {
    tag.wrapping_shl(3) | LENGTH_DELIMITED
}

impl<'a> Reader<'a> {
    /// The next field key: tag and raw wire type (checked by the reader of
    /// the field); `None` at the end or on a malformed key.
    #[inline(always)]
    pub(super) fn key(&mut self) -> Option<(u32, u8)> {
        let (&key, rest) = self.0.split_first()?;
        if key < 0x80 {
            // Tag 0 is no field of any message read here.
            self.0 = rest;
            return Some((u32::from(key >> 3), key & 0x07));
        }
        decode_key(&mut self.0).ok().map(|(tag, wire_type)| (tag, wire_type as u8))
    }

    #[inline(always)]
    pub(super) fn varint(&mut self, wire_type: u8) -> Option<u64> {
        if wire_type != VARINT {
            return None;
        }
        self.raw_varint()
    }

    /// A varint as prost reads it (at most 10 bytes, the last one 0 or 1).
    #[inline(always)]
    pub(super) fn raw_varint(&mut self) -> Option<u64> {
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
    pub(super) fn long_varint(&mut self) -> Option<u64> {
        if let Some((word, _)) = self.0.split_first_chunk::<8>() {
            if let Some((value, len)) = word_varint(u64::from_le_bytes(*word)) {
                self.0 = self.0.get(len..)?;
                return Some(value);
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
    pub(super) fn bytes(&mut self, wire_type: u8) -> Option<&'a [u8]> {
        if wire_type != LENGTH_DELIMITED {
            return None;
        }
        self.delimited()
    }

    /// A length-delimited field's bytes, its key already read.
    #[inline(always)]
    pub(super) fn delimited(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.raw_varint()?).ok()?;
        let (field, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(field)
    }

    /// Takes the one-byte field key `key` if it comes next. Reading a
    /// message's fields by their keys in tag order takes the order prost
    /// writes them in with one comparison per field, no tag dispatch and no
    /// check for repeats; bytes left over mean another order (or an unknown
    /// field), for [`fields`] to read.
    #[inline(always)]
    pub(super) fn next_is(&mut self, key: u8) -> bool {
        match self.0.split_first() {
            Some((&next, rest)) if next == key => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    #[inline(always)]
    pub(super) fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// The varint at the start of `word` (little-endian bytes) and its length
/// in bytes, if it ends within the word: its bits, as prost reads them,
/// without a branch per byte.
#[inline(always)]
pub(super) fn word_varint(word: u64) -> Option<(u64, usize)> {
    let ends = !word & 0x8080_8080_8080_8080;
    if ends == 0 {
        return None;
    }
    // Every byte up to and including the first without its high bit.
    let x = word & (ends ^ ends.wrapping_sub(1)) & 0x7F7F_7F7F_7F7F_7F7F;
    let x = ((x & 0x7F00_7F00_7F00_7F00) >> 1) | (x & 0x007F_007F_007F_007F);
    let x = ((x & 0x3FFF_0000_3FFF_0000) >> 2) | (x & 0x0000_3FFF_0000_3FFF);
    let x = ((x & 0x0FFF_FFFF_0000_0000) >> 4) | (x & 0x0000_0000_0FFF_FFFF);
    Some((x, ((ends.trailing_zeros() >> 3) as usize).wrapping_add(1)))
}

/// Marks field `tag` as seen; `None` if it was already (protobuf would merge).
pub(super) fn first(seen: &mut u32, tag: u32) -> Option<()> {
    let bit = 1_u32.checked_shl(tag)?;
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// Runs `field` on every field of `bytes`, each tag at most once.
pub(super) fn fields<'a>(bytes: &'a [u8], field: impl FnMut(&mut Reader<'a>, u32, u8) -> Option<()>) -> Option<()> {
    fields_repeating(bytes, None, field)
}

/// `fields`, where the `repeated` tag (a repeated field) may come any number of times.
pub(super) fn fields_repeating<'a>(
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

/// A varint and the bytes after it.
#[inline(always)]
pub(super) fn split_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut r = Reader(bytes);
    let value = r.raw_varint()?;
    Some((value, r.0))
}
