"""Typed configuration of the venue service (environment variables ``PINK_VENUE_*``).

``ENVIRONMENT`` picks the venue: ``live`` (BingX), ``demo`` (BingX VST) or ``simulator``
(``services.venue.sim``). Live and demo need ``API_KEY`` and ``SECRET_KEY``; the simulator
defaults to its published demo pair and needs ``REST_URL``. Keys are ``SecretStr``: never
printed by a repr, a log line or a configuration error.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings
from services.venue.sim.config import DEMO_API_KEY, DEMO_SECRET_KEY

__all__ = ["BASE_URLS", "Environment", "VenueSettings"]

Environment = Literal["live", "demo", "simulator"]
Seconds = Annotated[float, Field(gt=0, le=86_400)]

#: REST and WebSocket roots of BingX (API.md §1, §9).
BASE_URLS: dict[str, tuple[str, str]] = {
    "live": ("https://open-api.bingx.com", "wss://open-api-swap.bingx.com/swap-market"),
    "demo": ("https://open-api-vst.bingx.com", "wss://vst-open-api-ws.bingx.com/swap-market"),
}


class VenueSettings(ServiceSettings):
    """Settings of one venue service (one BingX account)."""

    model_config = SettingsConfigDict(env_prefix="PINK_VENUE_", extra="forbid")

    environment: Environment
    # Defaults per environment (BASE_URLS); required for the simulator.
    rest_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    ws_url: str | None = Field(default=None, pattern=r"^wss?://[^\s]+$")
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    # Instruments loaded at start-up, mark prices streamed (the kernel's allowed symbols).
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USDT", "ETH-USDT"], min_length=1, max_length=200)
    # One-way mode (positionSide BOTH) unless the account is in hedge mode.
    hedge_mode: bool = False

    # Every REST request ends within this (connect + answer).
    request_timeout_seconds: Seconds = 5.0
    recv_window_ms: int = Field(default=5000, ge=1000, le=60_000)
    # Reads (never orders) are retried this many times on a lost answer / 5xx.
    read_retries: int = Field(default=2, ge=0, le=10)
    # Placements and cancels: query-then-resend rounds after an unknown outcome.
    write_attempts: int = Field(default=3, ge=1, le=10)
    # Retries after a rate-limit refusal (429 or code 100410), with exponential backoff.
    rate_limit_retries: int = Field(default=5, ge=0, le=20)
    # Added to every rate window: requests arrive later than they leave.
    rate_margin_seconds: float = Field(default=0.05, ge=0.0, le=1.0)

    # How long PlaceOrder waits for the stream's acknowledgement before it queries instead.
    ack_wait_seconds: Seconds = 2.0
    # Scheduled REST gap-fill (open orders + recent fills); also after every (re)connect.
    gap_fill_seconds: Seconds = 60.0
    # How far back the first gap-fill after start-up looks for fills.
    startup_lookback_seconds: Seconds = 600.0
    instruments_refresh_seconds: Seconds = 3600.0
    # listenKey keepalive (BingX: valid 60 minutes, extend every 30).
    keepalive_seconds: Seconds = 1800.0
    # No frame (BingX pings every 5 s) for this long: the connection is dead, reconnect.
    stream_idle_seconds: Seconds = 30.0
    # Health (readiness) is withdrawn once the user stream has been down this long: without it
    # fills and order updates go unseen. Long enough that an ordinary reconnect does not flap.
    user_stream_grace_seconds: Seconds = 5.0
    reconnect_initial_seconds: Seconds = 0.2
    reconnect_max_seconds: Seconds = 30.0
    # Execution reports kept for resuming StreamExecutions.
    execution_log_size: int = Field(default=100_000, ge=100, le=10_000_000)
    # HTTP(S)_PROXY / NO_PROXY from the environment for REST and WebSocket.
    trust_env: bool = False
    # DNS answers are cached this long; idle keep-alive connections are closed after this.
    dns_cache_seconds: int = Field(default=300, ge=0, le=86_400)
    keepalive_timeout_seconds: Seconds = 30.0

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, symbols: list[str]) -> list[str]:
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be unique")
        for symbol in symbols:
            if not symbol.endswith("-USDT") or not symbol.replace("-", "").isalnum() or symbol.upper() != symbol:
                raise ValueError(f"{symbol!r} is not a BingX USDT-M symbol (e.g. BTC-USDT)")
        return sorted(symbols)

    @model_validator(mode="after")
    def _endpoints_and_keys(self) -> VenueSettings:
        if self.environment == "simulator":
            if self.rest_url is None:
                raise ValueError("PINK_VENUE_REST_URL is required for the simulator")
            return self
        missing = [f"PINK_VENUE_{name.upper()}" for name in ("api_key", "secret_key") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required for environment {self.environment}")
        for name in ("api_key", "secret_key"):
            secret = getattr(self, name)
            if secret is not None and len(secret.get_secret_value().strip()) < 8:
                raise ValueError(f"PINK_VENUE_{name.upper()} is too short to be a BingX key")
        return self

    @property
    def rest_root(self) -> str:
        if self.rest_url is not None:
            return self.rest_url.rstrip("/")
        return BASE_URLS[self.environment][0]

    @property
    def ws_root(self) -> str:
        if self.ws_url is not None:
            return self.ws_url
        if self.environment == "simulator":
            # The simulator serves both on one port.
            return self.rest_root.replace("http", "ws", 1) + "/swap-market"
        return BASE_URLS[self.environment][1]

    def credentials(self) -> tuple[SecretStr, SecretStr]:
        """The key pair (the simulator's published demo pair unless set)."""
        return (
            self.api_key if self.api_key is not None else SecretStr(DEMO_API_KEY),
            self.secret_key if self.secret_key is not None else SecretStr(DEMO_SECRET_KEY),
        )
