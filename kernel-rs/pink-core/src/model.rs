//! The kernel's state, as plain data. Behaviour lives in the handlers; this
//! module only says what a slot, an order and the account are.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rust_decimal::Decimal;
use smallvec::SmallVec;

use crate::pb::{OrderPurpose, OrderSide, OrderStatus, Side, SlotState, TimeInForce};
use crate::text::Id;

/// Nanoseconds since the Unix epoch (inputs carry it; the kernel reads no clock).
pub type Nanos = i64;

/// Immutable construction parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub kernel_id: Id,
    pub slot_count: u32,
    pub settlement_asset: Id,
    pub initial_capital: Decimal,
    pub initial_control: Control,
    pub hard_max_leverage: Decimal,
    pub ack_timeout: Nanos,
    pub fill_timeout: Nanos,
    pub resting_check_interval: Nanos,
    pub cancel_timeout: Nanos,
    pub max_query_backoff: Nanos,
    pub retired_order_memory: u32,
    pub pnl_scale: u32,
}

/// Operator limits (see `pink.v1.ControlState`).
#[derive(Clone, Debug, PartialEq)]
pub struct Control {
    pub version: u64,
    pub trading_enabled: bool,
    pub reduce_only: bool,
    pub max_leverage: Decimal,
    pub max_notional_per_slot: Decimal,
    pub active_slot_limit: u32,
    pub allowed_symbols: BTreeSet<Id>,
    pub update_time: Option<Nanos>,
    pub updated_by: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instrument {
    pub symbol: Id,
    pub quantity_step: Decimal,
    pub price_tick: Decimal,
    pub min_quantity: Decimal,
}

/// Capital and its decomposition; every change goes through a ledger entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Account {
    pub initial_capital: Decimal,
    pub capital: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub funding: Decimal,
    pub adjustments: Decimal,
    pub ledger_sequence: u64,
    pub trades_closed: u64,
    pub active_slots: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKind {
    Market,
    Limit { price: Decimal, tif: TimeInForce },
}

impl OrderKind {
    pub fn limit_price(&self) -> Option<Decimal> {
        match self {
            OrderKind::Market => None,
            OrderKind::Limit { price, .. } => Some(*price),
        }
    }
}

/// Fill bookkeeping of one order (copyable so handlers can compute the new
/// values completely before committing any of them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OrderFills {
    pub filled: Decimal,
    pub notional: Decimal,
    pub fees: Decimal,
    /// Highest cumulative quantity the venue reported.
    pub venue_cumulative: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// The order's number, its key: its client order id is
    /// "<kernel_id>-<number>" (formatted where it leaves the kernel).
    pub number: u64,
    pub venue_order_id: Option<Id>,
    pub purpose: OrderPurpose,
    pub symbol: Id,
    pub side: OrderSide,
    pub kind: OrderKind,
    pub quantity: Decimal,
    pub reduce_only: bool,
    pub status: OrderStatus,
    pub fills: OrderFills,
    pub venue_final: bool,
    pub cancel_requested: bool,
    pub exit_leg: u32,
    pub intent_id: Id,
    /// Dedup memory: every venue event id applied to this order.
    pub seen_event_ids: EventIds,
    pub create_sequence: u64,
    pub create_time: Nanos,
    pub last_exchange_time: Option<Nanos>,
    pub queries_sent: u32,
    pub cancels_sent: u32,
}

impl Order {
    /// The client order id ("<kernel_id>-<number>").
    pub fn client_order_id(&self, kernel_id: &str) -> Id {
        Id::from(order_id_text(kernel_id, self.number))
    }

    /// Finished: the venue gave a final status and every fill it reported has
    /// been applied, or the whole quantity is filled.
    pub fn is_complete(&self) -> bool {
        crate::num::cmp(self.fills.filled, self.quantity).is_ge()
            || (self.venue_final && crate::num::cmp(self.fills.filled, self.fills.venue_cumulative).is_ge())
    }
}

/// Position bookkeeping of a slot's trade (copyable, see `OrderFills`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Book {
    pub position: Decimal,
    pub entry_quantity: Decimal,
    pub entry_notional: Decimal,
    pub cost_basis: Decimal,
    pub exit_quantity: Decimal,
    pub exit_notional: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub leg_filled: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub id: u32,
    pub version: u64,
    pub state: SlotState,
    pub trade_id: Option<Id>,
    pub symbol: Option<Id>,
    pub side: Side,
    pub leverage: Decimal,
    pub exit_leg_ratios: Vec<Decimal>,
    pub next_exit_leg: u32,
    pub book: Book,
    pub order: Option<Order>,
    pub deadline: Option<Nanos>,
    pub deadline_misses: u32,
    pub entry_intent_id: Option<Id>,
    pub last_intent_id: Option<Id>,
    pub open_time: Option<Nanos>,
    pub close_time: Option<Nanos>,
    pub update_time: Option<Nanos>,
    pub labels: Arc<BTreeMap<String, String>>,
}

impl Slot {
    pub fn new(id: u32) -> Slot {
        Slot {
            id,
            version: 0,
            state: SlotState::Idle,
            trade_id: None,
            symbol: None,
            side: Side::Unspecified,
            leverage: Decimal::ZERO,
            exit_leg_ratios: Vec::new(),
            next_exit_leg: 0,
            book: Book::default(),
            order: None,
            deadline: None,
            deadline_misses: 0,
            entry_intent_id: None,
            last_intent_id: None,
            open_time: None,
            close_time: None,
            update_time: None,
            labels: Arc::new(BTreeMap::new()),
        }
    }
}

/// A sorted set of venue event ids, inline for the usual handful (an order
/// typically sees an ack and a fill or two: three inline keep `Order` and
/// `Retired` 16 bytes smaller than four, and both are copied) and growing
/// without bound for orders that fill many times: ids are never evicted
/// while remembered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventIds(SmallVec<[Id; 3]>);

impl EventIds {
    /// The empty list (an order before its ack) and a single id (before its
    /// fill) are answered inline, comparing length and last byte first.
    #[inline(always)]
    pub fn contains(&self, id: &str) -> bool {
        match self.0.as_slice() {
            [] => false,
            [only] => only.len() == id.len() && only.as_bytes().last() == id.as_bytes().last() && **only == *id,
            ids => Self::holds(ids, id),
        }
    }

    /// Short lists are scanned, comparing lengths and last bytes first
    /// (counters make ids differ at the end); long ones are searched.
    #[inline(never)]
    fn holds(ids: &[Id], id: &str) -> bool {
        if ids.len() > 4 {
            return Self::search(ids, id).is_ok();
        }
        let last = id.as_bytes().last();
        ids.iter().any(|probe| probe.len() == id.len() && probe.as_bytes().last() == last && **probe == *id)
    }

    fn search(ids: &[Id], id: &str) -> Result<usize, usize> {
        ids.binary_search_by(|probe| (**probe).cmp(id))
    }

    /// Adds `id`; false if it was already there.
    #[inline(always)]
    pub fn insert(&mut self, id: Id) -> bool {
        // Ids usually arrive in increasing order: one comparison, then a
        // push (which grows the storage, out of line, only when it is full).
        if self.0.last().is_none_or(|last| **last < *id) {
            self.0.push(id);
            return true;
        }
        self.insert_sorted(id)
    }

    /// Adds `id`, which is not past the last id, where it sorts.
    #[inline(never)]
    fn insert_sorted(&mut self, id: Id) -> bool {
        match Self::search(&self.0, &id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Id> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Id> for EventIds {
    fn from_iter<T: IntoIterator<Item = Id>>(iter: T) -> EventIds {
        let mut ids = EventIds::default();
        for id in iter {
            ids.insert(id);
        }
        ids
    }
}

/// Id equality that skips the byte comparison when both are the same `Arc`:
/// inputs usually carry the kernel's own ids (`wire::Known`, the drivers).
#[inline(always)]
pub(crate) fn same_id(a: &Id, b: &Id) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// An id as a map lookup key (`key`): hashed as the id, equal by `same_id`,
/// so finding a map's own id skips the byte comparison (`Arc<str>`'s own
/// equality always compares bytes).
pub trait IdKey {
    fn id(&self) -> &Id;
}

impl IdKey for Id {
    #[inline(always)]
    fn id(&self) -> &Id {
        self
    }
}

impl<'a> Borrow<dyn IdKey + 'a> for Id {
    #[inline(always)]
    fn borrow(&self) -> &(dyn IdKey + 'a) {
        self
    }
}

impl Hash for dyn IdKey + '_ {
    #[inline(always)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl PartialEq for dyn IdKey + '_ {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        same_id(self.id(), other.id())
    }
}

impl Eq for dyn IdKey + '_ {}

/// `id` as a lookup key of an `Id`-keyed map (see `IdKey`).
#[inline(always)]
pub(crate) fn key(id: &Id) -> &dyn IdKey {
    id
}

/// Free slots accept ENTER; the others count against the active slot limit.
pub fn is_free(state: SlotState) -> bool {
    matches!(state, SlotState::Idle | SlotState::Closed | SlotState::Unspecified)
}

/// States that wait on the venue and therefore carry a deadline.
pub fn is_waiting(state: SlotState) -> bool {
    matches!(
        state,
        SlotState::EntryPending
            | SlotState::EntryWorking
            | SlotState::EntryCancelling
            | SlotState::ExitPending
            | SlotState::ExitWorking
            | SlotState::ExitCancelling
    )
}

/// A finished order kept so that repeats and late fills are recognised.
/// It keeps its order number: the id text is formatted only when reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Retired {
    pub number: u64,
    pub venue_order_id: Option<Id>,
    pub slot: u32,
    pub trade_id: Option<Id>,
    pub status: OrderStatus,
    pub seen_event_ids: EventIds,
    pub symbol: Id,
}

impl Retired {
    /// The client order id ("<kernel_id>-<number>").
    pub fn client_order_id(&self, kernel_id: &str) -> Id {
        Id::from(order_id_text(kernel_id, self.number))
    }
}

/// The retired orders, oldest first: a ring over a `Vec`, so that a full
/// ring forgets its oldest entry by overwriting it in place (`oldest_mut`).
/// Equality and iteration are by retirement order, never by buffer layout.
#[derive(Clone, Debug, Default)]
pub struct RetiredRing {
    buf: Vec<Retired>,
    /// Buffer index of the oldest entry (0 when empty).
    head: usize,
}

impl RetiredRing {
    pub fn with_capacity(capacity: usize) -> RetiredRing {
        RetiredRing { buf: Vec::with_capacity(capacity), head: 0 }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The entry `offset` places after the oldest.
    #[inline]
    pub fn get(&self, offset: usize) -> Option<&Retired> {
        let len = self.buf.len();
        if offset >= len {
            return None;
        }
        // Both below `len`: their sum wraps past the end at most once.
        let at = self.head.checked_add(offset)?;
        self.buf.get(if at >= len { at.wrapping_sub(len) } else { at })
    }

    pub fn front(&self) -> Option<&Retired> {
        self.get(0)
    }

    pub fn back(&self) -> Option<&Retired> {
        self.get(self.buf.len().checked_sub(1)?)
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Retired> + '_ {
        let (newer, older) = self.buf.split_at(self.head.min(self.buf.len()));
        older.iter().chain(newer.iter())
    }

    /// The oldest entry, to be overwritten by the newest before `turn`.
    #[inline]
    pub(crate) fn oldest_mut(&mut self) -> Option<&mut Retired> {
        self.buf.get_mut(self.head)
    }

    /// Makes the oldest entry the newest (after `oldest_mut` overwrote it).
    #[inline]
    pub(crate) fn turn(&mut self) {
        self.head = self.head.saturating_add(1);
        if self.head >= self.buf.len() {
            self.head = 0;
        }
    }

    /// The buffer in retirement order (head at 0), for the rare resizing
    /// paths: pushing to a ring that is not full, evicting several.
    pub(crate) fn ordered(&mut self) -> &mut Vec<Retired> {
        if self.head != 0 {
            let head = self.head.min(self.buf.len());
            self.buf.rotate_left(head);
            self.head = 0;
        }
        &mut self.buf
    }

    pub fn push_back(&mut self, entry: Retired) {
        self.ordered().push(entry);
    }

    pub fn pop_front(&mut self) -> Option<Retired> {
        let buf = self.ordered();
        if buf.is_empty() {
            None
        } else {
            Some(buf.remove(0))
        }
    }
}

impl PartialEq for RetiredRing {
    fn eq(&self, other: &RetiredRing) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// The client order id of order `number`: "<kernel_id>-<number>", as the
/// kernel formats the ids it allocates.
pub fn order_id_text(kernel_id: &str, number: u64) -> String {
    let mut text = String::with_capacity(kernel_id.len().saturating_add(21));
    text.push_str(kernel_id);
    text.push('-');
    text.push_str(itoa::Buffer::new().format(number));
    text
}

/// The number of a client order id this kernel formats ("<kernel_id>-" and
/// the canonical decimal of a u64: no sign, no leading zero); `None` for any
/// other text, which names no order of this kernel.
#[inline]
pub fn order_number(kernel_id: &str, cid: &str) -> Option<u64> {
    let digits = cid.as_bytes().strip_prefix(kernel_id.as_bytes())?.strip_prefix(b"-")?;
    let (&first, rest) = digits.split_first()?;
    let mut number = u64::from(first.wrapping_sub(b'0'));
    // Canonical: "0" alone, or a non-zero first digit; at most 20 digits.
    if number > 9 || (number == 0 && !rest.is_empty()) || rest.len() > 19 {
        return None;
    }
    for &byte in rest {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        number = number.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(number)
}

/// Where an order id points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderLoc {
    /// The active order of this slot.
    Live(u32),
    /// Retirement number (index into the retired ring plus its base).
    Retired(u64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    #[test]
    fn id_keys_find_equal_ids_in_other_arcs() {
        let mut map: FxHashMap<Id, u32> = FxHashMap::default();
        let own: Id = Arc::from("tk-17");
        map.insert(own.clone(), 7);
        let copy: Id = Arc::from("tk-17");
        assert!(!Arc::ptr_eq(&own, &copy));
        assert_eq!(map.get(key(&own)), Some(&7));
        assert_eq!(map.get(key(&copy)), Some(&7));
        assert_eq!(map.get(key(&Arc::from("tk-18"))), None);
        assert_eq!(map.remove(key(&copy)), Some(7));
        assert!(map.is_empty());
        assert!(same_id(&own, &copy) && same_id(&own, &own) && !same_id(&own, &Arc::from("tk-1")));
    }

    #[test]
    fn order_numbers_parse_only_canonical_ids_of_the_kernel() {
        for (cid, number) in
            [("k-1", Some(1)), ("k-0", Some(0)), ("k-10", Some(10)), ("k-18446744073709551615", Some(u64::MAX))]
        {
            assert_eq!(order_number("k", cid), number, "{cid}");
        }
        let foreign = [
            "k-07",
            "k-00",
            "k-",
            "k",
            "",
            "k-18446744073709551616",
            "k-99999999999999999999",
            "k-184467440737095516150",
            "k--1",
            "k-+1",
            "k-1a",
            "k-t1",
            "k1-1",
            "kk-1",
            "K-1",
            "k-1 ",
            " k-1",
            "k-١",
        ];
        for cid in foreign {
            assert_eq!(order_number("k", cid), None, "{cid}");
        }
        // Kernel ids that are prefixes of each other own disjoint ids.
        assert_eq!(order_number("k", "k1-5"), None);
        assert_eq!(order_number("k1", "k-15"), None);
        assert_eq!(order_number("k1", "k1-5"), Some(5));
    }

    proptest::proptest! {
        /// The inline short-list paths of `EventIds` agree with a sorted set.
        #[test]
        fn event_ids_behave_as_a_sorted_set(
            ops in proptest::collection::vec(("[a-e]{0,3}", proptest::prelude::any::<bool>()), 0..24),
        ) {
            let mut ids = EventIds::default();
            let mut model = BTreeSet::new();
            for (text, insert) in ops {
                proptest::prop_assert_eq!(ids.contains(&text), model.contains(&text));
                if insert {
                    // A fresh `Arc` each time: equality is by text, never by pointer.
                    proptest::prop_assert_eq!(ids.insert(Id::from(text.as_str())), model.insert(text.clone()));
                }
                proptest::prop_assert!(ids.iter().map(|id| &**id).eq(model.iter().map(String::as_str)));
                proptest::prop_assert_eq!(ids.len(), model.len());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn order_numbers_format_and_parse_both_ways(
            number in proptest::prelude::any::<u64>(),
            kernel in "[a-z0-9]{1,12}",
            other in "[a-z0-9]{1,12}",
            text in "[a-z0-9+-]{0,24}",
        ) {
            let cid = order_id_text(&kernel, number);
            proptest::prop_assert_eq!(order_number(&kernel, &cid), Some(number));
            // Any text that parses is exactly the id of its number.
            for candidate in [text.clone(), format!("{kernel}-{text}"), format!("{kernel}-0{number}"), cid.clone()] {
                if let Some(parsed) = order_number(&kernel, &candidate) {
                    proptest::prop_assert_eq!(order_id_text(&kernel, parsed), candidate);
                }
            }
            // Another kernel's ids are never this kernel's.
            if other != kernel {
                proptest::prop_assert_eq!(order_number(&other, &cid), None);
            }
        }
    }
}
