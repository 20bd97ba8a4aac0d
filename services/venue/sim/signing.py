"""BingX request signing (API.md §2): parameter parsing and signature verification.

Parameters may come in the query string, an ``application/x-www-form-urlencoded`` body, or
both; on a duplicate name the query wins. The signature is the lower-case hex HMAC-SHA256 of
the parameter string with ``signature`` removed, in the order received. Clients sign the
URL-decoded values (ccxt, the official demo); the raw text as received is accepted as well,
and for a query plus a body both the ``&``-joined form and the old docs' direct
concatenation are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from services.venue.sim.wire import ApiError, Code

__all__ = ["Params", "SignedRequest", "parse_pairs", "sign", "verify"]

Pair = tuple[str, str]
# ASCII digits only: str.isdigit() also passes "²", which int() refuses.
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_UNSIGNED = re.compile(r"[0-9]{1,19}")


def sign(secret: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``payload`` keyed by ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def parse_pairs(raw: str) -> list[tuple[str, str, str]]:
    """``(name, decoded value, raw "k=v" text)`` for each pair of a query or form string, in order."""
    pairs: list[tuple[str, str, str]] = []
    for chunk in raw.split("&"):
        if not chunk:
            continue
        name, _, value = chunk.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value), chunk))
    return pairs


@dataclass(frozen=True, slots=True)
class Params:
    """Request parameters, query winning over body on duplicate names."""

    values: dict[str, str]

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value not in {None, ""} else None

    def first(self, *names: str) -> str | None:
        """The first of ``names`` that is present and non-empty (for spelling variants)."""
        for name in names:
            value = self.get(name)
            if value is not None:
                return value
        return None

    def integer(self, name: str) -> int | None:
        """An optional integer parameter (80014 when it is not one)."""
        value = self.get(name)
        if value is None:
            return None
        if _INTEGER.fullmatch(value) is None:
            raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be an integer")
        return int(value)

    def bounded(self, name: str, *, default: int, low: int, high: int) -> int:
        """An optional integer parameter within ``low..high`` (80014 outside it)."""
        value = self.integer(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be {low}-{high}")
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:parameter {name} is must")
        return value


@dataclass(frozen=True, slots=True)
class SignedRequest:
    query: str
    body: str
    api_key: str | None


def merge(query: str, body: str) -> Params:
    values: dict[str, str] = {}
    for name, value, _ in parse_pairs(body):
        values[name] = value
    for name, value, _ in parse_pairs(query):
        values[name] = value
    return Params(values)


def _candidates(query: str, body: str) -> tuple[str | None, list[str]]:
    """The signature sent and every parameter string it may have been computed over."""
    query_pairs = parse_pairs(query)
    body_pairs = parse_pairs(body)
    signature: str | None = None
    for name, value, _ in [*body_pairs, *query_pairs]:
        if name == "signature" and value:
            signature = value
    kept_query = [pair for pair in query_pairs if pair[0] != "signature"]
    kept_body = [pair for pair in body_pairs if pair[0] != "signature"]
    decoded_q = "&".join(f"{name}={value}" for name, value, _ in kept_query)
    decoded_b = "&".join(f"{name}={value}" for name, value, _ in kept_body)
    raw_q = "&".join(raw for _, _, raw in kept_query)
    raw_b = "&".join(raw for _, _, raw in kept_body)
    strings: list[str] = []
    for q, b in ((decoded_q, decoded_b), (raw_q, raw_b)):
        if q and b:
            strings.extend((f"{q}&{b}", q + b))
        else:
            strings.append(q or b)
    return signature, strings


def verify(
    request: SignedRequest,
    *,
    api_key: str,
    secret: str,
    now_ms: int,
    default_window_ms: int,
    max_window_ms: int,
    future_tolerance_ms: int,
) -> Params:
    """Check key, signature and timestamp in BingX's order (§2.5); the parameters if all pass.

    Raises:
        ApiError: 100413 bad or missing key, 100412 no signature, 100001 mismatch,
            100421 missing or stale timestamp, 100400 bad recvWindow.
    """
    if not request.api_key:
        raise ApiError(Code.BAD_API_KEY, "Null apiKey")
    if not hmac.compare_digest(request.api_key.encode(), api_key.encode()):
        raise ApiError(Code.BAD_API_KEY, "Incorrect apiKey")
    signature, strings = _candidates(request.query, request.body)
    if signature is None:
        raise ApiError(Code.NULL_SIGNATURE, "Null signature")
    sent = signature.lower().encode()
    if not any(hmac.compare_digest(sign(secret, text).encode(), sent) for text in strings):
        raise ApiError(Code.SIGNATURE_MISMATCH, "Signature verification failed: signature mismatch")
    params = merge(request.query, request.body)
    check_timestamp(
        params,
        now_ms=now_ms,
        default_window_ms=default_window_ms,
        max_window_ms=max_window_ms,
        future_tolerance_ms=future_tolerance_ms,
    )
    return params


def check_timestamp(
    params: Params, *, now_ms: int, default_window_ms: int, max_window_ms: int, future_tolerance_ms: int
) -> None:
    raw_ts = params.get("timestamp")
    if raw_ts is None or _UNSIGNED.fullmatch(raw_ts) is None:
        raise ApiError(Code.TIMESTAMP, "Null timestamp or timestamp mismatch")
    window = default_window_ms
    raw_window = params.get("recvWindow")
    if raw_window is not None:
        if _UNSIGNED.fullmatch(raw_window) is None or int(raw_window) > max_window_ms:
            raise ApiError(Code.BAD_REQUEST, f"Invalid parameters, err:recvWindow must be 0..{max_window_ms}")
        window = int(raw_window) or default_window_ms
    timestamp = int(raw_ts)
    if timestamp < now_ms - window or timestamp > now_ms + future_tolerance_ms:
        raise ApiError(
            Code.TIMESTAMP,
            f"Null timestamp or timestamp mismatch: timestamp {timestamp}, server time {now_ms}, recvWindow {window}",
        )
