"""The API key and secret never appear in logs, reprs, errors or trace spans. [J13]"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import grpc
import grpc.aio
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.config import ConfigError, load_settings
from services.common.proto import venue_service_pb2
from services.venue.config import VenueSettings
from services.venue.server import serve
from tests.common.helpers import captured_logs
from tests.venue_service.harness import BTC, simulator, venue_service, venue_settings
from tests.venue_service.test_contract import cancel, limit, market, place, query

pytestmark = pytest.mark.anyio

API_KEY = "venuetestkey7f3a9c2e5b8d1f4a6c9e2b5d8f1a4c7e0b3d6f9a2c5e8b1d4f7a0c3e6"
SECRET = "venuetestsecretQ1w2E3r4T5y6U7i8O9p0AaSsDdFfGgHhJjKkLlZzXxCcVvBbNnMm"  # noqa: S105 - a test secret


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Every log line (structlog and stdlib: aiohttp, grpc) rendered as JSON into memory."""
    with captured_logs("pink-venue") as stream:
        yield stream


def _leaks(text: str) -> list[str]:
    return [name for name, secret in (("api key", API_KEY), ("secret", SECRET)) if secret in text]


async def test_no_log_line_error_repr_or_span_carries_the_key_or_secret(log_stream: io.StringIO) -> None:
    exporter = InMemorySpanExporter()
    seen: list[str] = []
    async with simulator(api_key=API_KEY, secret_key=SECRET, rate_limit_response="http429") as sim:
        settings = venue_settings(sim, api_key=API_KEY, secret_key=SECRET)
        seen += [repr(settings), str(settings), settings.model_dump_json()]
        async with venue_service(sim, api_key=API_KEY, secret_key=SECRET, span_exporter=exporter) as venue:
            await place(venue, market("pk-s1", "0.01"))
            await place(venue, market("pk-s2", "1000"))  # refused: margin
            await place(venue, limit("pk-s3", "0.001", "50000.0"))
            await cancel(venue, "pk-s3", "pk-s3:cancel:1")
            await cancel(venue, "pk-none", "pk-none:cancel:1")
            await query(venue, "pk-none")
            await sim.faults(http_error_count=1, drop_after_execute_count=1, rate_limit_count=1)
            await place(venue, market("pk-s4", "0.01"))
            await sim.control("listen-keys/expire", {})
            await sim.control("ws/disconnect", {"user": True, "market": True, "abort": True})
            for request in (
                venue_service_pb2.PlaceOrderRequest(idempotency_key="k", order=market("BAD", "1")),
                venue_service_pb2.PlaceOrderRequest(order=market("pk-s5", "1")),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await venue.stub.PlaceOrder(request, timeout=5)
                seen += [str(raised.value), repr(raised.value), raised.value.details() or ""]
            seen += [repr(venue.adapter.client), repr(venue.adapter)]
        # Keys BingX refuses: the start-up error is logged (and must not echo them).
        refused = venue_settings(sim, api_key=API_KEY, secret_key="wrong-" + SECRET[:20])
        assert await serve(refused) == 3
    problems: list[Callable[[], VenueSettings]] = [
        lambda: load_settings(VenueSettings, environment="live", api_key=API_KEY),
        lambda: load_settings(VenueSettings, environment="demo", api_key=API_KEY, secret_key="short"),  # noqa: S106 - too short on purpose
    ]
    for problem in problems:
        with pytest.raises(ConfigError) as config_error:
            problem()
        seen += [str(config_error.value), repr(config_error.value)]
    spans = exporter.get_finished_spans()
    assert any(span.name.startswith("bingx ") for span in spans), "REST calls are traced"
    seen += [span.to_json() for span in spans]
    logs = log_stream.getvalue()
    assert "execution_report" in logs, "the scenario was logged"
    assert "venue_unusable_at_startup" in logs, "the refused keys were logged"
    assert _leaks(logs) == [], "a log line"
    assert [text for text in seen if _leaks(text)] == []


def test_settings_hide_keys_in_reprs() -> None:
    settings = VenueSettings.model_validate(
        {"environment": "live", "api_key": API_KEY, "secret_key": SECRET, "symbols": [BTC]}
    )
    assert _leaks(repr(settings) + str(settings) + settings.model_dump_json()) == []
    assert settings.credentials()[0].get_secret_value() == API_KEY  # still usable where signed
