"""Text metrics and brand-voice warnings of an item's or a variation's text, as stored with
the row (app/services/content/text_metrics.py): read from the row, no statement of their own."""

from __future__ import annotations

from typing import Any

import strawberry

from schema.types.vocabulary import ContentWarningCode, SentimentLabel


@strawberry.type(description="How positive or negative a text reads (VADER, a lexicon model).")
class Sentiment:
    compound: float = strawberry.field(
        description="From -1 (most negative) to 1 (most positive); a long text's is the mean "
        "of its passages', weighted by words."
    )
    label: SentimentLabel = strawberry.field(description="The score as a label.")


@strawberry.type(
    description="Metrics of a text, computed when the text is written (English readability)."
)
class TextMetrics:
    words: int = strawberry.field(description="Words.")
    sentences: int = strawberry.field(
        description="Sentences (a last one without a full stop counts)."
    )
    reading_time_seconds: int = strawberry.field(
        description="Silent reading time at 238 words a minute, in seconds."
    )
    flesch_reading_ease: float = strawberry.field(
        description="Flesch reading ease (textstat): higher is easier; 60-70 is plain English."
    )
    flesch_kincaid_grade: float = strawberry.field(
        description="Flesch-Kincaid grade level (textstat): US school years needed to follow it."
    )
    sentiment: Sentiment = strawberry.field(description="How it reads.")
    hashtags: list[str] = strawberry.field(
        description="Distinct hashtags in order of first use (at most 100; see hashtagCount)."
    )
    hashtag_count: int = strawberry.field(description="Distinct hashtags, all of them.")
    questions: int = strawberry.field(description="Questions asked.")
    has_call_to_action: bool = strawberry.field(
        description="True when it asks the reader to act (sign up, learn more, shop, book...)."
    )
    algorithm_version: int = strawberry.field(
        description="Version of the computation; rows of an older one are re-measured by a job."
    )

    @classmethod
    def of(cls, stored: dict[str, Any] | None, version: int | None) -> TextMetrics | None:
        if stored is None:
            return None
        return cls(
            words=int(stored.get("words", 0)),
            sentences=int(stored.get("sentences", 0)),
            reading_time_seconds=int(stored.get("reading_time_seconds", 0)),
            flesch_reading_ease=float(stored.get("flesch_reading_ease", 0.0)),
            flesch_kincaid_grade=float(stored.get("flesch_kincaid_grade", 0.0)),
            sentiment=Sentiment(
                compound=float(stored.get("sentiment", 0.0)),
                label=SentimentLabel(stored.get("sentiment_label", SentimentLabel.NEUTRAL)),
            ),
            hashtags=list(stored.get("hashtags", [])),
            hashtag_count=int(stored.get("hashtag_count", len(stored.get("hashtags", [])))),
            questions=int(stored.get("questions", 0)),
            has_call_to_action=bool(stored.get("has_call_to_action", False)),
            algorithm_version=version or 0,
        )


@strawberry.type(
    description="A brand-voice check the text fails: a warning (the text is saved as it is)."
)
class ContentWarning:
    code: ContentWarningCode = strawberry.field(description="Which check.")
    message: str = strawberry.field(description="Human-readable explanation.")
    term: str | None = strawberry.field(
        description="The banned word used or the keyword missing; null for TONE."
    )

    @classmethod
    def all_of(cls, stored: dict[str, Any] | None) -> list[ContentWarning]:
        if not stored:
            return []
        return [
            cls(code=ContentWarningCode(w["code"]), message=str(w["message"]), term=w.get("term"))
            for w in stored.get("warnings", [])
        ]


METRICS_DESCRIPTION = (
    "Metrics of the text, computed when it was written; null until measured (older rows "
    "are measured by a background job)."
)
WARNINGS_DESCRIPTION = (
    "Brand-voice checks the text fails (banned words used, keywords missing, tone), "
    "against the workspace's current brand voice and the item's tags: re-checked by a "
    "background job when either changes."
)
