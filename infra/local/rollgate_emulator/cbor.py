"""A small CBOR (RFC 8949) codec: what Smithy's RPCv2-CBOR protocol sends and expects.

Decoding covers every major type, definite and indefinite lengths, half/single/double
floats and tags (tag 1, epoch-seconds timestamps, becomes a `datetime` in UTC).
Encoding covers None, bool, int, float, str, bytes, list/tuple, dict and `datetime`
(written as tag 1 with a float).
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from typing import Any

_BREAK = object()


class CBORError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CBORError("truncated CBOR input")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def argument(self, info: int) -> int | None:
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            return int.from_bytes(self.take(size), "big")
        if info == 31:
            return None  # indefinite length
        raise CBORError(f"reserved additional information {info}")

    def item(self) -> Any:
        head = self.take(1)[0]
        major, info = head >> 5, head & 0x1F
        if major == 7:
            return self.simple(info)
        arg = self.argument(info)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            if arg is None:
                parts = []
                while (part := self.item()) is not _BREAK:
                    parts.append(part)
                return (b"" if major == 2 else "").join(parts)
            raw = self.take(arg)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            if arg is None:
                out = []
                while (value := self.item()) is not _BREAK:
                    out.append(value)
                return out
            return [self.item() for _ in range(arg)]
        if major == 5:
            out: dict[Any, Any] = {}
            if arg is None:
                while (key := self.item()) is not _BREAK:
                    out[key] = self.item()
                return out
            for _ in range(arg):
                key = self.item()
                out[key] = self.item()
            return out
        # major 6: a tag
        value = self.item()
        if arg == 1 and isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        return value

    def simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return _half(int.from_bytes(self.take(2), "big"))
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        if info == 31:
            return _BREAK
        if info < 24:
            return None
        if info == 24:
            self.take(1)
            return None
        raise CBORError(f"unsupported simple value {info}")


def _half(bits: int) -> float:
    sign = -1.0 if bits & 0x8000 else 1.0
    exp = (bits >> 10) & 0x1F
    frac = bits & 0x3FF
    if exp == 0:
        return sign * frac * 2.0 ** -24
    if exp == 31:
        return sign * float("inf") if frac == 0 else float("nan")
    return sign * (1 + frac / 1024) * 2.0 ** (exp - 15)


def loads(data: bytes) -> Any:
    if not data:
        return {}
    reader = _Reader(data)
    value = reader.item()
    if value is _BREAK:
        raise CBORError("unexpected break")
    if reader.pos != len(data):
        raise CBORError("trailing bytes after the CBOR item")
    return value


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise CBORError("integer too large for CBOR")


def dumps(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        out += b"\xfb" + struct.pack(">d", value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += _head(3, len(raw)) + raw
    elif isinstance(value, (bytes, bytearray)):
        out += _head(2, len(value)) + bytes(value)
    elif isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        out += b"\xc1" + b"\xfb" + struct.pack(">d", when.timestamp())
    elif isinstance(value, (list, tuple)):
        out += _head(4, len(value))
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        out += _head(5, len(value))
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    else:
        raise CBORError(f"cannot encode {type(value).__name__} as CBOR")
