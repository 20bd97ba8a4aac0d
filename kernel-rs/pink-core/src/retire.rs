//! Retiring finished orders: the slot settles and the order moves to the
//! bounded retired ring, which forgets its oldest entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::kernel::{shift, Ctx, Kernel};
use crate::model::{key, OrderLoc, Retired};
use crate::num;
use crate::pb::{OrderPurpose, Side, SlotState, TransitionCause};
use crate::text::Id;

impl Kernel {
    /// The order is finished: retire it and settle the slot's state.
    pub(crate) fn resolve_order(&mut self, cx: &mut Ctx<'_>, index: usize, cause: TransitionCause) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        // Worked on in place and emptied field by field: taking the whole
        // (large) order out costs two copies of it.
        let Some(order) = slot.order.as_mut() else { return };
        let number = order.number;
        let to = match order.purpose {
            OrderPurpose::Entry if slot.book.position.is_zero() => SlotState::Idle,
            OrderPurpose::Exit if slot.book.position.is_zero() => SlotState::Closed,
            _ => SlotState::PositionOpen,
        };
        if order.purpose == OrderPurpose::Exit
            && order.exit_leg == slot.next_exit_leg
            && num::cmp(order.fills.filled, order.quantity).is_ge()
        {
            slot.next_exit_leg = slot.next_exit_leg.saturating_add(1);
            slot.book.leg_filled = Decimal::ZERO;
        }
        if to == SlotState::Closed {
            slot.close_time = Some(cx.now);
        }
        let entry = Retired {
            number,
            venue_order_id: order.venue_order_id.take(),
            slot: slot.id,
            trade_id: slot.trade_id.clone(),
            status: order.status,
            seen_event_ids: std::mem::take(&mut order.seen_event_ids),
            symbol: order.symbol.clone(),
        };
        slot.order = None;
        self.retire(entry);
        if to == SlotState::Closed {
            self.account.trades_closed = self.account.trades_closed.saturating_add(1);
            cx.out.account_changed = true;
        }
        let Kernel { slots, account, cfg, .. } = self;
        let Some(slot) = slots.get_mut(index) else { return };
        // Recorded before an IDLE reset, so the transition still names its trade.
        shift(cx, cfg, account, slot, to, cause, Some(number));
        if to == SlotState::Idle {
            // The entry ended with no fill: the trade never existed.
            slot.trade_id = None;
            slot.symbol = None;
            slot.side = Side::Unspecified;
            slot.book = crate::model::Book::default();
            slot.exit_leg_ratios.clear();
            slot.labels = Arc::new(BTreeMap::new());
            slot.open_time = None;
        }
    }

    /// Files a finished order in the retired ring, forgetting the oldest
    /// retired orders beyond the ring's bound.
    #[inline(always)]
    fn retire(&mut self, entry: Retired) {
        let Kernel { orders, venue_ids, retired, retired_base, cfg, .. } = self;
        let memory = cfg.retired_order_memory as usize;
        // A full ring (the steady state): the oldest entry is forgotten and
        // overwritten where it lies and the ring turns by one: the same end
        // state as pop + push, without moving any entry.
        if retired.len() == memory {
            if let Some(oldest) = retired.oldest_mut() {
                forget(orders, venue_ids, oldest);
                *retired_base = retired_base.saturating_add(1);
                let number = retired_base.saturating_add((memory as u64).saturating_sub(1));
                if let Some(loc) = orders.get_mut(&entry.number) {
                    *loc = OrderLoc::Retired(number);
                }
                *oldest = entry;
                retired.turn();
                return;
            }
        }
        self.retire_slow(entry);
    }

    /// `retire` of a ring that is not full (or a memory of zero).
    #[inline(never)]
    fn retire_slow(&mut self, entry: Retired) {
        let Kernel { orders, venue_ids, retired, retired_base, cfg, .. } = self;
        // Evict first when the new order itself stays (the same end state as
        // evicting after the push): each old entry is popped and dropped
        // without the drain machinery.
        let memory = cfg.retired_order_memory as usize;
        if memory > 0 {
            while retired.len() >= memory {
                let Some(old) = retired.pop_front() else { break };
                forget(orders, venue_ids, &old);
                *retired_base = retired_base.saturating_add(1);
            }
        }
        let number = retired_base.saturating_add(retired.len() as u64);
        if let Some(loc) = orders.get_mut(&entry.number) {
            *loc = OrderLoc::Retired(number);
        }
        retired.push_back(entry);
        let excess = retired.len().saturating_sub(cfg.retired_order_memory as usize);
        if excess > 0 {
            for old in retired.iter().take(excess) {
                forget(orders, venue_ids, old);
            }
            // Dropped in place.
            retired.ordered().drain(..excess);
            *retired_base = retired_base.saturating_add(excess as u64);
        }
    }

    pub(crate) fn retired_at(&self, number: u64) -> Option<&Retired> {
        let offset = usize::try_from(number.checked_sub(self.retired_base)?).ok()?;
        self.retired.get(offset)
    }
}

/// Drops a retired order being evicted from the indexes: its number and
/// venue id no longer route events.
#[inline(always)]
fn forget(orders: &mut FxHashMap<u64, OrderLoc>, venue_ids: &mut FxHashMap<Id, u64>, old: &Retired) {
    orders.remove(&old.number);
    if let Some(venue_id) = &old.venue_order_id {
        venue_ids.remove(key(venue_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::OrderStatus;

    fn entry(number: u64) -> Retired {
        let id = |text: String| Id::from(text.as_str());
        Retired {
            number,
            venue_order_id: (number % 3 != 0).then(|| id(format!("v{number}"))),
            slot: 0,
            trade_id: Some(id(format!("t{number}"))),
            status: OrderStatus::Filled,
            seen_event_ids: [id(format!("e{number}"))].into_iter().collect(),
            symbol: id("BTC-USDT".into()),
        }
    }

    /// `entry(number)` indexed as a live order, as `resolve_order` finds it.
    fn live(kernel: &mut Kernel, number: u64) -> Retired {
        let entry = entry(number);
        kernel.orders.insert(number, OrderLoc::Live(0));
        if let Some(venue_id) = &entry.venue_order_id {
            kernel.venue_ids.insert(venue_id.clone(), number);
        }
        entry
    }

    proptest::proptest! {
        /// The full-ring path of `retire` leaves exactly the state of the
        /// general path, whatever the ring's fill, head and spare capacity.
        #[test]
        fn full_ring_retire_equals_the_general_path(
            memory in 16u32..24,
            before in 0u64..60,
            spare in 0usize..40,
            extra in 1u64..30,
        ) {
            let mut cfg = crate::testkit::config(1);
            cfg.retired_order_memory = memory;
            let mut kernel = Kernel::new(cfg);
            for number in 1..=before {
                let entry = live(&mut kernel, number);
                kernel.retire_slow(entry);
            }
            kernel.retired.ordered().reserve(spare);
            let mut general = kernel.clone();
            for number in before + 1..=before + extra {
                let entry = live(&mut kernel, number);
                kernel.retire(entry);
                let entry = live(&mut general, number);
                general.retire_slow(entry);
                proptest::prop_assert_eq!(&kernel, &general);
                proptest::prop_assert_eq!(kernel.retired_base, general.retired_base);
                proptest::prop_assert!(kernel.check_invariants().is_ok());
                // Offsets see the turned ring in retirement order.
                let ring = &kernel.retired;
                for (offset, entry) in ring.iter().enumerate() {
                    proptest::prop_assert_eq!(ring.get(offset), Some(entry));
                }
                proptest::prop_assert_eq!(ring.get(ring.len()), None);
                proptest::prop_assert_eq!(ring.back(), general.retired.iter().next_back());
                proptest::prop_assert_eq!(ring.front(), general.retired.iter().next());
            }
        }
    }
}
