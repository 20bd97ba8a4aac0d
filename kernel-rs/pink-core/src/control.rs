//! Control updates: versioned, validated, and the kill switch cancels
//! working entries the moment it is thrown.

use crate::input::ControlChange;
use crate::kernel::{Ctx, Kernel};
use crate::num;
use crate::output::{Reject, Step, Violation};
use crate::pb::{DiagnosticCode, SlotState, TransitionCause};

impl Kernel {
    pub(crate) fn on_control(&mut self, cx: &mut Ctx<'_>, change: ControlChange) -> Step {
        if let Some(expected) = change.expected_version {
            if expected != self.control.version {
                return Err(Reject::new(
                    DiagnosticCode::VersionConflict,
                    format!("control is at version {}, the update expected {expected}", self.control.version),
                ));
            }
        }
        let mut violations = Vec::new();
        if let Some(leverage) = change.max_leverage {
            if leverage > self.cfg.hard_max_leverage {
                violations.push(Violation::new(
                    "control_update.max_leverage",
                    format!(
                        "{} is above the kernel's hard cap {}",
                        num::to_text(leverage),
                        num::to_text(self.cfg.hard_max_leverage)
                    ),
                ));
            }
        }
        if let Some(limit) = change.active_slot_limit {
            if limit > self.cfg.slot_count {
                violations.push(Violation::new(
                    "control_update.active_slot_limit",
                    format!("{limit} is above the slot count {}", self.cfg.slot_count),
                ));
            }
        }
        if !violations.is_empty() {
            return Err(Reject::invalid(violations));
        }
        let was_enabled = self.control.trading_enabled;
        let version = self.control.version.checked_add(1).ok_or_else(|| Reject::overflow("control version"))?;
        let control = &mut self.control;
        if let Some(value) = change.trading_enabled {
            control.trading_enabled = value;
        }
        if let Some(value) = change.reduce_only {
            control.reduce_only = value;
        }
        if let Some(value) = change.max_leverage {
            control.max_leverage = value;
        }
        if let Some(value) = change.max_notional_per_slot {
            control.max_notional_per_slot = value;
        }
        if let Some(value) = change.active_slot_limit {
            control.active_slot_limit = value;
        }
        if let Some(value) = change.allowed_symbols {
            control.allowed_symbols = value;
        }
        control.version = version;
        control.update_time = Some(cx.now);
        control.updated_by = change.actor;
        control.reason = change.reason;
        cx.out.control_changed = true;
        if was_enabled && !self.control.trading_enabled {
            for index in 0..self.slots.len() {
                let working_entry = self
                    .slots
                    .get(index)
                    .is_some_and(|s| matches!(s.state, SlotState::EntryPending | SlotState::EntryWorking));
                if working_entry {
                    self.request_cancel(cx, index, TransitionCause::KillSwitch);
                }
            }
        }
        Ok(())
    }
}
