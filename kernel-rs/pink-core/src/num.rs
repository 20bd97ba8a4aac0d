//! Exact decimal arithmetic.
//!
//! `rust_decimal` silently rounds when a sum or product needs more than 28
//! significant digits. Money must never be rounded behind our back, so every
//! addition, subtraction and multiplication on a money path goes through the
//! functions here: they return the exact result or `None`, never a rounded
//! one. The only rounding in the kernel is explicit (`div_round`).

use rust_decimal::{Decimal, RoundingStrategy};

/// Largest mantissa a `Decimal` holds (2^96 - 1).
const MAX_MANTISSA: i128 = 79_228_162_514_264_337_593_543_950_335;
/// Largest scale a `Decimal` holds.
const MAX_SCALE: u32 = 28;

/// 10^0 ..= 10^38: every power of ten an i128 holds. Built at compile time,
/// where an out-of-range index or overflow is a build error, not a panic.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const POW10: [i128; 39] = {
    let mut table = [1_i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// 10^0 ..= 10^19: the powers of ten a u64 holds (the wire decoder's decimals).
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub(crate) const POW10_U64: [u64; 20] = {
    let mut table = [1_u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// 10^0 ..= 10^18: the powers of ten an i64 holds.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub(crate) const POW10_I64: [i64; 19] = {
    let mut table = [1_i64; 19];
    let mut i = 1;
    while i < 19 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

#[inline]
fn pow10(exp: u32) -> Option<i128> {
    POW10.get(exp as usize).copied()
}

/// Mantissa and scale with trailing zeros removed.
fn trimmed(value: Decimal) -> (i128, u32) {
    let normal = value.normalize();
    (normal.mantissa(), normal.scale())
}

/// Builds a decimal from an exact mantissa/scale, shedding trailing zeros if
/// that is what it takes to fit; `None` if it cannot be represented exactly.
#[inline]
fn build(mut mantissa: i128, mut scale: u32) -> Option<Decimal> {
    if scale <= MAX_SCALE && mantissa.unsigned_abs() <= MAX_MANTISSA.unsigned_abs() {
        return Decimal::try_from_i128_with_scale(mantissa, scale).ok();
    }
    while scale > MAX_SCALE || mantissa.unsigned_abs() > MAX_MANTISSA.unsigned_abs() {
        if scale == 0 || mantissa % 10 != 0 {
            return None;
        }
        mantissa /= 10;
        scale = scale.saturating_sub(1);
    }
    Decimal::try_from_i128_with_scale(mantissa, scale).ok()
}

/// Two mantissas at a common scale.
#[inline]
fn align((ma, sa): (i128, u32), (mb, sb): (i128, u32)) -> Option<(i128, i128, u32)> {
    if sa == sb {
        return Some((ma, mb, sa));
    }
    let scale = sa.max(sb);
    let ma = scale_up(ma, scale.checked_sub(sa)?)?;
    let mb = scale_up(mb, scale.checked_sub(sb)?)?;
    Some((ma, mb, scale))
}

/// `mantissa * 10^exp`, or `None` on overflow. A decimal's mantissa is below
/// 2^96 and 10^exp below 2^30 for exp <= 9, so then the product is below 2^126
/// and the plain multiplication is exact (the checked one costs a library call).
#[inline]
fn scale_up(mantissa: i128, exp: u32) -> Option<i128> {
    let factor = pow10(exp)?;
    if exp <= 9 && mantissa.unsigned_abs() < 1_u128 << 96 {
        Some(mantissa.wrapping_mul(factor))
    } else {
        mantissa.checked_mul(factor)
    }
}

/// Mantissa and scale of a decimal whose mantissa is below 2^63 in magnitude
/// (money nearly always is), read from its parts without the i128 assembly.
#[inline(always)]
pub(crate) fn small(value: &Decimal) -> Option<(i64, u32)> {
    let parts = value.unpack();
    if parts.hi != 0 {
        return None;
    }
    let magnitude = i64::try_from((u64::from(parts.mid) << 32) | u64::from(parts.lo)).ok()?;
    Some((if parts.negative { magnitude.wrapping_neg() } else { magnitude }, parts.scale))
}

/// Small mantissas (see `small`) at a common scale, when the alignment
/// factor is at most 10^9: each is then below 2^93, so sums, differences and
/// comparisons of them are exact in i128 and a sum is below 2^94, which every
/// decimal mantissa holds.
#[inline(always)]
fn align_small(a: &Decimal, b: &Decimal) -> Option<(i128, i128, u32)> {
    let (ma, sa) = small(a)?;
    let (mb, sb) = small(b)?;
    if sa == sb {
        return Some((i128::from(ma), i128::from(mb), sa));
    }
    let scale = sa.max(sb);
    let up = |m: i64, s: u32| -> Option<i128> {
        let exp = scale.checked_sub(s)?;
        if exp > 9 {
            return None;
        }
        Some(i128::from(m).wrapping_mul(pow10(exp)?))
    };
    Some((up(ma, sa)?, up(mb, sb)?, scale))
}

/// Applies `op` to the aligned mantissas; if alignment or the result does not
/// fit, tries again with trailing zeros removed (the slow path). Small
/// operands (`align_small`) take the same arithmetic without the checks they
/// cannot fail.
#[inline(always)]
fn combine(
    a: Decimal,
    b: Decimal,
    op64: impl Fn(i64, i64) -> Option<i64>,
    op: impl Fn(i128, i128) -> Option<i128>,
) -> Option<Decimal> {
    if let Some(value) = combine64(&a, &b, op64) {
        return Some(value);
    }
    if let Some((ma, mb, scale)) = align_small(&a, &b) {
        if let Some(Ok(value)) = op(ma, mb).map(|m| Decimal::try_from_i128_with_scale(m, scale)) {
            return Some(value);
        }
    }
    combine_general(a, b, op)
}

/// `combine` when the aligned mantissas and the result fit an i64 (checked):
/// the same mantissa and scale as the i128 arithmetic, fewer instructions.
#[inline(always)]
fn combine64(a: &Decimal, b: &Decimal, op: impl Fn(i64, i64) -> Option<i64>) -> Option<Decimal> {
    let (ma, sa) = small(a)?;
    let (mb, sb) = small(b)?;
    let (ma, mb, scale) = if sa == sb {
        (ma, mb, sa)
    } else {
        let scale = sa.max(sb);
        let up = |m: i64, s: u32| m.checked_mul(*POW10_I64.get(scale.checked_sub(s)? as usize)?);
        (up(ma, sa)?, up(mb, sb)?, scale)
    };
    Decimal::try_new(op(ma, mb)?, scale).ok()
}

#[inline(never)]
fn combine_general(a: Decimal, b: Decimal, op: impl Fn(i128, i128) -> Option<i128>) -> Option<Decimal> {
    let fast = align((a.mantissa(), a.scale()), (b.mantissa(), b.scale()))
        .and_then(|(ma, mb, scale)| build(op(ma, mb)?, scale));
    if fast.is_some() {
        return fast;
    }
    let (ma, mb, scale) = align(trimmed(a), trimmed(b))?;
    build(op(ma, mb)?, scale)
}

/// `a.cmp(&b)` (the same order as `Decimal`'s), on the aligned mantissas when they fit.
#[inline(always)]
pub fn cmp(a: Decimal, b: Decimal) -> std::cmp::Ordering {
    match align_small(&a, &b) {
        Some((ma, mb, _)) => ma.cmp(&mb),
        None => cmp_general(a, b),
    }
}

#[inline(never)]
fn cmp_general(a: Decimal, b: Decimal) -> std::cmp::Ordering {
    match align((a.mantissa(), a.scale()), (b.mantissa(), b.scale())) {
        Some((ma, mb, _)) => ma.cmp(&mb),
        None => a.cmp(&b),
    }
}

/// `a.min(b)` (`Decimal::min`): `a` unless `b` is smaller, so `a` on a tie.
#[inline]
pub fn min(a: Decimal, b: Decimal) -> Decimal {
    match cmp(a, b) {
        std::cmp::Ordering::Greater => b,
        _ => a,
    }
}

/// `a.max(b)` (`Decimal::max`): `a` unless `b` is greater, so `a` on a tie.
#[inline]
pub fn max(a: Decimal, b: Decimal) -> Decimal {
    match cmp(a, b) {
        std::cmp::Ordering::Less => b,
        _ => a,
    }
}

/// `a + b`, exactly.
#[inline(always)]
pub fn add(a: Decimal, b: Decimal) -> Option<Decimal> {
    combine(a, b, i64::checked_add, i128::checked_add)
}

/// `a + b`, exactly: the value of `add`, but `b` itself when `a` is zero
/// (its scale may then differ from `add`'s). For running totals, which
/// start at zero and are only ever read as values.
#[inline(always)]
pub fn accumulate(a: Decimal, b: Decimal) -> Option<Decimal> {
    if a.is_zero() {
        Some(b)
    } else {
        add(a, b)
    }
}

/// `a - b`, exactly.
#[inline(always)]
pub fn sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    combine(a, b, i64::checked_sub, i128::checked_sub)
}

/// `a * b`, exactly.
#[inline(always)]
pub fn mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    // Small operands whose product fits an i64 at a scale a decimal holds:
    // the mantissa and scale `build` would give, without i128.
    if let (Some((ma, sa)), Some((mb, sb))) = (small(&a), small(&b)) {
        if let (Some(m), Some(scale)) = (ma.checked_mul(mb), sa.checked_add(sb)) {
            if let Ok(value) = Decimal::try_new(m, scale) {
                return Some(value);
            }
        }
    }
    let fast = mul_mantissas(a.mantissa(), b.mantissa()).and_then(|m| build(m, a.scale().checked_add(b.scale())?));
    if fast.is_some() {
        return fast;
    }
    let (ma, sa) = trimmed(a);
    let (mb, sb) = trimmed(b);
    build(ma.checked_mul(mb)?, sa.checked_add(sb)?)
}

/// `a * b` on mantissas, or `None` on overflow; below 2^63 each, the product
/// is below 2^126 and the plain multiplication is exact.
#[inline]
fn mul_mantissas(a: i128, b: i128) -> Option<i128> {
    if a.unsigned_abs() < 1_u128 << 63 && b.unsigned_abs() < 1_u128 << 63 {
        Some(a.wrapping_mul(b))
    } else {
        a.checked_mul(b)
    }
}

/// `-a`.
pub fn neg(a: Decimal) -> Decimal {
    let mut negated = a;
    negated.set_sign_negative(!a.is_sign_negative());
    negated.normalize()
}

/// `a / b` rounded half-to-even to `dp` decimal places: the one deliberate
/// rounding (average prices, cost released by a partial exit).
pub fn div_round(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    if b.is_zero() {
        return None;
    }
    let quotient = a.checked_div(b)?;
    Some(quotient.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven))
}

/// Largest multiple of `step` that is <= `value` (for positive inputs).
pub fn floor_to_step(value: Decimal, step: Decimal) -> Option<Decimal> {
    if step <= Decimal::ZERO {
        return None;
    }
    let units = value.checked_div(step)?.floor();
    mul(units, step)
}

/// Whether `value` is a whole multiple of `step`.
pub fn is_multiple(value: Decimal, step: Decimal) -> bool {
    // `step <= 0` without the general decimal comparison.
    if step.is_zero() || step.is_sign_negative() {
        return false;
    }
    // Small operands at a common scale: a multiple exactly when the integer
    // remainder is zero.
    if let Some((mv, ms, _)) = align_small(&value, &step) {
        // An i64 remainder when both fit: the i128 one is a library call.
        if let (Ok(v), Ok(s)) = (i64::try_from(mv), i64::try_from(ms)) {
            return v.checked_rem(s) == Some(0);
        }
        return mv.checked_rem(ms) == Some(0);
    }
    match value.checked_rem(step) {
        Some(rem) => rem.is_zero(),
        None => false,
    }
}

/// Number of significant digits of the trimmed mantissa.
pub fn significant_digits(value: Decimal) -> u32 {
    let (mantissa, _) = trimmed(value);
    let mut digits: u32 = 1;
    let mut rest = mantissa.unsigned_abs() / 10;
    while rest > 0 {
        digits = digits.saturating_add(1);
        rest /= 10;
    }
    digits
}

/// Canonical text of a decimal: no trailing zeros, no "-0". (Hand-placed
/// decimal point over itoa's digits: this runs for every decimal the kernel
/// encodes, and `Display` costs several times more.)
pub fn to_text(value: Decimal) -> String {
    Text::new(value).as_str().to_owned()
}

/// The canonical text of a decimal (see `to_text`) in a stack buffer, so the
/// encoders write it without allocating.
pub struct Text {
    buf: [u8; Text::CAPACITY],
    /// The text is `buf[start..]`: it is written right to left.
    start: usize,
}

impl Text {
    /// Sign, 29 digits, point and up to 27 padding zeros fit with room to spare.
    const CAPACITY: usize = 64;

    pub fn new(value: Decimal) -> Text {
        let mut text = Text { buf: [0; Text::CAPACITY], start: Text::CAPACITY };
        let mut mantissa = value.mantissa().unsigned_abs();
        let mut scale = value.scale();
        // Trailing fraction zeros are not written.
        while scale > 0 && mantissa != 0 {
            let (rest, digit) = div10(mantissa);
            if digit != 0 {
                break;
            }
            mantissa = rest;
            scale = scale.saturating_sub(1);
        }
        if mantissa == 0 {
            text.put(b'0');
            return text;
        }
        // Digits from the last, the point after `scale` of them, then a
        // leading "0" if nothing is left before the point.
        let mut fraction = scale;
        loop {
            let (rest, digit) = div10(mantissa);
            mantissa = rest;
            text.put(b'0'.wrapping_add(digit));
            if fraction > 0 {
                fraction = fraction.saturating_sub(1);
                if fraction == 0 {
                    text.put(b'.');
                    if mantissa == 0 {
                        text.put(b'0');
                    }
                }
            }
            if mantissa == 0 && fraction == 0 {
                break;
            }
        }
        if value.is_sign_negative() {
            text.put(b'-');
        }
        text
    }

    fn put(&mut self, byte: u8) {
        if let Some(start) = self.start.checked_sub(1) {
            if let Some(slot) = self.buf.get_mut(start) {
                *slot = byte;
                self.start = start;
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-', '.' are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// `(m / 10, m % 10)`, in 64-bit arithmetic when `m` fits (the 128-bit one
/// is a library call).
#[inline]
fn div10(m: u128) -> (u128, u8) {
    match u64::try_from(m) {
        Ok(small) => (u128::from(small.wrapping_div(10)), u8::try_from(small.wrapping_rem(10)).unwrap_or(0)),
        Err(_) => (m.wrapping_div(10), u8::try_from(m.wrapping_rem(10)).unwrap_or(0)),
    }
}

/// Parse failure of decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    TooLong,
    Syntax,
    TooManyFractionDigits,
    TooPrecise,
}

impl ParseError {
    pub fn describe(&self) -> &'static str {
        match self {
            ParseError::Empty => "is empty",
            ParseError::TooLong => "is longer than 48 characters",
            ParseError::Syntax => {
                "is not a plain decimal (optional '-', digits, optional '.' and digits; no exponent, NaN or Infinity)"
            }
            ParseError::TooManyFractionDigits => "has more than 18 fractional digits",
            ParseError::TooPrecise => "has more than 28 significant digits",
        }
    }
}

/// Parses the wire grammar of `pink.v1.Decimal`.
pub fn parse(text: &str) -> Result<Decimal, ParseError> {
    match parse_plain(text) {
        Some(value) => Ok(value),
        None => parse_checked(text),
    }
}

/// One pass over the usual text: an optional '-', digits, optionally a '.'
/// and digits, at most 28 digits in all and at most 18 after the point. It
/// gives what `parse_checked` gives for such text (`parse_short`); `None`
/// for everything else, which `parse_checked` parses or explains.
fn parse_plain(text: &str) -> Option<Decimal> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    // At most 28 digits (more is not plain text): below 10^28 < 2^94, so the
    // u128 arithmetic cannot wrap.
    let mut mantissa: u128 = 0;
    let mut count = 0_usize;
    let mut point: Option<usize> = None;
    for byte in digits {
        if byte.is_ascii_digit() {
            if count >= 28 {
                return None;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u128::from(byte.wrapping_sub(b'0')));
            count = count.wrapping_add(1);
        } else if *byte == b'.' && point.is_none() && count > 0 {
            point = Some(count);
        } else {
            return None;
        }
    }
    let scale = match point {
        Some(at) => count.checked_sub(at).filter(|s| (1..=18).contains(s))?,
        None => 0,
    };
    if count == 0 || count > 28 || (negative && mantissa == 0) {
        return None;
    }
    let mantissa = i128::try_from(mantissa).ok()?;
    let mantissa = if negative { mantissa.checked_neg()? } else { mantissa };
    Decimal::try_from_i128_with_scale(mantissa, u32::try_from(scale).ok()?).ok()
}

/// `parse` of any text, explaining what is wrong with it.
fn parse_checked(text: &str) -> Result<Decimal, ParseError> {
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text.len() > 48 {
        return Err(ParseError::TooLong);
    }
    let body = text.strip_prefix('-').unwrap_or(text);
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int_part) {
        return Err(ParseError::Syntax);
    }
    if let Some(frac) = frac_part {
        if !digits_only(frac) {
            return Err(ParseError::Syntax);
        }
        if frac.len() > 18 {
            return Err(ParseError::TooManyFractionDigits);
        }
    }
    // Significant digits, counted on the text: leading zeros (and the point)
    // and trailing fraction zeros do not count.
    let digits = body.bytes().filter(u8::is_ascii_digit);
    let total = digits.clone().count();
    let leading = body.bytes().take_while(|b| *b == b'0' || *b == b'.').filter(u8::is_ascii_digit).count();
    let trailing = match frac_part {
        Some(frac) => frac.bytes().rev().take_while(|b| *b == b'0').count(),
        None => 0,
    };
    if total.saturating_sub(leading).saturating_sub(trailing) > 28 {
        return Err(ParseError::TooPrecise);
    }
    if let Some(value) = parse_short(text.starts_with('-'), int_part, frac_part.unwrap_or("")) {
        return Ok(value);
    }
    Decimal::from_str_exact(text).map_err(|_| ParseError::TooPrecise)
}

/// What `Decimal::from_str_exact` gives for checked digits of at most 28
/// digits in all (the mantissa fits, nothing rounds): the digits as the
/// mantissa, the fraction's length as the scale. `None` for the other cases
/// (and for "-0", whose sign `from_str_exact` decides).
fn parse_short(negative: bool, int_part: &str, frac_part: &str) -> Option<Decimal> {
    if int_part.len().saturating_add(frac_part.len()) > 28 {
        return None;
    }
    let mut mantissa: i128 = 0;
    for digit in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(digit.checked_sub(b'0')?))?;
    }
    if negative {
        if mantissa == 0 {
            return None;
        }
        mantissa = mantissa.checked_neg()?;
    }
    Decimal::try_from_i128_with_scale(mantissa, u32::try_from(frac_part.len()).ok()?).ok()
}

#[cfg(test)]
#[path = "num_tests.rs"]
mod tests;
