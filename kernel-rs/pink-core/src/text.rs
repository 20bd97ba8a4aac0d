//! Bounded, charset-checked text: ids, symbols, labels, reasons.
//!
//! Every string that enters the kernel is checked here, so nothing that
//! reaches a log line, a table name, a client order id or a snapshot can hold
//! a NUL byte, a control character or an unbounded length.

use std::sync::Arc;

/// Shared immutable text (cheap to clone into outputs).
pub type Id = Arc<str>;

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

fn is_symbol_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
}

fn is_label_key_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
}

/// Printable: no control characters (this excludes NUL).
fn is_printable(c: char) -> bool {
    !c.is_control()
}

fn check(value: &str, min: usize, max: usize, ok: impl Fn(char) -> bool, what: &str) -> Result<(), String> {
    let ascii = value.is_ascii();
    let len = if ascii { value.len() } else { value.chars().count() };
    if len < min {
        return Err(if min == 1 { "is required".to_owned() } else { format!("must be at least {min} characters") });
    }
    if len > max {
        return Err(format!("is longer than {max} characters"));
    }
    // ASCII text is its bytes: no UTF-8 decoding needed to find a bad character.
    let bad = if ascii { value.bytes().map(char::from).find(|c| !ok(*c)) } else { value.chars().find(|c| !ok(*c)) };
    if let Some(bad) = bad {
        return Err(format!("contains {bad:?}; allowed: {what}"));
    }
    Ok(())
}

/// Caller and venue ids: 1-64 of `[A-Za-z0-9_.:-]`.
pub fn id(value: &str) -> Result<Id, String> {
    check(value, 1, 64, is_id_char, "A-Z a-z 0-9 _ . : -")?;
    Ok(Arc::from(value))
}

/// Instrument symbols: 1-32 of `[A-Z0-9_-]`.
pub fn symbol(value: &str) -> Result<Id, String> {
    check(value, 1, 32, is_symbol_char, "A-Z 0-9 _ -")?;
    Ok(Arc::from(value))
}

/// Kernel id: 1-12 of `[a-z0-9]` (it prefixes BingX client order ids, which
/// the exchange lower-cases and limits to 40 characters).
pub fn kernel_id(value: &str) -> Result<Id, String> {
    check(value, 1, 12, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), "a-z 0-9")?;
    Ok(Arc::from(value))
}

/// Label keys: 1-32 of `[a-z0-9_.-]`.
pub fn label_key(value: &str) -> Result<(), String> {
    check(value, 1, 32, is_label_key_char, "a-z 0-9 _ . -")
}

/// Free text (label values, reasons): printable, at most `max` characters.
pub fn free_text(value: &str, max: usize) -> Result<(), String> {
    check(value, 0, max, is_printable, "printable characters")
}

/// Settlement asset: 1-16 of `[A-Z0-9]`.
pub fn asset(value: &str) -> Result<Id, String> {
    check_asset(value)?;
    Ok(Arc::from(value))
}

/// `asset` without building the id.
pub fn check_asset(value: &str) -> Result<(), String> {
    check(value, 1, 16, |c| c.is_ascii_uppercase() || c.is_ascii_digit(), "A-Z 0-9")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_charset_checked() {
        assert!(id("abc-1_2.3:4").is_ok());
        assert!(id("").is_err());
        assert!(id(&"x".repeat(65)).is_err());
        assert!(id("a\u{0}b").is_err(), "NUL byte must be rejected");
        assert!(id("a b").is_err());
        assert!(symbol("BTC-USDT").is_ok());
        assert!(symbol("btc-usdt").is_err());
        assert!(kernel_id("pk1").is_ok());
        assert!(kernel_id("PK1").is_err());
        assert!(free_text("ok text", 8).is_ok());
        assert!(free_text("bad\u{7}", 8).is_err());
        assert!(free_text("\u{0}", 8).is_err());
    }
}
