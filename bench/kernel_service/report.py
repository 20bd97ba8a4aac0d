"""The run's figures as JSON (``bench/results/kernel_service.json``) and as readable lines.

Every target of ACCEPTANCE.md "Performance" that this benchmark covers is reported with the
measured ratio and whether it is met; none is asserted (a missed target is a figure, not a failure).
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

import grpc

import pink_kernel
from bench.kernel_service.live import LiveResults
from bench.kernel_service.replay import ReplayResults
from bench.kernel_service.settings import ISOLATED_INTENTS, ISOLATED_PAUSE, LATENCY_SLOTS, SLOTS_PER_CLIENT, Options
from bench.kernel_service.stats import Latency, Load

TARGET_LATENCY_RATIO: Final = 1.1
TARGET_THROUGHPUT_RATIO: Final = 0.8
TARGET_P99_RATIO: Final = 2.0
TARGET_REPLAY_PER_SECOND: Final = 500_000
TARGET_READY_SECONDS: Final = 3.0


@dataclass(frozen=True)
class Results:
    live: LiveResults
    replay: ReplayResults
    load_before: tuple[float, ...]
    load_after: tuple[float, ...]


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


def _latency_json(value: Latency) -> dict[str, float]:
    return {key: round(number, 1) for key, number in asdict(value).items()}


def _load_json(value: Load) -> dict[str, object]:
    out = asdict(value)
    out["per_second"] = round(value.per_second, 1)
    out["latency"] = _latency_json(value.latency)
    out["cpu_per_call_us"] = value.cpu_per_call_us()
    out["slot_waits"] = _latency_json(value.slot_waits) if value.slot_waits else None
    return out


def _settings_json(options: Options) -> dict[str, object]:
    return {
        "concurrency": options.concurrency,
        "duration_seconds": options.duration,
        "latency_intents": options.latency_intents,
        "latency_kernel_slots": LATENCY_SLOTS,
        "load_kernel_slots": options.concurrency * SLOTS_PER_CLIENT,
        "isolated_intents": ISOLATED_INTENTS,
        "isolated_pause_seconds": ISOLATED_PAUSE,
        "replay_records_target": options.replay_records,
        "fsync": True,
        "workload": "ENTER/EXIT MARKET cycles, every intent accepted and journaled; the venue double acks "
        "and fills each order (2 more journaled records per intent, and the same 2 facts again on the "
        "execution stream, refused as duplicates)",
    }


def _cpu_bound(empty: Load, intents: Load) -> dict[str, float]:
    """What the machine allows the sustained ratio, whatever the kernel does.

    The run's other processes (the client and the venue double) need CPU for every intent too,
    and they share the machine's cores with the kernel: ``cores / their CPU per intent`` is the
    rate of a kernel that costs nothing, ``cores / (theirs + an empty RPC's server CPU)`` that of
    a kernel whose only cost is the RPC itself. Both as ratios to the empty RPC's rate.
    """
    cores = os.cpu_count() or 1
    spent = intents.cpu_per_call_us()
    others_us = spent.get("client", 0.0) + spent.get("venue", 0.0)
    rpc_us = empty.cpu_per_call_us().get("empty_server", 0.0)
    if others_us <= 0 or empty.per_second <= 0:
        return {}
    return {
        "cores": cores,
        "client_and_venue_cpu_us_per_intent": round(others_us, 1),
        "max_ratio_zero_cost_kernel": _ratio(cores * 1e6 / others_us, empty.per_second),
        "max_ratio_kernel_at_empty_rpc_cost": _ratio(cores * 1e6 / (others_us + rpc_us), empty.per_second),
    }


def _durable_json(live: LiveResults, floor_us: float) -> dict[str, object]:
    """The empty RPC made durable: the best ratios any handler on this stack and journal could reach."""
    c1, load, empty = live.durable_c1, live.durable_load, live.empty_load
    return {
        "c1": _load_json(c1),
        "c1_ratio_p50_to_floor": _ratio(c1.latency.p50_us, floor_us),
        "load": _load_json(load),
        "load_ratio_throughput": _ratio(load.per_second, empty.per_second),
        "load_ratio_p99": _ratio(load.latency.p99_us, empty.latency.p99_us),
        "note": "the floor server's empty method plus one journal append per call (services.kernel.journal, "
        "fsync on, calls queued during a sync share the next one): no validation, no kernel, no venue "
        "traffic; what a durable answer costs any Python handler on this stack (informational)",
    }


def _live_json(live: LiveResults) -> dict[str, object]:
    floor_us = live.empty_c1.latency.p50_us + live.fsync.p50_us
    paced_floor_us = live.empty_c1_paced.latency.p50_us + live.fsync_paced.p50_us
    latency_ratio = _ratio(live.intent_c1.latency.p50_us, floor_us)
    empty_load, intent_load, mark = live.empty_load, live.intent_load, live.mark_load
    throughput_ratio = _ratio(intent_load.per_second, empty_load.per_second)
    p99_ratio = _ratio(intent_load.latency.p99_us, empty_load.latency.p99_us)
    return {
        "floor": {
            "empty_rpc_c1": _load_json(live.empty_c1),
            "fsync": _latency_json(live.fsync),
            "fsync_in_worker_thread": _latency_json(live.fsync_threaded),
            "floor_p50_us": round(floor_us, 1),
        },
        "submit_intent_c1": {
            **_load_json(live.intent_c1),
            "ratio_p50_to_floor": latency_ratio,
            "target_ratio_max": TARGET_LATENCY_RATIO,
            "met": latency_ratio <= TARGET_LATENCY_RATIO,
        },
        "get_control_c1": {
            **_load_json(live.read_c1),
            "note": "a read served from the kernel's view cache: the kernel process's own gRPC cost (informational)",
        },
        "submit_intent_c1_isolated": {
            **_load_json(live.intent_c1_isolated),
            "ratio_p50_to_floor": _ratio(live.intent_c1_isolated.latency.p50_us, floor_us),
            "paced_floor": {
                "empty_rpc_c1": _load_json(live.empty_c1_paced),
                "fsync": _latency_json(live.fsync_paced),
                "floor_p50_us": round(paced_floor_us, 1),
            },
            "ratio_p50_to_paced_floor": _ratio(live.intent_c1_isolated.latency.p50_us, paced_floor_us),
            "note": f"{ISOLATED_PAUSE * 1e3:.0f} ms pause after each intent: the venue traffic of the previous "
            "order is committed before the next intent arrives; the paced floor is the empty RPC and the "
            "fsync probe with the same pause after each (informational)",
        },
        "sustained": {
            "empty_rpc": _load_json(empty_load),
            "submit_intent": _load_json(intent_load),
            "ratio_throughput": throughput_ratio,
            "target_throughput_ratio_min": TARGET_THROUGHPUT_RATIO,
            "throughput_met": throughput_ratio >= TARGET_THROUGHPUT_RATIO,
            "mark_price": _load_json(mark),
            "mark_price_ratio_throughput": _ratio(mark.per_second, empty_load.per_second),
            "mark_price_note": "MarkPrice RPCs at the same concurrency on the same kernel (before the intents, no "
            "slot open): journaled inputs without venue traffic, the kernel's write path alone (informational)",
            "ratio_p99": p99_ratio,
            "target_p99_ratio_max": TARGET_P99_RATIO,
            "p99_met": p99_ratio <= TARGET_P99_RATIO,
            "cpu_bound": _cpu_bound(empty_load, intent_load),
        },
        "durable_empty": _durable_json(live, floor_us),
        "live_journal": {"records": live.live_records, "record_mean_bytes": round(live.live_record_bytes, 1)},
    }


def _replay_json(replay: ReplayResults) -> dict[str, object]:
    journal, recovery = replay.journal, replay.recovery
    ready_empty, ready_replay, ready_snapshot = replay.ready_empty, replay.ready_replay, replay.ready_snapshot
    replay_rate = recovery.replayed / recovery.recover_seconds
    return {
        "replay": {
            "records": journal.records,
            "journal_bytes": journal.journal_bytes,
            "record_mean_bytes": round(journal.journal_bytes / journal.records, 1),
            "segments": journal.segments,
            "build_seconds": round(journal.build_seconds, 2),
            "build_records_per_second": round(journal.records / journal.build_seconds),
            "build_note": "records built by services.kernel.core.judge (the service writer's own step) from the kernel "
            "tests' input builders, appended in batches without fsync (set-up, not a figure)",
            "journal_open_seconds": round(recovery.open_seconds, 3),
            "recover_seconds": round(recovery.recover_seconds, 3),
            "records_per_second": round(replay_rate),
            "open_plus_recover_records_per_second": round(
                recovery.replayed / (recovery.open_seconds + recovery.recover_seconds)
            ),
            "target_records_per_second_min": TARGET_REPLAY_PER_SECOND,
            "met": replay_rate >= TARGET_REPLAY_PER_SECOND,
        },
        "time_to_serving": {
            "empty_journal_seconds": round(ready_empty.seconds, 3),
            "empty_journal_milestones": ready_empty.breakdown,
            "no_snapshot_seconds": round(ready_replay.seconds, 3),
            "no_snapshot_milestones": ready_replay.breakdown,
            "no_snapshot_met": ready_replay.seconds < TARGET_READY_SECONDS,
            "snapshot_sequence": journal.snapshot_sequence,
            "snapshot_tail_records": ready_snapshot.sequence - journal.snapshot_sequence,
            "snapshot_bytes": len(journal.snapshot),
            "snapshot_restore_seconds": round(replay.snapshot_restore_seconds, 3),
            "snapshot_compaction_freed_bytes": replay.snapshot_freed_bytes,
            "snapshot_seconds": round(ready_snapshot.seconds, 3),
            "snapshot_milestones": ready_snapshot.breakdown,
            "snapshot_met": ready_snapshot.seconds < TARGET_READY_SECONDS,
            "target_seconds_max": TARGET_READY_SECONDS,
            "note": "seconds from process start to the first SERVING health answer; milestones are seconds "
            "from process start to the kernel's log lines (journal opened, recovered, gRPC started, serving)",
        },
    }


def to_json(options: Options, results: Results) -> dict[str, object]:
    return {
        "benchmark": "kernel_service",
        "settings": _settings_json(options),
        **_live_json(results.live),
        **_replay_json(results.replay),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version,
            "grpcio": grpc.__version__,
            "pink_kernel": pink_kernel.__version__,
            "load_average_before": results.load_before,
            "load_average_after": results.load_after,
        },
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def _lat(load: dict[str, Any]) -> str:
    latency = load["latency"]
    return f"p50 {latency['p50_us']:7.0f} us  p99 {latency['p99_us']:7.0f} us"


def _cpu(load: dict[str, Any]) -> str:
    return ", ".join(f"{name} {us:.0f}" for name, us in load["cpu_per_call_us"].items() if us)


def _waits(load: dict[str, Any]) -> str:
    slot_waits = load["slot_waits"]
    if not slot_waits:
        return ""
    return (
        f"; {slot_waits['samples']} intents waited for their slot: p50 {slot_waits['p50_us'] / 1e3:.0f} ms, "
        f"p99 {slot_waits['p99_us'] / 1e3:.0f} ms"
    )


def _server(load: dict[str, Any]) -> str:
    figures = load["server"]
    return (
        f"handler mean {figures['submit_intent_handler_mean_us']:.0f} us, commit mean "
        f"{figures['commit_mean_us']:.0f} us, {figures['records_per_append']:.1f} records per fsync"
    )


def _bound_lines(bound: dict[str, Any]) -> list[str]:
    if not bound:
        return []
    return [
        (
            f"  CPU bound on {bound['cores']} cores: the client and the venue double alone spend "
            f"{bound['client_and_venue_cpu_us_per_intent']:.0f} us per intent, so a kernel costing nothing would reach "
            f"at most {bound['max_ratio_zero_cost_kernel']:.2f}x the empty RPC, one costing an empty RPC's server CPU "
            f"{bound['max_ratio_kernel_at_empty_rpc_cost']:.2f}x"
        )
    ]


def _durable_c1_lines(durable: dict[str, Any]) -> list[str]:
    return [
        (
            f"durable empty RPC c=1 (journal append, no kernel): {_lat(durable['c1'])}  p50/floor "
            f"{durable['c1_ratio_p50_to_floor']:.2f}; CPU us per call: {_cpu(durable['c1'])}"
        )
    ]


def _durable_load_lines(durable: dict[str, Any], concurrency: int) -> list[str]:
    load = durable["load"]
    return [
        (
            f"durable empty RPC c={concurrency}:   {load['per_second']:7.0f}/s  {_lat(load)}  throughput ratio "
            f"{durable['load_ratio_throughput']:.2f}, p99 ratio {durable['load_ratio_p99']:.2f}; CPU us per call: "
            f"{_cpu(load)}"
        )
    ]


def render(doc: dict[str, Any]) -> list[str]:
    """The readable summary of :func:`to_json`'s document."""
    floor, c1, isolated = doc["floor"], doc["submit_intent_c1"], doc["submit_intent_c1_isolated"]
    sustained, replay, ready = doc["sustained"], doc["replay"], doc["time_to_serving"]
    empty_load, intent_load, mark_load = sustained["empty_rpc"], sustained["submit_intent"], sustained["mark_price"]
    concurrency = doc["settings"]["concurrency"]
    fsync, threaded = floor["fsync"], floor["fsync_in_worker_thread"]
    paced = isolated["paced_floor"]
    return [
        (
            f"floor: empty RPC c=1 {_lat(floor['empty_rpc_c1'])}; fsync p50 {fsync['p50_us']:.0f} us, "
            f"p99 {fsync['p99_us']:.0f} us (from a worker thread: p50 {threaded['p50_us']:.0f} us); "
            f"floor p50 {floor['floor_p50_us']:.0f} us"
        ),
        (
            f"SubmitIntent c=1:           {_lat(c1)}  p50/floor {c1['ratio_p50_to_floor']:.2f} "
            f"(target <= {TARGET_LATENCY_RATIO}: {_verdict(c1['met'])})"
        ),
        f"  CPU us per intent: {_cpu(c1)}; {_server(c1)}",
        f"  GetControl c=1 on the kernel (its RPC cost alone): {_lat(doc['get_control_c1'])}",
        (
            f"  isolated ({ISOLATED_PAUSE * 1e3:.0f} ms pauses): {_lat(isolated)}  p50/floor "
            f"{isolated['ratio_p50_to_floor']:.2f}; {_server(isolated)}"
        ),
        (
            f"  paced floor (same pauses): empty RPC {_lat(paced['empty_rpc_c1'])}; fsync p50 "
            f"{paced['fsync']['p50_us']:.0f} us; floor p50 {paced['floor_p50_us']:.0f} us; isolated p50/paced floor "
            f"{isolated['ratio_p50_to_paced_floor']:.2f}"
        ),
        *_durable_c1_lines(doc["durable_empty"]),
        f"empty RPC c={concurrency}:           {empty_load['per_second']:7.0f}/s  {_lat(empty_load)}",
        *_durable_load_lines(doc["durable_empty"], concurrency),
        (
            f"SubmitIntent c={concurrency}:        {intent_load['per_second']:7.0f}/s  {_lat(intent_load)}  "
            f"({intent_load['not_ready_refusals']} not-ready refusals{_waits(intent_load)})"
        ),
        (
            f"  throughput ratio {sustained['ratio_throughput']:.2f} (target >= {TARGET_THROUGHPUT_RATIO}: "
            f"{_verdict(sustained['throughput_met'])}); p99 ratio {sustained['ratio_p99']:.2f} "
            f"(target <= {TARGET_P99_RATIO}: {_verdict(sustained['p99_met'])})"
        ),
        f"  CPU us per intent: {_cpu(intent_load)}; {_server(intent_load)}; empty RPC: {_cpu(empty_load)}",
        *_bound_lines(sustained.get("cpu_bound") or {}),
        (
            f"MarkPrice c={concurrency} (journaled, no venue traffic): {mark_load['per_second']:7.0f}/s  "
            f"{_lat(mark_load)}  ratio {sustained['mark_price_ratio_throughput']:.2f}; CPU us per call: "
            f"{_cpu(mark_load)}"
        ),
        (
            f"replay: {replay['records']:,} records ({replay['record_mean_bytes']:.0f} B mean; built in "
            f"{replay['build_seconds']:.1f} s); open {replay['journal_open_seconds']:.2f} s, recover "
            f"{replay['recover_seconds']:.2f} s = {replay['records_per_second']:,} records/s "
            f"(target >= {TARGET_REPLAY_PER_SECOND:,}: {_verdict(replay['met'])})"
        ),
        (
            f"time to SERVING: empty journal {ready['empty_journal_seconds']:.2f} s; {replay['records']:,} records "
            f"without snapshot {ready['no_snapshot_seconds']:.2f} s ({_verdict(ready['no_snapshot_met'])}); "
            f"snapshot + {ready['snapshot_tail_records']:,} tail {ready['snapshot_seconds']:.2f} s "
            f"({_verdict(ready['snapshot_met'])}); target < {TARGET_READY_SECONDS} s"
        ),
        f"  milestones (s from process start): no snapshot {ready['no_snapshot_milestones']}",
        f"  snapshot {ready['snapshot_milestones']}; empty journal {ready['empty_journal_milestones']}",
    ]
