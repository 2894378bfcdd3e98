"""orjson behind GraphQL's JSON gives what the standard library gives (app/http/jsoncodec)."""

from __future__ import annotations

import json
import random

import pytest

from app.http import jsoncodec

pytestmark = pytest.mark.no_db


def _text(rng: random.Random) -> str:
    ranges = [(0, 0x7F), (0x80, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(0, 12)))


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 2:  # floats where Python's repr and orjson agree (1e-4 <= |x| < 1e16)
        return rng.choice([-1, 1]) * rng.uniform(1e-4, 1e15)
    if kind == 3:
        return rng.choice([None, True, False, 0.5, 100.0, -0.0])
    if kind == 4:
        return rng.choice(["", '\n\t"\\/', "\x00\x1f\x7f", "\u2028\u2029", "é😀"])
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_encoding_gives_the_standard_librarys_bytes() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        value = {"data": _value(rng)}
        assert jsoncodec.dumps(value) == json.dumps(value, separators=(",", ":")).encode()
    # What orjson refuses is encoded by json: lone surrogates, ints past 64 bits.
    for odd in ({"a": "\ud800"}, {"n": 2**70}):
        assert jsoncodec.dumps(odd) == json.dumps(odd, separators=(",", ":")).encode()


def test_decoding_gives_the_standard_librarys_values_and_errors() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        text = json.dumps({"v": _value(rng)})
        assert jsoncodec.loads(text) == json.loads(text)
        assert jsoncodec.loads(text.encode()) == json.loads(text.encode())
    for odd in [
        '{"a":"\\ud800"}',
        '{"a":18446744073709551616}',
        '{"a":-9223372036854775809}',
        '{"a":1e400}',
        "\ufeff{}",
        '{"a":1,"a":2}',
    ]:
        try:
            expected: object = json.loads(odd)
        except json.JSONDecodeError as exc:
            with pytest.raises(json.JSONDecodeError) as raised:
                jsoncodec.loads(odd)
            assert (raised.value.msg, raised.value.pos) == (exc.msg, exc.pos)
            continue
        got = jsoncodec.loads(odd)
        assert repr(got) == repr(expected) and type(got) is type(expected)
    nan = jsoncodec.loads('{"a":NaN}')
    assert isinstance(nan, dict) and nan["a"] != nan["a"]
    for broken in ['{"a":', "[1,]", '{"a":"x\x01"}', ""]:
        with pytest.raises(json.JSONDecodeError) as raised:
            jsoncodec.loads(broken)
        with pytest.raises(json.JSONDecodeError) as reference:
            json.loads(broken)
        assert raised.value.msg == reference.value.msg
