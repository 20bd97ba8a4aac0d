//! What a fill changes: every new amount, planned (and possibly refused)
//! before anything is committed.
//!
//! `plan_general` is the reference: one exact `num` operation per amount.
//! `plan_small` gives the same plan from i64 mantissas unpacked once per
//! value (a fill reads its quantity, notional, fee and PnL several times);
//! it gives up (`None`) wherever `num` would leave its own i64 tier, and the
//! general plan runs instead, so values, scales and refusals are unchanged.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::input::Fill;
use crate::model::{Account, Book, OrderFills};
use crate::num;
use crate::pb::{OrderPurpose, Side};

/// Everything a fill changes, computed before anything is committed.
#[derive(Default)]
pub(crate) struct FillPlan {
    pub applied: Decimal,
    pub excess: Decimal,
    /// The fill covers the remaining quantity: `filled` reaches `quantity`.
    pub covers: bool,
    /// The venue reports more filled than is applied after this fill.
    pub gap: bool,
    pub filled: Decimal,
    pub order_notional: Decimal,
    pub order_fees: Decimal,
    pub venue_cumulative: Decimal,
    pub position: Decimal,
    pub cost_basis: Decimal,
    /// Entry or exit quantity and notional of the book (by the order's purpose).
    pub side_quantity: Decimal,
    pub side_notional: Decimal,
    pub book_fees: Decimal,
    /// Exit fills: gross realized PnL, and the book and account values it gives.
    pub gross: Option<Decimal>,
    pub book_realized: Decimal,
    pub leg_filled: Decimal,
    pub capital_after_pnl: Decimal,
    pub account_realized: Decimal,
    /// Capital and account fees after a non-zero fee.
    pub capital_after_fee: Decimal,
    pub account_fees: Decimal,
}

/// What a fill is applied to.
#[derive(Clone, Copy)]
pub(crate) struct FillOn<'a> {
    pub quantity: Decimal,
    pub fills: &'a OrderFills,
    pub purpose: OrderPurpose,
    pub book: &'a Book,
    pub side: Side,
    pub account: &'a Account,
    pub pnl_scale: u32,
}

/// The plan of a fill, or what cannot be computed exactly.
#[inline(always)]
pub(crate) fn plan_fill(
    plan: &mut FillPlan,
    on: FillOn<'_>,
    fill: &Fill,
    cumulative: Decimal,
) -> Result<(), &'static str> {
    if plan_small(plan, on, fill, cumulative).is_some() {
        return Ok(());
    }
    plan_fallback(plan, on, fill, cumulative)
}

#[cold]
#[inline(never)]
fn plan_fallback(plan: &mut FillPlan, on: FillOn<'_>, fill: &Fill, cumulative: Decimal) -> Result<(), &'static str> {
    *plan = FillPlan::default();
    plan_general(plan, on, fill, cumulative)
}

/// The reference plan: one exact `num` operation per amount.
pub(crate) fn plan_general(
    plan: &mut FillPlan,
    on: FillOn<'_>,
    fill: &Fill,
    cumulative: Decimal,
) -> Result<(), &'static str> {
    let FillOn { quantity, fills, purpose, book, side, account, pnl_scale } = on;
    // Running totals start at zero: `accumulate` skips the arithmetic then.
    let remaining =
        if fills.filled.is_zero() { quantity } else { num::sub(quantity, fills.filled).ok_or("remaining quantity")? };
    // `num::min(fill.quantity, remaining)`, and the excess (zero unless remaining is smaller).
    let versus = num::cmp(fill.quantity, remaining);
    let (applied, excess) = if versus.is_gt() {
        (remaining, num::sub(fill.quantity, remaining).ok_or("overfill")?)
    } else {
        (fill.quantity, Decimal::ZERO)
    };
    let notional = num::mul(applied, fill.price).ok_or("fill notional")?;
    let filled = num::accumulate(fills.filled, applied).ok_or("filled quantity")?;
    let order_notional = num::accumulate(fills.notional, notional).ok_or("order notional")?;
    let order_fees = num::accumulate(fills.fees, fill.fee).ok_or("order fees")?;
    let venue_cumulative = num::max(fills.venue_cumulative, cumulative);
    let mut capital = account.capital;
    plan.applied = applied;
    plan.excess = excess;
    plan.covers = versus.is_ge();
    plan.gap = num::cmp(venue_cumulative, filled).is_gt();
    plan.filled = filled;
    plan.order_notional = order_notional;
    plan.order_fees = order_fees;
    plan.venue_cumulative = venue_cumulative;
    if purpose == OrderPurpose::Entry {
        plan.position = num::accumulate(book.position, applied).ok_or("position")?;
        plan.side_quantity = num::accumulate(book.entry_quantity, applied).ok_or("entry quantity")?;
        plan.side_notional = num::accumulate(book.entry_notional, notional).ok_or("entry notional")?;
        plan.cost_basis = num::accumulate(book.cost_basis, notional).ok_or("cost basis")?;
    } else {
        // Release cost pro rata; the last exit releases exactly what is left,
        // so a trade's total PnL is exact whatever its legs.
        let closes = num::cmp(applied, book.position);
        let released = if closes.is_ge() {
            book.cost_basis
        } else {
            let scaled = num::mul(book.cost_basis, applied).ok_or("released cost")?;
            num::div_round(scaled, book.position, pnl_scale).ok_or("released cost")?
        };
        let gross = match side {
            Side::Short => num::sub(released, notional),
            _ => num::sub(notional, released),
        }
        .ok_or("realized PnL")?;
        plan.position =
            if closes.is_eq() { Decimal::ZERO } else { num::sub(book.position, applied).ok_or("position")? };
        // All of it released: nothing is left.
        plan.cost_basis =
            if closes.is_ge() { Decimal::ZERO } else { num::sub(book.cost_basis, released).ok_or("cost basis")? };
        plan.side_quantity = num::accumulate(book.exit_quantity, applied).ok_or("exit quantity")?;
        plan.side_notional = num::accumulate(book.exit_notional, notional).ok_or("exit notional")?;
        plan.book_realized = num::accumulate(book.realized_pnl, gross).ok_or("realized PnL")?;
        plan.leg_filled = num::accumulate(book.leg_filled, applied).ok_or("leg quantity")?;
        capital = num::add(capital, gross).ok_or("capital")?;
        plan.capital_after_pnl = capital;
        plan.account_realized = num::accumulate(account.realized_pnl, gross).ok_or("realized PnL")?;
        plan.gross = Some(gross);
    }
    plan.book_fees = num::accumulate(book.fees, fill.fee).ok_or("fees")?;
    plan.capital_after_fee = capital;
    if !fill.fee.is_zero() {
        plan.capital_after_fee = num::sub(capital, fill.fee).ok_or("capital")?;
        plan.account_fees = num::accumulate(account.fees, fill.fee).ok_or("fees")?;
    }
    Ok(())
}

/// A decimal whose mantissa fits an i64 (`num::small`), as mantissa and scale.
#[derive(Clone, Copy)]
struct Fx {
    m: i64,
    s: u32,
}

impl Fx {
    #[inline(always)]
    fn of(value: &Decimal) -> Option<Fx> {
        num::small(value).map(|(m, s)| Fx { m, s })
    }

    /// Both mantissas at the larger scale, as `num`'s i64 tier aligns them.
    #[inline(always)]
    fn align(self, other: Fx) -> Option<(i64, i64, u32)> {
        if self.s == other.s {
            return Some((self.m, other.m, self.s));
        }
        let scale = self.s.max(other.s);
        let up = |v: Fx| v.m.checked_mul(*num::POW10_I64.get(scale.checked_sub(v.s)? as usize)?);
        Some((up(self)?, up(other)?, scale))
    }

    #[inline(always)]
    fn add(self, other: Fx) -> Option<Fx> {
        let (a, b, s) = self.align(other)?;
        Some(Fx { m: a.checked_add(b)?, s })
    }

    #[inline(always)]
    fn sub(self, other: Fx) -> Option<Fx> {
        let (a, b, s) = self.align(other)?;
        Some(Fx { m: a.checked_sub(b)?, s })
    }

    /// `num::mul`'s i64 tier: the product at the summed scale, if a decimal holds it.
    #[inline(always)]
    fn mul(self, other: Fx) -> Option<Fx> {
        let s = self.s.checked_add(other.s).filter(|s| *s <= 28)?;
        Some(Fx { m: self.m.checked_mul(other.m)?, s })
    }

    #[inline(always)]
    fn cmp(self, other: Fx) -> Option<Ordering> {
        let (a, b, _) = self.align(other)?;
        Some(a.cmp(&b))
    }

    /// The decimal `num` packs from the same mantissa and scale.
    #[inline(always)]
    fn dec(self) -> Option<Decimal> {
        Decimal::try_new(self.m, self.s).ok()
    }
}

/// `num::accumulate(total, value)` where `fx` is `value`'s mantissa and
/// scale; the sum's mantissa and scale come along.
#[inline(always)]
fn accumulate(total: Decimal, value: Decimal, fx: Fx) -> Option<(Decimal, Fx)> {
    if total.is_zero() {
        return Some((value, fx));
    }
    let sum = Fx::of(&total)?.add(fx)?;
    Some((sum.dec()?, sum))
}

/// `plan_general` from i64 mantissas, or `None` (the plan may then be
/// partly written) where an amount leaves the i64 tier.
#[inline(always)]
fn plan_small(plan: &mut FillPlan, on: FillOn<'_>, fill: &Fill, cumulative: Decimal) -> Option<()> {
    let FillOn { quantity, fills, purpose, book, side, account, pnl_scale } = on;
    let quantity_fx = Fx::of(&fill.quantity)?;
    let unfilled = fills.filled.is_zero();
    let remaining_fx = if unfilled { Fx::of(&quantity)? } else { Fx::of(&quantity)?.sub(Fx::of(&fills.filled)?)? };
    let versus = quantity_fx.cmp(remaining_fx)?;
    let (applied, applied_fx, excess) = if versus.is_gt() {
        let remaining = if unfilled { quantity } else { remaining_fx.dec()? };
        (remaining, remaining_fx, quantity_fx.sub(remaining_fx)?.dec()?)
    } else {
        (fill.quantity, quantity_fx, Decimal::ZERO)
    };
    let notional_fx = applied_fx.mul(Fx::of(&fill.price)?)?;
    let notional = notional_fx.dec()?;
    let fee_fx = Fx::of(&fill.fee)?;
    let (filled, filled_fx) = accumulate(fills.filled, applied, applied_fx)?;
    let cumulative_fx = Fx::of(&cumulative)?;
    // `num::max(fills.venue_cumulative, cumulative)`: the first unless the second is greater.
    let (venue_cumulative, venue_fx) = if fills.venue_cumulative.is_zero() {
        if cumulative_fx.m > 0 {
            (cumulative, cumulative_fx)
        } else {
            (fills.venue_cumulative, Fx { m: 0, s: 0 })
        }
    } else {
        let ours = Fx::of(&fills.venue_cumulative)?;
        if ours.cmp(cumulative_fx)?.is_lt() {
            (cumulative, cumulative_fx)
        } else {
            (fills.venue_cumulative, ours)
        }
    };
    plan.gap = venue_fx.cmp(filled_fx)?.is_gt();
    plan.applied = applied;
    plan.excess = excess;
    plan.covers = versus.is_ge();
    plan.filled = filled;
    plan.order_notional = accumulate(fills.notional, notional, notional_fx)?.0;
    plan.order_fees = accumulate(fills.fees, fill.fee, fee_fx)?.0;
    plan.venue_cumulative = venue_cumulative;
    let mut capital = (account.capital, None);
    if purpose == OrderPurpose::Entry {
        plan.position = accumulate(book.position, applied, applied_fx)?.0;
        plan.side_quantity = accumulate(book.entry_quantity, applied, applied_fx)?.0;
        plan.side_notional = accumulate(book.entry_notional, notional, notional_fx)?.0;
        plan.cost_basis = accumulate(book.cost_basis, notional, notional_fx)?.0;
    } else {
        let position_fx = Fx::of(&book.position)?;
        let closes = applied_fx.cmp(position_fx)?;
        let released_fx = if closes.is_ge() {
            Fx::of(&book.cost_basis)?
        } else {
            let scaled = num::mul(book.cost_basis, applied)?;
            Fx::of(&num::div_round(scaled, book.position, pnl_scale)?)?
        };
        let gross_fx = match side {
            Side::Short => released_fx.sub(notional_fx)?,
            _ => notional_fx.sub(released_fx)?,
        };
        let gross = gross_fx.dec()?;
        plan.position = if closes.is_eq() { Decimal::ZERO } else { position_fx.sub(applied_fx)?.dec()? };
        plan.cost_basis =
            if closes.is_ge() { Decimal::ZERO } else { Fx::of(&book.cost_basis)?.sub(released_fx)?.dec()? };
        plan.side_quantity = accumulate(book.exit_quantity, applied, applied_fx)?.0;
        plan.side_notional = accumulate(book.exit_notional, notional, notional_fx)?.0;
        plan.book_realized = accumulate(book.realized_pnl, gross, gross_fx)?.0;
        plan.leg_filled = accumulate(book.leg_filled, applied, applied_fx)?.0;
        let after_fx = Fx::of(&account.capital)?.add(gross_fx)?;
        capital = (after_fx.dec()?, Some(after_fx));
        plan.capital_after_pnl = capital.0;
        plan.account_realized = accumulate(account.realized_pnl, gross, gross_fx)?.0;
        plan.gross = Some(gross);
    }
    plan.book_fees = accumulate(book.fees, fill.fee, fee_fx)?.0;
    plan.capital_after_fee = capital.0;
    if !fill.fee.is_zero() {
        let capital_fx = match capital.1 {
            Some(fx) => fx,
            None => Fx::of(&capital.0)?,
        };
        plan.capital_after_fee = capital_fx.sub(fee_fx)?.dec()?;
        plan.account_fees = accumulate(account.fees, fill.fee, fee_fx)?.0;
    }
    Some(())
}

#[cfg(test)]
#[path = "fill_tests.rs"]
mod tests;
