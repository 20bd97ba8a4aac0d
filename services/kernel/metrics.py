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
        self.watchers = Gauge(
            "pink_kernel_watchers", "Open WatchRecords/WatchSlots streams", ["stream"], registry=registry
        )
        self.lagging = Counter(
            "pink_kernel_watch_lagging_total",
            "Subscribers that fell behind and were resynchronised",
            ["stream"],
            registry=registry,
        )

        # Label children by (kind, code number): resolved once, not per judged input.
        self._inputs: dict[tuple[str, outcome_pb2.DiagnosticCode.ValueType], Counter] = {}
        self._venue_events: dict[tuple[int, int], Counter] = {}
        self._anomalies: dict[int, Counter] = {}
        self._commands: dict[str, Counter] = {}

    def observe(self, input_kind: str, outcome: outcome_pb2.Outcome) -> None:
        key = (input_kind, outcome.code)
        counter = self._inputs.get(key)
        if counter is None:
            counter = self._inputs[key] = self.inputs.labels(kind=input_kind, code=_code_name(outcome.code))
        counter.inc()
        for anomaly in outcome.anomalies:
            anomalies = self._anomalies.get(anomaly.kind)
            if anomalies is None:
                name = outcome_pb2.AnomalyKind.Name(anomaly.kind).removeprefix("ANOMALY_KIND_")
                anomalies = self._anomalies[anomaly.kind] = self.anomalies.labels(kind=name)
            anomalies.inc()
        for command in outcome.commands:
            which = command.WhichOneof("command") or "none"
            commands = self._commands.get(which)
            if commands is None:
                commands = self._commands[which] = self.commands.labels(command=which)
            commands.inc()
        if outcome.accepted:
            self.sequence.set(outcome.sequence)

    def venue_event(self, event: venue_event_pb2.VenueEvent, outcome: outcome_pb2.Outcome) -> None:
        key = (event.kind, outcome.code)
        counter = self._venue_events.get(key)
        if counter is None:
            # The event is caller input: an unknown kind (refused as INVALID_INPUT) must not break the count.
            known = event.kind in venue_event_pb2.VenueEventKind.values()
            kind = (
                venue_event_pb2.VenueEventKind.Name(event.kind).removeprefix("VENUE_EVENT_KIND_")
                if known
                else "INVALID"
            )
            counter = self.venue_events.labels(kind=kind, code=_code_name(outcome.code))
            if known:  # unknown kinds are caller input: not cached (no unbounded growth)
                self._venue_events[key] = counter
        counter.inc()


def _code_name(code: outcome_pb2.DiagnosticCode.ValueType) -> str:
    return outcome_pb2.DiagnosticCode.Name(code).removeprefix("DIAGNOSTIC_CODE_")


class SlotStateCollector(Collector):
    """Slots by state, counted at scrape time from the writer's view (nothing per commit)."""

    def __init__(self, slots: Callable[[], Mapping[int, slot_pb2.Slot]]) -> None:
        self._slots = slots
        self._names = {
            value: name.removeprefix("SLOT_STATE_")
            for name, value in slot_pb2.SlotState.items()
            if not name.endswith("UNSPECIFIED")
        }

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = dict.fromkeys(self._names.values(), 0)
        for slot in self._slots().values():
            name = self._names.get(slot.state)
            if name is not None:
                counts[name] += 1
        family = GaugeMetricFamily("pink_kernel_slots", "Slots by state", labels=["state"])
        for name, count in counts.items():
            family.add_metric([name], count)
        yield family


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
