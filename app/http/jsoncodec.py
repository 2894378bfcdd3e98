"""JSON for GraphQL over HTTP and websockets through orjson, giving what the standard
library (Strawberry's encoder: `json.dumps(data, separators=(",", ":"))`, and `json.loads`)
gives: the same bytes for strings (non-ASCII escaped as \\uXXXX), the same values and the
same errors. What orjson does not do the same way goes to `json`: lone surrogates and ints
past 64 bits (encoding), and NaN, Infinity, lone surrogate escapes, BOMs and 19-digit
numbers (decoding; orjson reads the last as floats). One difference is left, in numbers
only: floats below 1e-4 or from 1e16 are written as JavaScript writes them (`1e-7`,
`0.00001`), not as Python's repr (`1e-07`, `1e-05`): the same values for every client.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# json.dumps escapes DEL too.
_NON_ASCII = re.compile("[^\x00-\x7e]")
_LONG_INT = re.compile(r"\d{19}")
_LONG_INT_BYTES = re.compile(rb"\d{19}")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as json.dumps writes it
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def dumps(data: object) -> bytes:
    try:
        out = orjson.dumps(data)
    except orjson.JSONEncodeError:
        return json.dumps(data, separators=(",", ":")).encode()
    if out.isascii() and b"\x7f" not in out:
        return out
    return _NON_ASCII.sub(_escape, out.decode()).encode()


def loads(data: str | bytes) -> Any:
    """json.loads(data): its result, or its error."""
    long_int = _LONG_INT_BYTES.search(data) if isinstance(data, bytes) else _LONG_INT.search(data)
    if long_int is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json's own message, or what json accepts and orjson does not
    return json.loads(data)
