"""Signing exactly as BingX (API.md §2): vectors, where parameters go, and every auth error."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from services.venue.sim.clock import ManualClock
from services.venue.sim.config import DEMO_SECRET_KEY
from services.venue.sim.signing import sign
from tests.venue_sim.helpers import SimClient, running

BALANCE = "/openApi/swap/v2/user/balance"
LEVERAGE = "/openApi/swap/v2/trade/leverage"


def test_signature_vectors_of_api_md() -> None:
    assert (
        sign(DEMO_SECRET_KEY, "symbol=BTC-USDT&timestamp=1667872120843&side=LONG&leverage=6")
        == "4f581ecdb1fa09b9d6e57886b6f70cffed17f82b93399722939e49a38edec2bf"
    )
    assert (
        sign(DEMO_SECRET_KEY, "symbol=BTC-USDT&timestamp=1668159715051side=LONG&leverage=6")
        == "8b756b01e7a30f02e19c58a91ab01b29528694316b08a51ecb8dd072942bd47d"
    )
    assert (
        sign(DEMO_SECRET_KEY, "recvWindow=0&symbol=BTC-USDT&timestamp=1696751141337")
        == "f8d883609dfd31c824feb4de865b071008dedb1d461451fa70847875c8e7a7a2"
    )


@pytest.mark.anyio
async def test_vector_request_accepted_in_received_order() -> None:
    # The doc's request, unsorted, at the doc's time: the server signs the order received.
    payload = "symbol=BTC-USDT&timestamp=1667872120843&side=LONG&leverage=6"
    query = f"{payload}&signature=4f581ecdb1fa09b9d6e57886b6f70cffed17f82b93399722939e49a38edec2bf"
    async with running(clock=ManualClock(1667872120843)) as client:
        reply = await client.raw("POST", LEVERAGE, query=query, headers={"X-BX-APIKEY": client.api_key})
    # Signature and timestamp pass; the business rule (one-way mode wants side BOTH) answers.
    assert reply.status == 200
    assert reply.body["code"] == 109400


@pytest.mark.anyio
async def test_query_plus_body_concatenated_as_old_docs() -> None:
    signature = "8b756b01e7a30f02e19c58a91ab01b29528694316b08a51ecb8dd072942bd47d"
    async with running(clock=ManualClock(1668159715051)) as client:
        reply = await client.raw(
            "POST",
            LEVERAGE,
            query=f"symbol=BTC-USDT&timestamp=1668159715051&signature={signature}",
            body="side=LONG&leverage=6",
            headers={"X-BX-APIKEY": client.api_key},
        )
    assert reply.body["code"] == 109400


@pytest.mark.anyio
async def test_form_body_only(client: SimClient) -> None:
    body = client.signed_query({"symbol": "BTC-USDT", "side": "BOTH", "leverage": 7})
    reply = await client.raw("POST", LEVERAGE, body=body, headers={"X-BX-APIKEY": client.api_key})
    assert reply.data["longLeverage"] == 7


@pytest.mark.anyio
async def test_query_wins_over_body_on_duplicates(client: SimClient) -> None:
    query = client.signed_query({"symbol": "BTC-USDT", "side": "BOTH", "leverage": 9})
    reply = await client.raw("POST", LEVERAGE, query=query, body="leverage=3", headers={"X-BX-APIKEY": client.api_key})
    # The signature covers query & body joined by "&"; the query's leverage is the one applied.
    assert reply.body["code"] == 100001
    ts = client.clock.now_ms()
    signed = f"leverage=9&side=BOTH&symbol=BTC-USDT&timestamp={ts}&leverage=3"
    query = f"leverage=9&side=BOTH&symbol=BTC-USDT&timestamp={ts}&signature={sign(client.secret, signed)}"
    reply = await client.raw("POST", LEVERAGE, query=query, body="leverage=3", headers={"X-BX-APIKEY": client.api_key})
    assert reply.data["longLeverage"] == 9


@pytest.mark.anyio
async def test_json_values_signed_raw_sent_encoded(client: SimClient) -> None:
    orders = (
        '[{"symbol":"BTC-USDT","side":"BUY","type":"LIMIT","positionSide":"BOTH","quantity":"0.001","price":"50000"}]'
    )
    reply = await client.call("POST", "/openApi/swap/v2/trade/batchOrders", {"batchOrders": orders})
    assert len(reply.data["orders"]) == 1
    assert "%22" in client.signed_query({"batchOrders": orders})


@pytest.mark.anyio
async def test_missing_key(client: SimClient) -> None:
    reply = await client.raw("GET", BALANCE, query=client.signed_query({}))
    assert (reply.status, reply.body["code"]) == (200, 100413)
    assert reply.body["data"] == {}


@pytest.mark.anyio
async def test_wrong_key(client: SimClient) -> None:
    reply = await client.raw("GET", BALANCE, query=client.signed_query({}), headers={"X-BX-APIKEY": "nope"})
    assert reply.body["code"] == 100413


@pytest.mark.anyio
async def test_missing_signature(client: SimClient) -> None:
    query = f"timestamp={client.clock.now_ms()}"
    reply = await client.raw("GET", BALANCE, query=query, headers={"X-BX-APIKEY": client.api_key})
    assert reply.body["code"] == 100412


@pytest.mark.anyio
async def test_bad_signature(client: SimClient) -> None:
    query = f"timestamp={client.clock.now_ms()}&signature={'0' * 64}"
    reply = await client.raw("GET", BALANCE, query=query, headers={"X-BX-APIKEY": client.api_key})
    assert (reply.status, reply.body["code"]) == (200, 100001)


@pytest.mark.anyio
async def test_tampered_parameter(client: SimClient) -> None:
    query = client.signed_query({"symbol": "BTC-USDT"}).replace("BTC-USDT", "ETH-USDT")
    reply = await client.raw(
        "GET", "/openApi/swap/v2/user/positions", query=query, headers={"X-BX-APIKEY": client.api_key}
    )
    assert reply.body["code"] == 100001


@pytest.mark.anyio
async def test_stale_and_future_and_missing_timestamps(client: SimClient) -> None:
    now = client.clock.now_ms()
    headers = {"X-BX-APIKEY": client.api_key}
    stale = await client.raw("GET", BALANCE, query=client.signed_query({}, timestamp=now - 5001), headers=headers)
    assert stale.body["code"] == 100421
    edge = await client.raw("GET", BALANCE, query=client.signed_query({}, timestamp=now - 5000), headers=headers)
    assert edge.body["code"] == 0
    future = await client.raw("GET", BALANCE, query=client.signed_query({}, timestamp=now + 1001), headers=headers)
    assert future.body["code"] == 100421
    missing = f"symbol=BTC-USDT&signature={sign(client.secret, 'symbol=BTC-USDT')}"
    reply = await client.raw("GET", BALANCE, query=missing, headers=headers)
    assert reply.body["code"] == 100421


@pytest.mark.anyio
async def test_recv_window_widens_the_window(client: SimClient) -> None:
    now = client.clock.now_ms()
    headers = {"X-BX-APIKEY": client.api_key}
    query = client.signed_query({"recvWindow": 20000}, timestamp=now - 15000)
    assert (await client.raw("GET", BALANCE, query=query, headers=headers)).body["code"] == 0
    query = client.signed_query({"recvWindow": "abc"})
    assert (await client.raw("GET", BALANCE, query=query, headers=headers)).body["code"] == 100400
    # Digits Python's str.isdigit() accepts but int() does not: still BingX's codes, never HTTP 500.
    query = client.signed_query({"recvWindow": "\u00b2"})
    assert (await client.raw("GET", BALANCE, query=query, headers=headers)).body["code"] == 100400
    superscript = await client.raw("GET", BALANCE, query=client.signed_query({"timestamp": "\u00b2"}), headers=headers)
    assert (superscript.status, superscript.body["code"]) == (200, 100421)


@pytest.mark.anyio
async def test_unsigned_public_endpoint_needs_nothing(client: SimClient) -> None:
    reply = await client.public("/openApi/swap/v2/server/time")
    assert reply.data == {"serverTime": client.clock.now_ms()}


@pytest.mark.anyio
async def test_percent_encoded_values_are_decoded_before_checking(client: SimClient) -> None:
    ts = client.clock.now_ms()
    raw = f"symbol=BTC-USDT&timestamp={ts}"
    query = f"symbol={quote('BTC-USDT', safe='')}&timestamp={ts}&signature={sign(client.secret, raw)}"
    reply = await client.raw(
        "GET", "/openApi/swap/v2/user/positions", query=query, headers={"X-BX-APIKEY": client.api_key}
    )
    assert reply.data == []
