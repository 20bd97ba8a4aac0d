//! Client order ids as the outcome writer names them.

use super::outcome::{copy_short, decimal};
use crate::text::Id;

/// Client order ids, "<kernel_id>-<n>", as the outcomes name them: the text
/// of the last number is kept (an outcome names its order several times,
/// the next outcomes usually the same one, and a new order's number is
/// usually the last one plus one: only its last digit changes). Reused
/// across outcomes; not state.
#[derive(Clone, Debug, Default)]
pub(crate) struct OrderIds {
    /// The kernel id `text` was formatted with (`None`: nothing kept).
    kernel_id: Option<Id>,
    number: u64,
    /// The text of `number`; `len` 0: none yet.
    len: usize,
    text: Text64,
    /// The text when the kernel id is too long for `text` (a validated
    /// config's id never is).
    spill: String,
}

/// A 64-byte buffer (arrays this long have no `Default`).
#[derive(Clone, Debug)]
struct Text64([u8; 64]);

impl Default for Text64 {
    fn default() -> Text64 {
        Text64([0; 64])
    }
}

/// Longest kernel id whose order ids fit `OrderIds::text` (with '-' and 20 digits).
const SHORT_KERNEL_ID: usize = 43;

/// `OrderIds` naming the orders of one kernel (`OrderIds::of`).
pub(super) struct KernelOrderIds<'a> {
    ids: &'a mut OrderIds,
    kernel_id: &'a str,
}

impl OrderIds {
    /// The ids of `kernel_id`'s orders. The text kept from earlier outcomes
    /// stays only if it is of the same kernel (the same `Arc`: one pointer
    /// compare per outcome).
    #[inline(always)]
    pub(super) fn of<'a>(&'a mut self, kernel_id: &'a Id) -> KernelOrderIds<'a> {
        if !self.kernel_id.as_ref().is_some_and(|kept| std::sync::Arc::ptr_eq(kept, kernel_id)) {
            self.kernel_id = Some(kernel_id.clone());
            self.len = 0;
            self.spill.clear();
        }
        KernelOrderIds { ids: self, kernel_id }
    }
}

impl KernelOrderIds<'_> {
    /// The client order id of order `number`.
    #[inline(always)]
    pub(super) fn text(&mut self, number: u64) -> &[u8] {
        let ids = &mut *self.ids;
        if ids.len == 0 || number != ids.number {
            ids.format(self.kernel_id, number);
        }
        match ids.text.0.get(..ids.len) {
            Some(text) if ids.spill.is_empty() => text,
            _ => ids.spill.as_bytes(),
        }
    }
}

impl OrderIds {
    /// Keeps the text of order `number` of the kernel `kernel_id` (the kept
    /// kernel id: `OrderIds::of` starts over for another).
    #[inline(never)]
    fn format(&mut self, kernel_id: &str, number: u64) {
        let prefix = kernel_id.len();
        if prefix > SHORT_KERNEL_ID {
            self.spill = crate::model::order_id_text(kernel_id, number);
            (self.number, self.len) = (number, self.spill.len());
            return;
        }
        let text = &mut self.text.0;
        let end = self.len;
        // The next number: only the last digit changes unless it is a 9.
        if end > prefix.wrapping_add(1) && self.number.checked_add(1) == Some(number) {
            if let Some(last @ b'0'..=b'8') = text.get_mut(end.wrapping_sub(1)) {
                *last = last.wrapping_add(1);
                self.number = number;
                return;
            }
        }
        if let Some(to) = text.get_mut(..prefix) {
            copy_short(to, kernel_id.as_bytes());
        }
        if let Some(dash) = text.get_mut(prefix) {
            *dash = b'-';
        }
        let mut digits = [b'0'; 64];
        let digits = decimal(&mut digits, number);
        let start = prefix.wrapping_add(1);
        let end = start.wrapping_add(digits.len());
        if let Some(to) = text.get_mut(start..end) {
            copy_short(to, digits);
        }
        (self.number, self.len) = (number, end);
    }
}

#[cfg(test)]
mod tests {
    use super::OrderIds;
    use crate::text::Id;

    proptest::proptest! {
        /// The kept text (bumped, rewritten, or spilled for a long kernel
        /// id) is always the formatted id, whatever came before.
        #[test]
        fn kept_order_ids_are_the_formatted_ids(
            steps in proptest::collection::vec((0usize..4, proptest::prop_oneof![
                0u64..30,
                95u64..1_005,
                99_999_990u64..100_000_010,
                proptest::prelude::any::<u64>(),
            ]), 1..40),
        ) {
            let kernels: [Id; 4] = [Id::from("tk"), Id::from("tk"), Id::from("k".repeat(44)), Id::from("abcdefghijkl")];
            let mut ids = OrderIds::default();
            let mut last = None;
            for (kernel, number) in steps {
                // Runs of consecutive numbers take the bump path.
                let number = match last {
                    Some(prev) if number % 3 == 0 => u64::checked_add(prev, 1).unwrap_or(number),
                    _ => number,
                };
                let Some(kernel_id) = kernels.get(kernel) else { continue };
                let expected = crate::model::order_id_text(kernel_id, number);
                let mut named = ids.of(kernel_id);
                proptest::prop_assert_eq!(named.text(number), expected.as_bytes());
                last = Some(number);
            }
        }
    }
}
