"""Typed configuration of the BingX simulator (environment variables ``PINK_SIM_*``).

Complex settings (``PINK_SIM_SYMBOLS``, ``PINK_SIM_FAULTS``) are JSON. The default key pair is
a fixed, published demo pair (paper trading needs no secret); any real deployment sets its own.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings

__all__ = ["DEMO_API_KEY", "DEMO_SECRET_KEY", "FaultSettings", "SimSettings", "SymbolSpec"]

#: Documented demo credentials (docs/simulator.md); the secret is the one of API.md §2.4.
DEMO_API_KEY = "pinksimdemokey0000000000000000000000000000000000000000000000000000"
DEMO_SECRET_KEY = "mheO6dR8ovSsxZQCOYEFCtelpuxcWGTfHw7te326y6jOwq5WpvFQ9JNljoTwBXZGv5It07m9RXSPpDQEK2w"  # noqa: S105  # public demo secret, documented

_SYMBOL = r"^[A-Z0-9]{1,20}-USDT$"


class SymbolSpec(BaseModel):
    """One USDT-M contract the simulator lists and trades."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(pattern=_SYMBOL)
    price_precision: int = Field(ge=0, le=10)
    quantity_precision: int = Field(ge=0, le=10)
    min_quantity: Decimal = Field(gt=0)
    min_notional: Decimal = Field(ge=0)
    max_leverage: int = Field(default=125, ge=1, le=150)
    initial_price: Decimal = Field(gt=0, lt=Decimal("1e12"))

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_precision)

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.quantity_precision)

    @property
    def asset(self) -> str:
        return self.symbol.split("-", 1)[0]


def _default_symbols() -> list[SymbolSpec]:
    return [
        SymbolSpec(
            symbol="BTC-USDT",
            price_precision=1,
            quantity_precision=4,
            min_quantity=Decimal("0.0001"),
            min_notional=Decimal(2),
            initial_price=Decimal("60000.0"),
        ),
        SymbolSpec(
            symbol="ETH-USDT",
            price_precision=2,
            quantity_precision=2,
            min_quantity=Decimal("0.01"),
            min_notional=Decimal(2),
            max_leverage=100,
            initial_price=Decimal("3000.00"),
        ),
    ]


class FaultSettings(BaseModel):
    """Faults armed at start-up; the control API (``/_sim/faults``) changes them at run time.

    Every ``*_rate`` is a probability per occasion drawn from the simulator's seeded RNG;
    every ``*_count`` fires on the next N occasions, then disarms.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    http_error_status: int = Field(default=500, ge=500, le=599)
    http_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    http_error_count: int = Field(default=0, ge=0)
    rate_limit_count: int = Field(default=0, ge=0)
    drop_after_execute_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    drop_after_execute_count: int = Field(default=0, ge=0)
    # "close": the connection is closed with no answer; "504": HTTP 504 (unknown outcome).
    drop_mode: Literal["close", "504"] = "close"
    duplicate_event_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    duplicate_event_count: int = Field(default=0, ge=0)
    reorder_event_count: int = Field(default=0, ge=0)
    # User-stream connections are cut (TCP abort) just before an event, which they never get.
    ws_disconnect_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    ws_disconnect_count: int = Field(default=0, ge=0)
    # While true, user-stream WebSocket handshakes are refused (HTTP 503): the stream stays down.
    ws_refuse_user: bool = False
    fill_delay_ticks: int = Field(default=0, ge=0, le=1_000)
    cancel_fill_race_count: int = Field(default=0, ge=0)
    stale_read_count: int = Field(default=0, ge=0)
    # GET trade/order answers 80016 for a finished order (API.md §10.6).
    query_miss_count: int = Field(default=0, ge=0)


class SimSettings(ServiceSettings):
    """Settings of one simulator process (one account, one key pair)."""

    model_config = SettingsConfigDict(env_prefix="PINK_SIM_", extra="forbid")

    port: int = Field(default=0, ge=0, le=65535, description="HTTP/WebSocket port; 0 picks an ephemeral port.")
    api_key: SecretStr = SecretStr(DEMO_API_KEY)
    secret_key: SecretStr = SecretStr(DEMO_SECRET_KEY)
    seed: int = Field(default=1, ge=0)
    symbols: list[SymbolSpec] = Field(default_factory=_default_symbols, min_length=1, max_length=200)

    initial_balance: Decimal = Field(default=Decimal(10_000), ge=0, le=Decimal("1e12"))
    maker_fee_rate: Decimal = Field(default=Decimal("0.0002"), ge=0, le=Decimal("0.01"))
    taker_fee_rate: Decimal = Field(default=Decimal("0.0005"), ge=0, le=Decimal("0.01"))
    # MARKET fills this far beyond the touch (basis points), never better than the touch.
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0, le=Decimal(500))
    # Best bid and ask sit this many ticks either side of the path price.
    half_spread_ticks: int = Field(default=1, ge=0, le=10_000)
    # Each matching pass fills at most this fraction of a resting order (1 = whole order).
    fill_fraction: Decimal = Field(default=Decimal(1), gt=0, le=1)
    default_leverage: int = Field(default=5, ge=1, le=150)
    max_open_orders: int = Field(default=200, ge=1, le=10_000)

    # Price path: a seeded random walk, or a CSV (columns symbol,price) replayed tick by tick.
    price_path: Literal["walk", "csv"] = "walk"
    price_csv: Path | None = None
    walk_step_bps: Decimal = Field(default=Decimal(5), gt=0, le=Decimal(1000))
    # Seconds between ticks in the running process; 0 = only the control API moves prices.
    tick_seconds: float = Field(default=1.0, ge=0.0, le=3600.0)

    rate_limits: bool = True
    rate_limit_response: Literal["http429", "code100410"] = "code100410"
    recv_window_ms: int = Field(default=5000, ge=1, le=60_000, description="Default recvWindow.")
    max_recv_window_ms: int = Field(default=60_000, ge=1, le=3_600_000)
    future_tolerance_ms: int = Field(default=1000, ge=0, le=60_000)

    listen_key_minutes: int = Field(default=60, ge=1, le=1440)
    ping_seconds: float = Field(default=5.0, gt=0.0, le=300.0)
    pong_timeout_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)

    faults: FaultSettings = Field(default_factory=FaultSettings)

    @field_validator("api_key", "secret_key")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        # An empty secret would make every signature trivially forgeable.
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("symbols")
    @classmethod
    def _unique_symbols(cls, symbols: list[SymbolSpec]) -> list[SymbolSpec]:
        if len({spec.symbol for spec in symbols}) != len(symbols):
            raise ValueError("symbols must be unique")
        return symbols

    @field_validator("price_csv")
    @classmethod
    def _csv_is_a_file(cls, path: Path | None) -> Path | None:
        # Checked here so a wrong path is a configuration error naming PINK_SIM_PRICE_CSV.
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @model_validator(mode="after")
    def _csv_needs_file(self) -> SimSettings:
        if self.price_path == "csv" and self.price_csv is None:
            raise ValueError("PINK_SIM_PRICE_PATH=csv needs PINK_SIM_PRICE_CSV (a symbol,price file)")
        return self
