"""How platforms count text: X's weighted length, Bluesky's graphemes, code points.

X (twitter-text v3): a character weighs 1 inside the ranges of twitter-text's
configuration (Latin, Greek, Cyrillic, ... up to U+10FF, some punctuation), 2 elsewhere
(CJK, most symbols); an emoji, however many code points it is made of (ZWJ sequences,
skin tones, flags, keycaps), weighs 2; every URL weighs 23 (t.co), with or without
`https://`. The weights, the URL length and the limit come from the `twitter-text-parser`
package's configuration, the top-level domains from its lists. Its own `parse_tweet` is the
reference the tests compare with, but it is not run on user text here: its URL regular
expression backtracks super-linearly (1.6 KB of "a.a.a..." takes seconds, 100 KB would take
hours) and would block the event loop. The URL scan below is linear: one regular expression
with possessive repetition finds each run of domain labels once, and the top-level domain
is looked up in a set.

Bluesky counts grapheme clusters (what a reader sees as one character), found with the
`regex` module's `\\X` (flags matched first: see GRAPHEME).

Everything here is linear in the text (100 KB of any shape tried: under 0.1 s).
"""

from __future__ import annotations

import re
import unicodedata

import regex
from twitter_text.config import config as _twitter_config
from twitter_text.extract_urls import is_valid_url
from twitter_text.regexp.latin_accent_chars import latin_accent_chars
from twitter_text.regexp.valid_cctld import valid_cctld
from twitter_text.regexp.valid_general_url_path_chars import valid_general_url_path_chars
from twitter_text.regexp.valid_gtld import valid_gtld
from twitter_text.regexp.valid_url_path_ending_chars import valid_url_path_ending_chars
from twitter_text.regexp.valid_url_query_chars import valid_url_query_chars
from twitter_text.regexp.valid_url_query_ending_chars import valid_url_query_ending_chars

_X = _twitter_config["defaults"]
X_MAX_WEIGHTED_LENGTH: int = _X["max_weighted_tweet_length"]
X_URL_WEIGHT: int = _X["transformed_url_length"]
_SCALE: int = _X["scale"]
_DEFAULT_WEIGHT: int = _X["default_weight"] // _SCALE


def _tlds(pattern: re.Pattern[str]) -> frozenset[str]:
    """The names in one of twitter-text's TLD alternations, `(?:(?:a|b|...)(?=...))`."""
    body = pattern.pattern.removeprefix("(?:(?:")
    body = body[: body.index(")(?=")]
    return frozenset(name.lower() for name in body.split("|"))


_TLDS = _tlds(valid_gtld) | _tlds(valid_cctld)


def _heavy_class() -> str:
    """Code points outside the ranges twitter-text weighs lighter than the default."""
    light = [
        (r["start"], r["end"]) for r in _X["ranges"] if r["weight"] // _SCALE < _DEFAULT_WEIGHT
    ]
    return "[^" + "".join(f"\\U{start:08x}-\\U{end:08x}" for start, end in light) + "]"


_HEAVY = re.compile(_heavy_class())
# One emoji as X counts it: a grapheme cluster holding a pictograph, a regional indicator
# (flags) or a keycap.
_EMOJI_HINT = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")
_EMOJI_CLUSTER = regex.compile(
    r"(?=[\p{Extended_Pictographic}\p{Regional_Indicator}]|[0-9#*]\ufe0f?\u20e3)\X"
)
# `regex` finds \X in a run of regional indicators in quadratic time (it counts back to the
# run's start for each pair): 100,000 of them take a minute. So pairs (flags) are matched
# first, with what may join them (GB9, GB9a), and \X does the rest.
_RI = "[\U0001f1e6-\U0001f1ff]"
GRAPHEME = regex.compile(
    f"{_RI}{{2}}[\\p{{Grapheme_Cluster_Break=Extend}}"
    "\\p{Grapheme_Cluster_Break=SpacingMark}\u200d]*|\\X"
)
# For X, each pair becomes one character that weighs what a flag weighs (2) and is no
# pictograph nor word character.
_RI_PAIR = re.compile(f"{_RI}{{2}}")
_FLAG_FOR_X = "\ufffc"
_NEWLINES = re.compile(r"\r\n|\r")

# A URL candidate. Labels repeat possessively (no backtracking across labels), so each run
# is scanned once; which label ends the domain is decided in Python. It may not follow a
# letter, digit, @, $, # or (without a scheme) - _ . / (twitter-text's rules).
_ACCENTS = latin_accent_chars.pattern
_ASCII_LABEL = f"[a-z0-9{_ACCENTS}](?:[a-z0-9_{_ACCENTS}-]*+)"
_ANY_LABEL = r"[^\W_](?:[\w-]*+)"
_PATH_CHAR = valid_general_url_path_chars.pattern
_URL = re.compile(
    r"(?<![0-9a-z@\uff20$#\uff03])"
    rf"(?:(?P<scheme>https?://)(?P<idn>{_ANY_LABEL}(?:\.{_ANY_LABEL})++)"
    rf"|(?<![-_./])(?P<ascii>{_ASCII_LABEL}(?:\.{_ASCII_LABEL})++))"
    r"(?P<rest>(?::[0-9]++)?"
    rf"(?:/(?:{_PATH_CHAR}|\((?:{_PATH_CHAR})*+\))*+)?"
    rf"(?:\?{valid_url_query_chars.pattern}*+)?)",
    re.IGNORECASE,
)
_AFTER_TLD = re.compile(r"[0-9a-z@+-]", re.IGNORECASE)
_TLD_PREFIX = re.compile(r"[a-z0-9-]+", re.IGNORECASE)


def _tld_length(label: str, following: str) -> int | None:
    """How much of `label` is a top-level domain X recognises (with `following`, the
    character after the label, allowed to follow one), or None."""
    if label.lower() in _TLDS and not _AFTER_TLD.match(following):
        return len(label)
    prefix = _TLD_PREFIX.match(label)
    if (
        prefix
        and prefix.end() < len(label)
        and prefix.group().lower() in _TLDS
        and not _AFTER_TLD.match(label[prefix.end()])
    ):
        return prefix.end()
    return None


def _trim_rest(rest: str) -> str:
    """Drop what a URL may not end with (twitter-text's ending characters)."""
    query = rest.find("?")
    if query >= 0:
        end = len(rest)
        while end > query + 1 and not valid_url_query_ending_chars.fullmatch(rest[end - 1]):
            end -= 1
        return rest[:end] if end > query + 1 else _trim_rest(rest[:query])
    end = len(rest)
    opened, closed = rest.count("("), rest.count(")")
    while end > 0:
        last = rest[end - 1]
        if valid_url_path_ending_chars.fullmatch(last) or (last == ")" and opened >= closed):
            break
        opened -= last == "("
        closed -= last == ")"
        end -= 1
    return rest[:end]


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each URL X would shorten to t.co, in order."""
    spans: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        scheme = match.group("scheme") or ""
        domain = match.group("idn") or match.group("ascii")
        start = match.start()
        domain_start = start + len(scheme)
        labels = domain.split(".")
        end = None
        # The rightmost label that is a TLD ends the domain; labels after it are not part.
        offset = len(domain)
        for index in range(len(labels) - 1, 0, -1):
            label_start = offset - len(labels[index])
            following = text[domain_start + offset : domain_start + offset + 1]
            length = _tld_length(labels[index], following)
            if length is not None:
                end = domain_start + label_start + length
                break
            offset = label_start - 1
        if end is None:
            continue
        domain_end = end
        if end == match.end("idn" if scheme else "ascii"):
            end += len(_trim_rest(match.group("rest")))
        if is_valid_url(text[start:end], scheme or "https://", text[domain_start:domain_end]):
            spans.append((start, end))
    return spans


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = _NEWLINES.sub("\n", text)
    return _RI_PAIR.sub(_FLAG_FOR_X, text)


def _code_point_weight(text: str) -> int:
    heavy = len(text) - len(_HEAVY.sub("", text))
    return len(text) + (_DEFAULT_WEIGHT - 1) * heavy


def _x_plain_weight(text: str) -> int:
    """X's weight of text with no URL in it."""
    total = _code_point_weight(text)
    if _EMOJI_HINT.search(text):
        for cluster in _EMOJI_CLUSTER.findall(text):
            total += _DEFAULT_WEIGHT - _code_point_weight(cluster)
    return total


def x_weighted_length(text: str) -> int:
    """The length X counts against its 280 (twitter-text v3 weighting)."""
    if text.isascii() and "." not in text and "\r" not in text:
        return len(text)  # the common case: no URL, nothing heavy
    text = _normalise(text)
    total = 0
    position = 0
    for start, end in url_spans(text):
        total += _x_plain_weight(text[position:start]) + X_URL_WEIGHT
        position = end
    return total + _x_plain_weight(text[position:])


def graphemes(text: str) -> int:
    """Grapheme clusters (Unicode extended grapheme clusters), as Bluesky counts."""
    if text.isascii() and "\r\n" not in text:
        return len(text)
    return len(GRAPHEME.findall(text))


def code_points(text: str) -> int:
    """Characters as most platforms count them: code points after NFC composition, with
    combining marks that do not compose counted with their base."""
    if text.isascii():
        return len(text)
    return sum(1 for ch in unicodedata.normalize("NFC", text) if not unicodedata.combining(ch))
