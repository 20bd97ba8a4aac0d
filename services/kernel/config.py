"""Typed configuration of the kernel service (environment variables ``PINK_KERNEL_*``).

Everything is validated at start-up; an invalid or missing value stops the service with a
message naming the variable (see ``services.common.config.load_settings``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

from google.protobuf import duration_pb2
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings
from services.common.proto import control_pb2, snapshot_pb2, types_pb2

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class KernelSettings(ServiceSettings):
    """Settings of one kernel (one account shard)."""

    model_config = SettingsConfigDict(env_prefix="PINK_KERNEL_", extra="forbid")

    # Where the journal, snapshots and consumer cursors live (one kernel per directory).
    data_dir: Path
    # Address of the VenueService this kernel sends its commands to (host:port).
    venue_address: str = Field(min_length=3, max_length=256)

    # The kernel's construction parameters (pink.v1.KernelConfig). Changing them for an
    # existing journal is refused at start-up: the journal's first record fixes them.
    kernel_id: str = Field(default="pk", pattern=r"^[a-z0-9]{1,12}$")
    slot_count: int = Field(default=10, ge=1, le=100_000)
    settlement_asset: str = Field(default="USDT", pattern=r"^[A-Z0-9]{1,16}$")
    initial_capital: Decimal = Field(default=Decimal("10000"), ge=0, le=Decimal("1e15"))
    hard_max_leverage: int = Field(default=125, ge=1, le=150)
    max_leverage: int = Field(default=20, ge=1, le=150)
    max_notional_per_slot: Decimal = Field(default=Decimal("1000000"), gt=0, le=Decimal("1e15"))
    active_slot_limit: int | None = Field(default=None, ge=0, le=100_000)
    allowed_symbols: list[str] = Field(default_factory=lambda: ["BTC-USDT", "ETH-USDT"], max_length=1000)
    trading_enabled: bool = True
    ack_timeout_seconds: PositiveSeconds = 5.0
    fill_timeout_seconds: PositiveSeconds = 10.0
    resting_check_seconds: PositiveSeconds = 60.0
    cancel_timeout_seconds: PositiveSeconds = 5.0
    max_query_backoff_seconds: PositiveSeconds = 300.0
    retired_order_memory: int = Field(default=100_000, ge=16, le=1_000_000)
    pnl_scale: int = Field(default=10, ge=2, le=18)

    # Journal and writer.
    fsync: bool = True
    segment_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    snapshot_every: int = Field(default=10_000, ge=1)
    max_batch: int = Field(default=256, ge=1, le=100_000)
    queue_limit: int = Field(default=10_000, ge=1)
    # How often the kernel is told that time passed (deadlines, queries).
    timer_seconds: PositiveSeconds = 1.0
    # Per-subscriber buffer of WatchRecords/WatchSlots; a slower subscriber reads the journal.
    watch_buffer: int = Field(default=1024, ge=1)
    # Timeout of each call to the VenueService.
    venue_timeout_seconds: PositiveSeconds = 5.0
    # Run-time reconcile with the venue: on schedule, and on reconcile-needed anomalies at most
    # once per spacing (each one is three REST reads at the venue service).
    reconcile_every_seconds: PositiveSeconds = 300.0
    reconcile_spacing_seconds: PositiveSeconds = 5.0

    @field_validator("allowed_symbols")
    @classmethod
    def _symbols(cls, symbols: list[str]) -> list[str]:
        if len(set(symbols)) != len(symbols):
            msg = "symbols must be unique"
            raise ValueError(msg)
        return sorted(symbols)

    def kernel_config(self) -> snapshot_pb2.KernelConfig:
        """The pink.v1.KernelConfig these settings describe (the kernel validates it again)."""
        control = control_pb2.ControlState(
            trading_enabled=self.trading_enabled,
            max_leverage=types_pb2.Decimal(value=str(self.max_leverage)),
            max_notional_per_slot=types_pb2.Decimal(value=f"{self.max_notional_per_slot:f}"),
            active_slot_limit=self.slot_count if self.active_slot_limit is None else self.active_slot_limit,
            allowed_symbols=self.allowed_symbols,
        )
        return snapshot_pb2.KernelConfig(
            kernel_id=self.kernel_id,
            slot_count=self.slot_count,
            settlement_asset=self.settlement_asset,
            initial_capital=types_pb2.Decimal(value=f"{self.initial_capital:f}"),
            initial_control=control,
            hard_max_leverage=types_pb2.Decimal(value=str(self.hard_max_leverage)),
            ack_timeout=_duration(self.ack_timeout_seconds),
            fill_timeout=_duration(self.fill_timeout_seconds),
            resting_check_interval=_duration(self.resting_check_seconds),
            cancel_timeout=_duration(self.cancel_timeout_seconds),
            max_query_backoff=_duration(self.max_query_backoff_seconds),
            retired_order_memory=self.retired_order_memory,
            pnl_scale=self.pnl_scale,
        )


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))
