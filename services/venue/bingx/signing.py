"""BingX request signing (API.md §2): sorted parameters, HMAC-SHA256 over the raw values."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["sign", "signed_query", "text"]


def text(value: object) -> str:
    """A parameter value as BingX reads it: booleans lower-case, everything else as ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sign(secret: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``payload`` keyed by ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(params: Mapping[str, object], secret: str) -> str:
    """``k=v&...&signature=..``: keys sorted, signed over the raw values, values URL-encoded.

    The same order is signed and sent (API.md §2.2); JSON-valued parameters stay exact
    because the signature covers the un-encoded text.
    """
    items = sorted((key, text(value)) for key, value in params.items())
    raw = "&".join(f"{key}={value}" for key, value in items)
    encoded = "&".join(f"{key}={quote(value, safe='')}" for key, value in items)
    return f"{encoded}&signature={sign(secret, raw)}"
