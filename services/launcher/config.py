"""Typed configuration of the platform launcher (environment variables ``PINK_RUN_*``).

Everything has a default: ``make run`` needs no setting at all (embedded defaults: the BingX
simulator as the venue, a fresh data directory per run under ``.run/``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings

__all__ = ["LaunchSettings"]

Seconds = Annotated[float, Field(gt=0, le=3600)]


class LaunchSettings(ServiceSettings):
    """What the launcher starts and the paper-trading session it runs."""

    model_config = SettingsConfigDict(env_prefix="PINK_RUN_", extra="forbid")

    # Each run gets its own sub-directory (kernel journal, service logs).
    data_dir: Path = Path(".run")
    # Simulator seed: the same seed gives the same price path and the same session.
    seed: int = Field(default=7, ge=0)
    # Seconds between simulator price steps (the market moves while positions are held).
    price_tick_seconds: float = Field(default=0.2, gt=0, le=60)
    # The session: this many round trips per symbol, each held this long before its exit.
    rounds: int = Field(default=3, ge=1, le=100)
    hold_seconds: Seconds = 1.0
    btc_size: Decimal = Field(default=Decimal("0.01"), gt=0, le=Decimal(10))
    eth_size: Decimal = Field(default=Decimal("0.2"), gt=0, le=Decimal(100))
    leverage: int = Field(default=5, ge=1, le=20)
    # Each child must be SERVING within this; each order must finish within this.
    start_seconds: Seconds = 60.0
    order_seconds: Seconds = 30.0
    # Each child gets this long after SIGTERM before it is killed (and the run fails).
    stop_seconds: Seconds = 30.0
    # Print every child log line (JSON) instead of only warnings and errors.
    verbose: bool = False
