"""Prometheus metrics of the kernel service, on the service's own registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.proto import kernel_input_pb2, outcome_pb2, slot_pb2, venue_event_pb2

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class KernelMetrics:
    """Inputs by kind and outcome code, anomalies, commit latency, batch sizes, slots by state."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.inputs = Counter(
            "pink_kernel_inputs_total", "Inputs judged by the kernel", ["kind", "code"], registry=registry
        )
        self.venue_events = Counter(
            "pink_kernel_venue_events_total",
            "Venue events judged by the kernel, by event kind and outcome code",
            ["kind", "code"],
            registry=registry,
        )
        self.anomalies = Counter("pink_kernel_anomalies_total", "Anomalies reported", ["kind"], registry=registry)
        self.commands = Counter("pink_kernel_commands_total", "Commands emitted", ["command"], registry=registry)
        self.overloaded = Counter(
            "pink_kernel_overloaded_total", "Submissions refused because the queue was full", registry=registry
        )
        self.commit_seconds = Histogram(
            "pink_kernel_commit_seconds",
            "Time to step and journal one batch",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.journal_batches = Histogram(
            "pink_kernel_journal_batch_records",
            "Records per journal append (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024),
            registry=registry,
        )
        self.rpc_seconds = Histogram(
            "pink_kernel_rpc_seconds", "Handler latency", ["method"], buckets=_LATENCY_BUCKETS, registry=registry
        )
        self.sequence = Gauge("pink_kernel_sequence", "Sequence of the last journaled record", registry=registry)
        self.slots = Gauge("pink_kernel_slots", "Slots by state", ["state"], registry=registry)
        self.watchers = Gauge(
            "pink_kernel_watchers", "Open WatchRecords/WatchSlots streams", ["stream"], registry=registry
        )
        self.lagging = Counter(
            "pink_kernel_watch_lagging_total",
            "Subscribers that fell behind and were resynchronised",
            ["stream"],
            registry=registry,
        )

    def observe(self, input_kind: str, outcome: outcome_pb2.Outcome) -> None:
        code = outcome_pb2.DiagnosticCode.Name(outcome.code).removeprefix("DIAGNOSTIC_CODE_")
        self.inputs.labels(kind=input_kind, code=code).inc()
        for anomaly in outcome.anomalies:
            self.anomalies.labels(kind=outcome_pb2.AnomalyKind.Name(anomaly.kind).removeprefix("ANOMALY_KIND_")).inc()
        for command in outcome.commands:
            self.commands.labels(command=command.WhichOneof("command") or "none").inc()
        if outcome.accepted:
            self.sequence.set(outcome.sequence)

    def venue_event(self, event: venue_event_pb2.VenueEvent, outcome: outcome_pb2.Outcome) -> None:
        # The event is caller input: an unknown kind (refused as INVALID_INPUT) must not break the count.
        known = event.kind in venue_event_pb2.VenueEventKind.values()
        kind = venue_event_pb2.VenueEventKind.Name(event.kind).removeprefix("VENUE_EVENT_KIND_") if known else "INVALID"
        code = outcome_pb2.DiagnosticCode.Name(outcome.code).removeprefix("DIAGNOSTIC_CODE_")
        self.venue_events.labels(kind=kind, code=code).inc()

    def slot_states(self, states: dict[int, slot_pb2.SlotState.ValueType]) -> None:
        names = [name for name in slot_pb2.SlotState.keys() if not name.endswith("UNSPECIFIED")]  # noqa: SIM118
        counts = dict.fromkeys(names, 0)
        for state in states.values():
            counts[slot_pb2.SlotState.Name(state)] += 1
        for name, count in counts.items():
            self.slots.labels(state=name.removeprefix("SLOT_STATE_")).set(count)


def input_kind(message: kernel_input_pb2.KernelInput) -> str:
    return message.WhichOneof("payload") or "none"


class LagCollector(Collector):
    """Journal lag read at scrape time: records applied but not yet durable, and each log consumer's backlog."""

    def __init__(
        self,
        applied: Callable[[], int],
        committed: Callable[[], int],
        consumers: Callable[[], Mapping[str, int]],
    ) -> None:
        self._applied = applied
        self._committed = committed
        self._consumers = consumers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        committed = self._committed()
        yield GaugeMetricFamily(
            "pink_kernel_journal_pending_records",
            "Records the kernel applied that are not yet durable (being fsynced)",
            value=max(0, self._applied() - committed),
        )
        lag = GaugeMetricFamily(
            "pink_kernel_consumer_lag_records",
            "Records of the log a registered consumer has not acknowledged yet",
            labels=["consumer"],
        )
        for name, acknowledged in sorted(self._consumers().items()):
            lag.add_metric([name], max(0, committed - acknowledged))
        yield lag
