"""The few protobuf wire-format primitives pprof needs, so there is no run-time dependency.

Only varint (wire type 0) and length-delimited (wire type 2) fields are
used; repeated integers are written packed, as proto3 does by default.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Iterable


_MASK64 = (1 << 64) - 1


def varint(value: int) -> bytes:
    """Base-128 varint; negative int64 values take ten bytes (two's complement)."""
    value &= _MASK64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int_field(number: int, value: int) -> bytes:
    """A varint field; zero is the default and is omitted, as proto3 encoders do."""
    return varint(number << 3) + varint(value) if value else b""


def bytes_field(number: int, payload: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def message_field(number: int, payload: bytes) -> bytes:
    """An embedded message (always written, even when empty)."""
    return bytes_field(number, payload)


def packed_field(number: int, values: Iterable[int]) -> bytes:
    payload = b"".join(varint(v) for v in values)
    return bytes_field(number, payload) if payload else b""
