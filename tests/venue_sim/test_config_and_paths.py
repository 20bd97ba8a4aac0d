"""Settings validation, environment parsing, and the CSV price path."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.config import ConfigError, load_settings
from services.venue.sim.config import DEMO_API_KEY, SimSettings
from services.venue.sim.prices import load_csv
from tests.venue_sim.helpers import running, settings_for_tests


def test_defaults_are_the_documented_demo_setup() -> None:
    settings = SimSettings()
    assert settings.api_key.get_secret_value() == DEMO_API_KEY
    assert [s.symbol for s in settings.symbols] == ["BTC-USDT", "ETH-USDT"]
    assert (settings.taker_fee_rate, settings.maker_fee_rate) == (Decimal("0.0005"), Decimal("0.0002"))
    assert settings.listen_key_minutes == 60


def test_environment_json_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINK_SIM_SEED", "9")
    monkeypatch.setenv("PINK_SIM_FAULTS", '{"latency_ms": 5, "http_error_rate": 0.1}')
    monkeypatch.setenv(
        "PINK_SIM_SYMBOLS",
        '[{"symbol":"SOL-USDT","price_precision":3,"quantity_precision":1,"min_quantity":"0.1",'
        '"min_notional":"2","initial_price":"150.000"}]',
    )
    settings = load_settings(SimSettings)
    assert settings.seed == 9
    assert settings.faults.latency_ms == 5
    assert settings.symbols[0].tick == Decimal("0.001")


def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINK_SIM_TAKER_FEE_RATE", "0.5")
    monkeypatch.setenv("PINK_SIM_TYPO", "1")
    with pytest.raises(ConfigError) as raised:
        load_settings(SimSettings)
    names = {name for name, _ in raised.value.problems}
    assert {"PINK_SIM_TAKER_FEE_RATE", "PINK_SIM_TYPO"} <= names


def test_csv_path_needs_a_file_and_unique_symbols(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="PINK_SIM_PRICE_CSV"):
        settings_for_tests(price_path="csv")
    with pytest.raises(ValidationError, match="no such file"):
        settings_for_tests(price_path="csv", price_csv=tmp_path / "missing.csv")
    spec = SimSettings().symbols[0]
    with pytest.raises(ValidationError):
        settings_for_tests(symbols=[spec, spec])


@pytest.mark.anyio
async def test_csv_prices_replay_tick_by_tick(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "symbol,price\nBTC-USDT,50000\nETH-USDT,2000\nBTC-USDT,50100.55\nETH-USDT,2010\nBTC-USDT,49900\n",
        encoding="utf-8",
    )
    async with running(settings_for_tests(price_path="csv", price_csv=path)) as client:
        first = await client.public("/openApi/swap/v1/ticker/price", {"symbol": "BTC-USDT"})
        assert first.data["price"] == "50000"
        walked = [(await client.control("advance", {"ticks": 1}))["prices"] for _ in range(3)]
        # Truncated to the tick; the end wraps around to the first row.
        assert [w["BTC-USDT"] for w in walked] == ["50100.5", "49900.0", "50000.0"]
        assert [w["ETH-USDT"] for w in walked] == ["2010.00", "2000.00", "2010.00"]


def test_csv_must_price_every_symbol(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("symbol,price\nBTC-USDT,50000\n", encoding="utf-8")
    with pytest.raises(ValueError, match="ETH-USDT"):
        load_csv(path, ["BTC-USDT", "ETH-USDT"])
    path.write_text("symbol,price\nBTC-USDT,-1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="positive"):
        load_csv(path, ["BTC-USDT"])


def test_no_test_holds_an_exchange_url() -> None:
    """[L8] tests name no exchange URL: BingX is the simulator on a loopback port."""
    # Tests reach BingX only as the simulator on a loopback port (legacy L8: hard-coded VST URLs).
    # Comparing a configuration value with a URL (``assert settings.rest_root == "https://..."``)
    # connects nowhere and is allowed; a URL anywhere else is not.
    exchange_host = re.compile(r"bingx\.(com|io)\b|open-api[\w-]*\.bingx", re.IGNORECASE)
    config_check = re.compile(r"assert [\w.]+ == [\"']")
    tests_dir = Path(__file__).resolve().parents[1]
    sources = [p for p in tests_dir.rglob("*") if p.is_file() and p.suffix in {".py", ".json", ".toml", ".txt", ".tsv"}]
    assert len(sources) > 10
    offending = [
        f"{path.relative_to(tests_dir)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if exchange_host.search(line) and not config_check.match(line.strip())
    ]
    assert offending == []
