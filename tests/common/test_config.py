"""services.common.config: typed settings from the environment, errors naming every variable."""

from __future__ import annotations

import traceback

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.common.config import ConfigError, ServiceSettings, load_settings

SENSITIVE_VALUE = "hunter2-do-not-print"


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PINK_DEMO_")

    venue_address: str = Field(min_length=3)
    api_key: SecretStr = Field(min_length=32)
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USDT"])


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for prefix in ("PINK_DEMO_", "PINK_"):
        for name in ServiceSettings.model_fields:
            monkeypatch.delenv(f"{prefix}{name.upper()}", raising=False)
    for name in ("VENUE_ADDRESS", "API_KEY", "SYMBOLS"):
        monkeypatch.delenv(f"PINK_DEMO_{name}", raising=False)
    return monkeypatch


def test_defaults() -> None:
    settings = load_settings(ServiceSettings)
    assert settings.host == "127.0.0.1"
    assert settings.port == 0
    assert settings.metrics_host == "127.0.0.1"
    assert settings.metrics_port is None
    assert settings.log_level == "INFO"
    assert settings.drain_seconds == 0.0
    assert settings.grace_seconds == 5.0
    assert settings.max_concurrent_rpcs == 256
    assert settings.max_message_bytes == 16 * 1024 * 1024


def test_environment_with_prefix_and_overrides(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PINK_DEMO_VENUE_ADDRESS", "127.0.0.1:7001")
    clean_env.setenv("PINK_DEMO_API_KEY", SENSITIVE_VALUE * 2)
    clean_env.setenv("PINK_DEMO_PORT", "7000")
    clean_env.setenv("PINK_DEMO_METRICS_PORT", "9100")
    clean_env.setenv("PINK_DEMO_LOG_LEVEL", "DEBUG")
    clean_env.setenv("PINK_DEMO_SYMBOLS", '["ETH-USDT", "BTC-USDT"]')
    settings = load_settings(DemoSettings, port=7002, drain_seconds=1.5)
    assert settings.venue_address == "127.0.0.1:7001"
    assert settings.api_key.get_secret_value() == SENSITIVE_VALUE * 2
    assert settings.port == 7002  # the override wins over the environment
    assert settings.metrics_port == 9100
    assert settings.log_level == "DEBUG"
    assert settings.drain_seconds == 1.5
    assert settings.symbols == ["ETH-USDT", "BTC-USDT"]
    assert SENSITIVE_VALUE not in repr(settings)
    assert SENSITIVE_VALUE not in str(settings)
    assert SENSITIVE_VALUE not in settings.model_dump_json()


def test_settings_are_immutable() -> None:
    settings = load_settings(ServiceSettings)
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1


def test_error_lists_every_variable_and_never_the_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PINK_DEMO_API_KEY", SENSITIVE_VALUE)  # too short: invalid
    clean_env.setenv("PINK_DEMO_PORT", "not-a-port")
    clean_env.setenv("PINK_DEMO_DRAIN_SECONDS", "61")
    clean_env.setenv("PINK_DEMO_LOG_LEVEL", "TRACE")
    with pytest.raises(ConfigError) as caught:
        load_settings(DemoSettings, grace_seconds=0, bogus=1)
    error = caught.value
    names = [name for name, _ in error.problems]
    assert sorted(names) == [
        "PINK_DEMO_API_KEY",
        "PINK_DEMO_BOGUS",
        "PINK_DEMO_DRAIN_SECONDS",
        "PINK_DEMO_GRACE_SECONDS",
        "PINK_DEMO_LOG_LEVEL",
        "PINK_DEMO_PORT",
        "PINK_DEMO_VENUE_ADDRESS",
    ]
    problems = dict(error.problems)
    assert problems["PINK_DEMO_VENUE_ADDRESS"] == "required but not set"
    assert problems["PINK_DEMO_BOGUS"] == "unknown setting"
    assert "60" in problems["PINK_DEMO_DRAIN_SECONDS"]
    assert "greater than 0" in problems["PINK_DEMO_GRACE_SECONDS"]
    message = str(error)
    for name in names:
        assert f"{name}: " in message
    everything = "".join(traceback.format_exception(error)) + repr(error)
    assert SENSITIVE_VALUE not in everything
    assert "not-a-port" not in everything  # no input values at all


def test_out_of_range_values(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PINK_PORT", "65536")
    clean_env.setenv("PINK_METRICS_PORT", "-1")
    clean_env.setenv("PINK_MAX_CONCURRENT_RPCS", "0")
    clean_env.setenv("PINK_MAX_MESSAGE_BYTES", "0")
    clean_env.setenv("PINK_GRACE_SECONDS", "121")
    clean_env.setenv("PINK_HOST", "")
    with pytest.raises(ConfigError) as caught:
        load_settings(ServiceSettings)
    assert sorted(name for name, _ in caught.value.problems) == [
        "PINK_GRACE_SECONDS",
        "PINK_HOST",
        "PINK_MAX_CONCURRENT_RPCS",
        "PINK_MAX_MESSAGE_BYTES",
        "PINK_METRICS_PORT",
        "PINK_PORT",
    ]


def test_unparseable_complex_value_is_a_config_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PINK_DEMO_VENUE_ADDRESS", "127.0.0.1:7001")
    clean_env.setenv("PINK_DEMO_API_KEY", SENSITIVE_VALUE * 2)
    clean_env.setenv("PINK_DEMO_SYMBOLS", "not json")
    with pytest.raises(ConfigError, match="symbols") as caught:
        load_settings(DemoSettings)
    assert "not json" not in str(caught.value)


def test_services_raise_their_own_config_errors() -> None:
    error = ConfigError("the journal belongs to another kernel")
    assert str(error) == "the journal belongs to another kernel"
    assert error.problems == ()


def test_unknown_variables_with_the_service_prefix_are_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PINK_DEMO_VENUE_ADDRESS", "127.0.0.1:7001")
    clean_env.setenv("PINK_DEMO_API_KEY", SENSITIVE_VALUE * 2)
    clean_env.setenv("PINK_DEMO_TRADING_ENABLE", "false")
    clean_env.setenv("PINK_SOMETHING_ELSE", "1")  # the shared prefix belongs to other services too
    with pytest.raises(ConfigError) as raised:
        load_settings(DemoSettings)
    assert raised.value.problems == (("PINK_DEMO_TRADING_ENABLE", "unknown setting (misspelt?)"),)
    assert "false" not in str(raised.value)
