//! Snapshot and restore: the whole state, dedup memory included, and nothing
//! invalid is ever adopted.

use prost::Message;

use pink_core::pb::{self, DiagnosticCode as C, Side};
use pink_core::testkit::{d, Driver};
use pink_core::Kernel;

fn busy() -> Driver {
    let mut drv = Driver::new(3);
    assert!(drv.enter(0, Side::Long, "1").accepted());
    assert!(drv.fill_all(0, "100", "0.01").accepted());
    assert!(drv.enter_limit(1, Side::Short, "2", "101", &["0.5", "0.5"]).accepted());
    assert!(drv.ack(1).accepted());
    let cid = drv.order_id(1);
    assert!(drv.fill_order(&cid, "0.5", "101", "0.02", "0.5", false).accepted());
    assert!(drv.mark("BTC-USDT", "99.5").accepted());
    drv
}

#[test]
fn snapshot_round_trip_preserves_the_state_hash() {
    let drv = busy();
    let restored = Kernel::restore_bytes(&drv.kernel.snapshot_bytes()).expect("valid snapshot");
    assert_eq!(restored.state_hash(), drv.kernel.state_hash());
    assert_eq!(restored.snapshot_bytes(), drv.kernel.snapshot_bytes());
    restored.check_invariants().expect("invariants");
}

/// [I10, I14, I9] the dedup memory and the id counters survive a restart.
#[test]
fn dedup_memory_and_counters_survive_restore() {
    let mut drv = busy();
    let cid = drv.order_id(1);
    let event = drv.event(
        &cid,
        pb::VenueEventKind::PartialFill,
        Some(pink_core::input::Fill { quantity: d("0.5"), price: d("101"), fee: d("0") }),
        Some(d("1")),
    );
    assert!(drv.send(event.clone()).accepted());
    let mut restored =
        Driver::from_kernel(Kernel::restore_bytes(&drv.kernel.snapshot_bytes()).expect("valid"), drv.now);
    let out = restored.send(event);
    assert_eq!(out.code, C::DuplicateEvent, "a replayed event after restart is recognised");
    let out = restored.enter(2, Side::Long, "1");
    assert!(out.accepted());
    let new_trade = restored.kernel.slot(2).and_then(|s| s.trade_id.clone()).expect("trade");
    let old: Vec<_> = drv.kernel.slots().iter().filter_map(|s| s.trade_id.clone()).collect();
    assert!(!old.contains(&new_trade), "id counters continue, never reuse");
}

#[test]
fn state_hash_tracks_state() {
    let mut drv = busy();
    let before = drv.kernel.state_hash();
    assert_eq!(before.len(), 64);
    assert!(drv.timer().accepted());
    assert_ne!(drv.kernel.state_hash(), before, "the clock and sequence are state");
}

fn corrupt(f: impl FnOnce(&mut pb::KernelSnapshot)) -> Vec<pink_core::output::Violation> {
    let drv = busy();
    let mut message = drv.kernel.snapshot_message();
    f(&mut message);
    Kernel::restore_bytes(&message.encode_to_vec()).expect_err("corrupt snapshot must be refused")
}

/// [S11, M15, G8, G14, H9] a snapshot that breaks a field or an invariant is refused.
#[test]
fn corrupt_snapshots_are_refused() {
    let v = corrupt(|m| m.format_version = 9);
    assert_eq!(v[0].field, "format_version");
    let v = corrupt(|m| m.slots.pop().map(|_| ()).unwrap_or(()));
    assert!(v.iter().any(|v| v.field == "slots"), "{v:?}");
    let v = corrupt(|m| m.slots[0].position_size = Some(pb::Decimal { value: "0".into() }));
    assert!(v.iter().any(|v| v.description.contains("invariant")), "{v:?}");
    let v = corrupt(|m| m.slots[2].state = pb::SlotState::PositionOpen as i32);
    assert!(
        v.iter()
            .any(|v| v.description.contains("POSITION_OPEN without position") || v.description.contains("invariant")),
        "{v:?}"
    );
    let v = corrupt(|m| m.account.as_mut().map(|a| a.capital = Some(pb::Decimal { value: "1".into() })).unwrap_or(()));
    assert!(v.iter().any(|v| v.description.contains("capital")), "{v:?}");
    let v = corrupt(|m| m.slots[1].slot_id = 0);
    assert!(v.iter().any(|v| v.field == "slots[1].slot_id"), "{v:?}");
    let v = corrupt(|m| m.slots[1].state = 77);
    assert!(v.iter().any(|v| v.field == "slots[1].state"), "{v:?}");
    let v = corrupt(|m| {
        let order = m.slots[1].active_order.clone();
        m.slots[2].active_order = order;
        m.slots[2].state = pb::SlotState::EntryWorking as i32;
    });
    assert!(!v.is_empty());
    assert!(Kernel::restore_bytes(&[0xff, 0x01]).is_err());
}

/// Orders are keyed by their number: a snapshot client order id that is not
/// "<kernel_id>-<number>" (canonical) names no order of this kernel and is
/// refused with its field.
#[test]
fn snapshot_order_ids_must_be_the_kernels_own() {
    let drv = busy();
    let kernel_id = drv.kernel.config().kernel_id.to_string();
    assert!(!drv.kernel.retired().is_empty(), "the fixture retires an order");
    for foreign in [format!("{kernel_id}-07"), format!("{kernel_id}-"), format!("x{kernel_id}-1"), "other-3".to_owned()]
    {
        let live = foreign.clone();
        let v = corrupt(move |m| m.slots[1].active_order.as_mut().map(|o| o.client_order_id = live).unwrap_or(()));
        assert!(v.iter().any(|v| v.field == "slots[1].active_order.client_order_id"), "{foreign}: {v:?}");
        let retired = foreign.clone();
        let v = corrupt(move |m| m.retired_orders[0].client_order_id = retired);
        assert!(v.iter().any(|v| v.field == "retired_orders[0].client_order_id"), "{foreign}: {v:?}");
    }
    // The ids it wrote parse back to the same orders.
    let restored = Kernel::restore_bytes(&drv.kernel.snapshot_bytes()).expect("valid snapshot");
    assert_eq!(restored.active_order_id(1), drv.kernel.active_order_id(1));
    assert_eq!(restored.retired(), drv.kernel.retired());
}
