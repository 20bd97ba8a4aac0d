"""BingX's wire conventions: the ``{code,msg,data}`` envelope, error codes, exact JSON output.

Decimals go out as strings where BingX sends strings (the views format them with :func:`dec`)
and as JSON numbers where BingX sends numbers (a ``Decimal`` value left in the document);
ids are JSON integers. :func:`dumps` writes ``Decimal`` without ever passing through float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from aiohttp import web

__all__ = [
    "ApiError",
    "Code",
    "dec",
    "dumps",
    "envelope",
    "error_body",
    "json_response",
]


class Code:
    """The BingX error codes the simulator answers with (API.md §3.3)."""

    SIGNATURE_MISMATCH: Final = 100001
    PERMISSION_DENIED: Final = 100004
    BAD_REQUEST: Final = 100400
    RATE_LIMITED: Final = 100410
    NULL_SIGNATURE: Final = 100412
    BAD_API_KEY: Final = 100413
    TIMESTAMP: Final = 100421
    INTERNAL: Final = 100500
    REQUEST_FAILED: Final = 80001
    TOO_MANY_ORDERS: Final = 80013
    INVALID_PARAMETER: Final = 80014
    ORDER_NOT_FOUND: Final = 80016
    ORDER_FILLED: Final = 80018
    INSUFFICIENT_MARGIN: Final = 101204
    NO_POSITION: Final = 101205
    POST_ONLY_TAKES: Final = 101215
    REDUCE_ONLY_INCREASES: Final = 101290
    MIN_SIZE: Final = 101400
    LEVERAGE_TOO_HIGH: Final = 101414
    DUPLICATE_CLIENT_ID: Final = 101481
    CANCEL_REPEATED: Final = 109201
    MODE_PARAMETER: Final = 109400
    MODE_CHANGE_BLOCKED: Final = 109401
    SYMBOL_NOT_EXIST: Final = 109425
    WS_TOO_MANY_TOPICS: Final = 80403


class ApiError(Exception):
    """A business error: answered with HTTP 200 and ``{"code": code, "msg": msg, "data": {}}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


def dec(value: Decimal) -> str:
    """A decimal as BingX writes it in strings: plain notation, never an exponent."""
    # -0 and -0.00 read as a short position of nothing.
    return format(abs(value) if value.is_zero() else value, "f")


_SCALARS: dict[object, str] = {None: "null", True: "true", False: "false"}


def _write(value: object, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        out.append(_SCALARS[value])
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        out.append(format(value, "f"))
    elif isinstance(value, Mapping):
        _write_object(value, out)
    elif isinstance(value, Sequence):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_object(value: Mapping[object, object], out: list[str]) -> None:
    out.append("{")
    for index, (key, item) in enumerate(value.items()):
        if index:
            out.append(",")
        out.append(json.dumps(str(key)))
        out.append(":")
        _write(item, out)
    out.append("}")


def dumps(value: object) -> str:
    """Compact JSON of ``value``; ``Decimal`` becomes a JSON number written digit for digit."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def envelope(data: object) -> dict[str, object]:
    return {"code": 0, "msg": "", "data": data}


def error_body(code: int, msg: str) -> dict[str, object]:
    return {"code": code, "msg": msg, "data": {}}


def json_response(body: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(body), status=status, content_type="application/json", headers=headers)
