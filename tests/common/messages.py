"""Protobuf messages with fields set by name, for tests that vary one field at a time."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

__all__ = ["set_fields"]

MessageT = TypeVar("MessageT", bound=Message)


def set_fields(message: MessageT, **fields: object) -> MessageT:
    """``message`` with each field set; message-typed values (decimals, lists) are copied in."""
    for name, value in fields.items():
        if isinstance(value, Message):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message
