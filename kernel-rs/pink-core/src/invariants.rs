//! The kernel's invariants, checked after restore and by every test, the
//! property suites and the model checker after every step.

use rust_decimal::Decimal;

use crate::kernel::Kernel;
use crate::model::{is_free, is_waiting, order_number, OrderLoc};
use crate::num;
use crate::pb::{OrderPurpose, OrderStatus, SlotState};

fn need(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

impl Kernel {
    pub fn check_invariants(&self) -> Result<(), String> {
        let a = &self.account;
        let overflow = || "conservation sum overflows".to_owned();
        let expected = num::add(a.initial_capital, a.realized_pnl)
            .and_then(|v| num::sub(v, a.fees))
            .and_then(|v| num::add(v, a.funding))
            .and_then(|v| num::add(v, a.adjustments))
            .ok_or_else(overflow)?;
        need(a.capital == expected, || {
            format!("capital {} != initial + realized - fees + funding + adjustments = {expected}", a.capital)
        })?;
        let mut active = 0_u32;
        let mut live_orders = 0_usize;
        for slot in &self.slots {
            let id = slot.id;
            let b = &slot.book;
            if !is_free(slot.state) {
                active = active.saturating_add(1);
            }
            need(b.position >= Decimal::ZERO, || format!("slot {id}: negative position {}", b.position))?;
            need(b.cost_basis >= Decimal::ZERO, || format!("slot {id}: negative cost basis"))?;
            need(b.position <= b.entry_quantity, || {
                format!("slot {id}: position {} above entry fills {}", b.position, b.entry_quantity)
            })?;
            let open = num::sub(b.entry_quantity, b.exit_quantity).ok_or_else(overflow)?;
            need(b.position == open, || {
                format!("slot {id}: position {} != entry {} - exit {}", b.position, b.entry_quantity, b.exit_quantity)
            })?;
            need(b.position.is_zero() == b.cost_basis.is_zero(), || {
                format!("slot {id}: cost basis {} with position {}", b.cost_basis, b.position)
            })?;
            let waiting = is_waiting(slot.state);
            need(waiting == slot.order.is_some(), || {
                format!("slot {id}: {:?} with order {:?}", slot.state, slot.order.is_some())
            })?;
            need(waiting == slot.deadline.is_some(), || {
                format!("slot {id}: {:?} with deadline {:?}", slot.state, slot.deadline)
            })?;
            match slot.state {
                SlotState::Idle => {
                    need(b.position.is_zero() && slot.trade_id.is_none(), || format!("slot {id}: IDLE with a trade"))?;
                }
                SlotState::Closed => {
                    need(b.position.is_zero() && slot.trade_id.is_some(), || {
                        format!("slot {id}: CLOSED with position")
                    })?;
                }
                SlotState::PositionOpen => {
                    need(b.position > Decimal::ZERO && slot.trade_id.is_some(), || {
                        format!("slot {id}: POSITION_OPEN without position")
                    })?;
                }
                SlotState::Unspecified => return Err(format!("slot {id}: unspecified state")),
                _ => need(slot.trade_id.is_some(), || format!("slot {id}: working without a trade"))?,
            }
            if let Some(order) = &slot.order {
                live_orders = live_orders.saturating_add(1);
                let entry_state = matches!(
                    slot.state,
                    SlotState::EntryPending | SlotState::EntryWorking | SlotState::EntryCancelling
                );
                let expected_purpose = if entry_state { OrderPurpose::Entry } else { OrderPurpose::Exit };
                need(order.purpose == expected_purpose, || {
                    format!("slot {id}: {:?} order in {:?}", order.purpose, slot.state)
                })?;
                need(order.fills.filled >= Decimal::ZERO && order.fills.filled <= order.quantity, || {
                    format!("slot {id}: order filled {} of {}", order.fills.filled, order.quantity)
                })?;
                need(!order.is_complete(), || format!("slot {id}: a complete order is still live"))?;
                if entry_state {
                    need(b.position == order.fills.filled, || {
                        format!("slot {id}: entry position {} != entry order fills {}", b.position, order.fills.filled)
                    })?;
                } else {
                    need(b.position > Decimal::ZERO, || format!("slot {id}: exit working with no position"))?;
                }
                let cancelling = matches!(slot.state, SlotState::EntryCancelling | SlotState::ExitCancelling);
                need(cancelling == order.cancel_requested, || {
                    format!("slot {id}: {:?} with cancel_requested {}", slot.state, order.cancel_requested)
                })?;
                if matches!(slot.state, SlotState::EntryPending | SlotState::ExitPending) {
                    need(order.status == OrderStatus::PendingNew, || {
                        format!("slot {id}: pending with status {:?}", order.status)
                    })?;
                }
                let cid = order.client_order_id(&self.cfg.kernel_id);
                need(order_number(&self.cfg.kernel_id, &cid) == Some(order.number), || {
                    format!("slot {id}: order {cid} is not number {}", order.number)
                })?;
                need(self.orders.get(&order.number) == Some(&OrderLoc::Live(id)), || {
                    format!("slot {id}: order {cid} not indexed")
                })?;
                if let Some(venue_id) = &order.venue_order_id {
                    need(self.venue_ids.get(venue_id) == Some(&order.number), || {
                        format!("slot {id}: venue id not indexed")
                    })?;
                }
            }
        }
        need(active == a.active_slots, || {
            format!("account counts {} active slots, there are {active}", a.active_slots)
        })?;
        for (offset, retired) in self.retired.iter().enumerate() {
            let number = self.retired_base.saturating_add(offset as u64);
            need(self.orders.get(&retired.number) == Some(&OrderLoc::Retired(number)), || {
                format!("retired order {} not indexed", retired.client_order_id(&self.cfg.kernel_id))
            })?;
            if let Some(venue_id) = &retired.venue_order_id {
                need(self.venue_ids.get(venue_id) == Some(&retired.number), || {
                    format!("retired order {}: venue id not indexed", retired.client_order_id(&self.cfg.kernel_id))
                })?;
            }
        }
        need(self.orders.len() == live_orders.saturating_add(self.retired.len()), || {
            format!(
                "order index holds {} ids for {} live and {} retired orders",
                self.orders.len(),
                live_orders,
                self.retired.len()
            )
        })?;
        need(self.retired.len() <= self.cfg.retired_order_memory as usize, || {
            "retired ring over its bound".to_owned()
        })?;
        Ok(())
    }
}
