//! Exact arithmetic against the reference (checked i128) arithmetic.

use super::*;
use proptest::prelude::*;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

/// The arithmetic before the unchecked fast paths (checked i128 products only).
fn reference(a: Decimal, b: Decimal, op: fn(i128, i128) -> Option<i128>) -> Option<Decimal> {
    let plain = |(ma, sa): (i128, u32), (mb, sb): (i128, u32)| {
        let scale = sa.max(sb);
        let ma = ma.checked_mul(pow10(scale - sa)?)?;
        let mb = mb.checked_mul(pow10(scale - sb)?)?;
        build(op(ma, mb)?, scale)
    };
    plain((a.mantissa(), a.scale()), (b.mantissa(), b.scale())).or_else(|| plain(trimmed(a), trimmed(b)))
}

fn reference_mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    let fast = a.mantissa().checked_mul(b.mantissa()).and_then(|m| build(m, a.scale() + b.scale()));
    fast.or_else(|| {
        let (ma, sa) = trimmed(a);
        let (mb, sb) = trimmed(b);
        build(ma.checked_mul(mb)?, sa + sb)
    })
}

#[test]
fn fast_paths_agree_with_checked_arithmetic() {
    let values = [
        "0",
        "-0",
        "0.000",
        "1",
        "-1.000",
        "0.001",
        "100.25",
        "-12345.678",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808.5",
        "79228162514264337593543950335",
        "-7.9228162514264337593543950335",
        "0.0000000000000000000000000001",
        "99999999999999999999.99999999",
        "1000000000.000000001",
        "123456789012.3456789",
        "0.000000001",
    ];
    let same = |x: Option<Decimal>, y: Option<Decimal>| {
        x.map(|v| (v.mantissa(), v.scale())) == y.map(|v| (v.mantissa(), v.scale()))
    };
    for a in values.map(d) {
        for b in values.map(d) {
            assert!(same(add(a, b), reference(a, b, i128::checked_add)), "add {a} {b}");
            assert!(same(sub(a, b), reference(a, b, i128::checked_sub)), "sub {a} {b}");
            assert!(same(mul(a, b), reference_mul(a, b)), "mul {a} {b}");
        }
    }
}

#[test]
fn accumulate_is_add_by_value() {
    let values = [
        "0",
        "-0",
        "0.000",
        "1",
        "-1.000",
        "0.001",
        "100.25",
        "79228162514264337593543950335",
        "0.0000000000000000000000000001",
    ];
    for a in values.map(d) {
        for b in values.map(d) {
            assert_eq!(accumulate(a, b), add(a, b), "{a} + {b}");
        }
    }
}

#[test]
fn cmp_min_max_agree_with_decimal() {
    let values = [
        "0",
        "-0",
        "0.000",
        "1",
        "1.0",
        "1.00",
        "-1",
        "-1.000",
        "0.001",
        "0.0010",
        "100.25",
        "100.250",
        "-100.25",
        "12345.678",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "7.9228162514264337593543950335",
        "0.0000000000000000000000000001",
        "99999999999999999999.99999999",
    ];
    for a in values.map(d) {
        for b in values.map(d) {
            assert_eq!(cmp(a, b), a.cmp(&b), "{a} vs {b}");
            let (lo, hi) = (min(a, b), max(a, b));
            let (want_lo, want_hi) = (a.min(b), a.max(b));
            assert_eq!((lo.mantissa(), lo.scale()), (want_lo.mantissa(), want_lo.scale()), "min {a} {b}");
            assert_eq!((hi.mantissa(), hi.scale()), (want_hi.mantissa(), want_hi.scale()), "max {a} {b}");
        }
    }
}

#[test]
fn add_is_exact_where_rust_decimal_rounds() {
    let big = d("1000000000000");
    let tiny = d("0.0000000000000000000001");
    assert_eq!(add(big, tiny), None, "needs 35 digits: must fail, not round");
    assert_eq!(add(d("0.1"), d("0.2")), Some(d("0.3")));
}

#[test]
fn mul_is_exact_or_none() {
    assert_eq!(mul(d("1.5"), d("2.25")), Some(d("3.375")));
    let a = d("12345678901234.12345678901234");
    assert_eq!(mul(a, a), None);
}

#[test]
fn parse_rejects_non_plain_forms() {
    for bad in ["", "1e5", "NaN", "inf", "+1", " 1", "1.", ".5", "1..2", "--1", "0x10", "1\u{0}"] {
        assert!(parse(bad).is_err(), "{bad:?} must be rejected");
    }
    assert_eq!(parse("-12.50"), Ok(d("-12.5")));
    assert_eq!(parse("0.1234567890123456789"), Err(ParseError::TooManyFractionDigits));
    assert!(matches!(parse("99999999999999999999999999999"), Err(ParseError::TooPrecise)));
}

#[test]
fn to_text_is_canonical() {
    for (value, text) in [
        (Decimal::new(0, 5), "0"),
        (Decimal::new(-0, 2), "0"),
        (Decimal::new(12, 5), "0.00012"),
        (Decimal::new(-12, 5), "-0.00012"),
        (Decimal::new(1200, 2), "12"),
        (Decimal::new(1230, 2), "12.3"),
        (Decimal::new(-1_000_000, 0), "-1000000"),
        (Decimal::new(5, 1), "0.5"),
        (Decimal::MAX, "79228162514264337593543950335"),
        (Decimal::from_i128_with_scale(1, 28), "0.0000000000000000000000000001"),
    ] {
        assert_eq!(to_text(value), text);
    }
}

#[test]
fn floor_to_step_rounds_down() {
    assert_eq!(floor_to_step(d("0.0015"), d("0.001")), Some(d("0.001")));
    assert_eq!(floor_to_step(d("3"), d("0.5")), Some(d("3")));
    assert!(is_multiple(d("0.003"), d("0.001")));
    assert!(!is_multiple(d("0.0031"), d("0.001")));
}

proptest! {
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_122),
        ..ProptestConfig::default()
    })]

    #[test]
    fn add_sub_roundtrip(a in -1_000_000_000_000i64..1_000_000_000_000, sa in 0u32..12,
                         b in -1_000_000_000_000i64..1_000_000_000_000, sb in 0u32..12) {
        let x = Decimal::new(a, sa);
        let y = Decimal::new(b, sb);
        let sum = add(x, y);
        prop_assert!(sum.is_some());
        if let Some(s) = sum {
            prop_assert_eq!(sub(s, y), Some(x));
            prop_assert_eq!(s, x + y);
        }
    }

    #[test]
    fn add_sub_mul_cmp_match_reference(a in any::<i64>(), sa in 0u32..29, b in any::<i64>(), sb in 0u32..29, wide in 0u32..3) {
        // Mantissas below and above 2^63 and scale gaps on both sides of 10^9.
        let x = Decimal::from_i128_with_scale(i128::from(a) << (wide * 16), sa);
        let y = Decimal::new(b, sb);
        let same = |p: Option<Decimal>, q: Option<Decimal>| p.map(|v| v.serialize()) == q.map(|v| v.serialize());
        prop_assert!(same(add(x, y), reference(x, y, i128::checked_add)));
        prop_assert!(same(sub(x, y), reference(x, y, i128::checked_sub)));
        prop_assert!(same(sub(y, x), reference(y, x, i128::checked_sub)));
        prop_assert!(same(mul(x, y), reference_mul(x, y)));
        prop_assert_eq!(cmp(x, y), x.cmp(&y));
    }

    #[test]
    fn is_multiple_matches_checked_rem(a in any::<i64>(), sa in 0u32..29, b in 1i64..1_000_000, sb in 0u32..29, wide in 0u32..3) {
        let value = Decimal::from_i128_with_scale(i128::from(a) << (wide * 16), sa);
        let step = Decimal::new(b, sb);
        let expected = value.checked_rem(step).is_some_and(|rem| rem.is_zero());
        prop_assert_eq!(is_multiple(value, step), expected);
        let multiple = Decimal::new(a % 1_000_000 * b, sb);
        prop_assert!(is_multiple(multiple, step));
    }

    #[test]
    fn mul_matches_when_representable(a in -10_000_000i64..10_000_000, sa in 0u32..8,
                                      b in -10_000_000i64..10_000_000, sb in 0u32..8) {
        let x = Decimal::new(a, sa);
        let y = Decimal::new(b, sb);
        prop_assert_eq!(mul(x, y), Some(x * y));
    }

    #[test]
    fn to_text_matches_display_wide(hi in any::<u32>(), lo in any::<u64>(), negative in any::<bool>(), s in 0u32..=28) {
        let x = Decimal::from_parts(lo as u32, (lo >> 32) as u32, hi, negative, s);
        let expected = if x.is_zero() { "0".to_owned() } else { x.normalize().to_string() };
        prop_assert_eq!(to_text(x), expected);
    }

    #[test]
    fn to_text_matches_display(m in any::<i64>(), s in 0u32..28) {
        let x = Decimal::new(m, s);
        let expected = if x.is_zero() { "0".to_owned() } else { x.normalize().to_string() };
        prop_assert_eq!(to_text(x), expected);
    }

    #[test]
    fn parse_is_from_str_exact(negative in any::<bool>(), int in "[0-9]{1,30}", frac in proptest::option::of("[0-9]{1,18}")) {
        let text = format!("{}{int}{}", if negative { "-" } else { "" }, frac.map(|f| format!(".{f}")).unwrap_or_default());
        let ours = parse(&text).map(|d| d.serialize());
        let exact = Decimal::from_str_exact(&text).map(|d| d.serialize()).map_err(|_| ParseError::TooPrecise);
        if ours.is_ok() {
            prop_assert_eq!(ours, exact, "{}", text);
        }
    }

    #[test]
    fn parse_plain_is_parse_checked(text in "-?[0-9.]{0,3}[0-9]{0,27}(\\.[0-9]{0,20})?[.-]?") {
        let plain = parse_plain(&text).map(|d| d.serialize());
        if plain.is_some() {
            prop_assert_eq!(plain, parse_checked(&text).ok().map(|d| d.serialize()), "{}", text);
        }
        prop_assert_eq!(parse(&text).map(|d| d.serialize()), parse_checked(&text).map(|d| d.serialize()), "{}", text);
    }

    #[test]
    fn parse_short_is_from_str_exact(negative in any::<bool>(), int in "[0-9]{1,14}", frac in "[0-9]{0,14}") {
        let text = format!("{}{int}{}{frac}", if negative { "-" } else { "" }, if frac.is_empty() { "" } else { "." });
        let exact = Decimal::from_str_exact(&text).map(|d| d.serialize()).ok();
        prop_assert_eq!(parse(&text).map(|d| d.serialize()).ok(), exact, "{}", text);
    }

    #[test]
    fn parse_text_roundtrip(m in -1_000_000_000_000_000i64..1_000_000_000_000_000, s in 0u32..18) {
        let x = Decimal::new(m, s);
        let text = to_text(x);
        prop_assert_eq!(parse(&text), Ok(x.normalize()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123),
        ..ProptestConfig::default()
    })]

    #[test]
    fn neg_is_normalized_negation(m in any::<i64>(), s in 0u32..=28, wide in 0u32..3, tens in 0u32..4, negative in any::<bool>()) {
        // Trailing zeros, zeros of every scale, "-0" and mantissas past 2^63.
        let mantissa = (i128::from(m) << (wide * 16)) / 10_i128.pow(tens) * 10_i128.pow(tens);
        let mut x = Decimal::from_i128_with_scale(mantissa, s);
        if negative && x.is_zero() {
            x.set_sign_negative(true);
        }
        let mut want = x;
        want.set_sign_negative(!x.is_sign_negative());
        prop_assert_eq!(neg(x).serialize(), want.normalize().serialize());
    }
}
