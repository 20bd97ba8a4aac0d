"""The non-swap BingX endpoints a third-party client (ccxt's ``bingx``) calls around the swap API.

ccxt's ``load_markets`` asks, besides the USDT-M contracts (``/openApi/swap/v2/quote/contracts``,
served by the swap views), for the spot symbols and the coin-M contracts, and — when it holds an
API key — for the wallet's coin configuration (deposit and withdrawal networks). PINK trades
none of these and the simulator models no deposits or withdrawals, so each is answered in
BingX's ``{code,msg,data}`` envelope with nothing listed: ccxt then builds its currency table
from the USDT-M markets. The routes run through the same pipeline as every other ``/openApi``
route (rate limits, injected faults, and for the signed wallet endpoint the key, signature and
timestamp checks). docs/simulator-ccxt.md lists every request ccxt sends and the answers.
"""

from __future__ import annotations

from services.venue.sim.http import Call, Endpoint

__all__ = ["ENDPOINTS"]


async def _spot_symbols(call: Call) -> object:
    """``GET /openApi/spot/v1/common/symbols``: the spot symbols — none."""
    del call
    return {"symbols": []}


async def _coin_m(call: Call) -> object:
    """``GET /openApi/cswap/v1/market/contracts``: the coin-M (inverse) contracts — none."""
    del call
    return []


async def _wallet_coins(call: Call) -> object:
    """``GET /openApi/wallets/v1/capital/config/getall`` (signed): coins with deposit/withdrawal networks — none."""
    del call
    return []


#: The non-swap endpoints; public market data is rate-limited as IP group 1, the wallet as group 2.
ENDPOINTS = [
    Endpoint("GET", "/openApi/spot/v1/common/symbols", _spot_symbols, signed=False, uid_per_second=None, group=1),
    Endpoint("GET", "/openApi/cswap/v1/market/contracts", _coin_m, signed=False, uid_per_second=None, group=1),
    Endpoint("GET", "/openApi/wallets/v1/capital/config/getall", _wallet_coins, uid_per_second=5, group=2),
]
