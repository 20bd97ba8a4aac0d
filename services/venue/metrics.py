"""Prometheus metrics of the venue service (one registry per service instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["VenueMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class VenueMetrics:
    """Counters, gauges and histograms the adapter updates; served at /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.rest_requests = Counter(
            "pink_venue_rest_requests",
            "REST calls to BingX by endpoint and outcome (ok, error, rate_limited, unknown).",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.rest_latency = Histogram(
            "pink_venue_rest_latency_seconds",
            "REST call latency by endpoint (rate-budget waits excluded).",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_waits = Histogram(
            "pink_venue_rate_budget_wait_seconds",
            "Time a REST call waited for the rate budget (only calls that waited).",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "pink_venue_rate_limited", "Refusals for rate (HTTP 429 or code 100410).", registry=registry
        )
        self.reconnects = Counter(
            "pink_venue_stream_reconnects", "WebSocket reconnects by stream.", ["stream"], registry=registry
        )
        self.user_stream_connected = Gauge(
            "pink_venue_user_stream_connected",
            "1 while the user-data WebSocket (fills, order updates) is connected, else 0.",
            registry=registry,
        )
        self.health_withdrawals = Counter(
            "pink_venue_health_withdrawals",
            "Times health (readiness) went NOT_SERVING while running, by reason (user_stream: down past the grace).",
            ["reason"],
            registry=registry,
        )
        self.gap_fill_events = Counter(
            "pink_venue_gap_fill_events",
            "Execution reports the REST gap-fill emitted that the stream had not delivered.",
            registry=registry,
        )
        self.gap_fills = Counter("pink_venue_gap_fills", "Gap-fill runs by reason.", ["reason"], registry=registry)
        self.unknown_status = Counter(
            "pink_venue_unknown_status",
            "Order updates with a status or execution type the adapter does not know (then queried).",
            registry=registry,
        )
        self.executions = Counter(
            "pink_venue_executions", "Execution reports appended to the log, by source.", ["source"], registry=registry
        )
        self.duplicates = Counter(
            "pink_venue_duplicate_events", "Execution reports dropped as already known.", registry=registry
        )
        self.ack_wait = Histogram(
            "pink_venue_ack_wait_seconds",
            "Time PlaceOrder waited after BingX's answer for the stream's acknowledgement.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rpc_latency = Histogram(
            "pink_venue_rpc_seconds", "VenueService RPC handling time by method.", ["method"], registry=registry
        )
