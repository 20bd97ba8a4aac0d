//! Trade id text, "<kernel_id>-t<n>" (order ids are numbers inside the
//! kernel, formatted where they leave it).

use std::sync::Arc;

use crate::text::Id;

/// Text of the last allocated trade id: it keeps its "<kernel_id>-t"
/// prefix, so a new id only appends digits.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdText {
    pub(crate) trade: NumberedText,
}

/// "<kernel_id><infix><number>" of the last id built, and that number (0: none).
#[derive(Clone, Debug, Default)]
pub(crate) struct NumberedText {
    text: String,
    number: u64,
}

/// "<kernel_id><infix><number>" built in `text`, whose prefix is reused: one
/// allocation (the Arc's) and no UTF-8 re-validation. The next number of the
/// last one usually only changes the last digit, which is replaced in place.
pub(crate) fn numbered_id(last: &mut NumberedText, kernel_id: &str, infix: &str, number: u64) -> Id {
    let prefix = kernel_id.len().saturating_add(infix.len());
    let text = &mut last.text;
    let follows = last.number != 0 && last.number.checked_add(1) == Some(number) && text.len() > prefix;
    if !(follows && bump_last_digit(text)) {
        if text.len() < prefix {
            text.clear();
            text.push_str(kernel_id);
            text.push_str(infix);
        }
        text.truncate(prefix);
        text.push_str(itoa::Buffer::new().format(number));
    }
    last.number = number;
    Arc::from(text.as_str())
}

/// Adds one to the number `text` ends with when that changes only its last
/// digit; false (and `text` unchanged) when it would carry.
fn bump_last_digit(text: &mut String) -> bool {
    // Bytes, not chars: the text is ASCII and a digit below 9 is one byte.
    match text.as_bytes().last() {
        Some(&digit @ b'0'..=b'8') => {
            text.pop();
            text.push(char::from(digit.saturating_add(1)));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_parse_back_to_their_numbers() {
        let mut last = NumberedText::default();
        let numbers = (1..=1_200).chain([9_999, 10_000, 10_001, 7, u64::MAX - 1, u64::MAX]);
        for number in numbers {
            let id = numbered_id(&mut last, "k1", "-", number);
            assert_eq!(&*id, crate::model::order_id_text("k1", number));
            assert_eq!(crate::model::order_number("k1", &id), Some(number));
        }
    }

    #[test]
    fn numbered_ids_match_their_formatted_text() {
        let mut last = NumberedText::default();
        let numbers = (1..=1_200).chain([5_000, 5_001, 9_999, 10_000, 10_001, 7, 8, u64::MAX - 1, u64::MAX]);
        for number in numbers {
            assert_eq!(&*numbered_id(&mut last, "k1", "-t", number), format!("k1-t{number}"));
        }
        // Another kernel id (a fresh text) starts over.
        let mut last = NumberedText::default();
        assert_eq!(&*numbered_id(&mut last, "kernel-b", "-", 19), "kernel-b-19");
        assert_eq!(&*numbered_id(&mut last, "kernel-b", "-", 20), "kernel-b-20");
        assert_eq!(&*numbered_id(&mut last, "kernel-b", "-", 21), "kernel-b-21");
    }

    proptest::proptest! {
        /// Runs of consecutive numbers (bumped in place) and jumps (rewritten)
        /// give the formatted text.
        #[test]
        fn numbered_ids_match_formatting(start in 1u64..u64::MAX - 64, run in 1u64..40, jump in 0u64..1_000_000) {
            let mut last = NumberedText::default();
            for number in (start..start + run).chain([start.saturating_add(run).saturating_add(jump)]) {
                proptest::prop_assert_eq!(&*numbered_id(&mut last, "k9", "-t", number), format!("k9-t{number}"));
            }
        }
    }
}
