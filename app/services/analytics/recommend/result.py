"""What a recommendation is: its kind, score, explanation, the signals behind it, and the
items, platforms or topic it is about."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.models.vocabulary import RecommendationKind
from app.services.analytics.insights import PLATFORM_NAMES

# How platforms are named in sentences (as insights name them); first-party events on the
# workspace's own site have no platform and are their own channel.
SITE = "SITE"
CHANNEL_NAMES = {**PLATFORM_NAMES, SITE: "your site"}


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


@dataclass(frozen=True)
class Signal:
    """One number that fed the score (similarity, performance, lift, ...)."""

    name: str
    value: float


@dataclass(frozen=True)
class Topic:
    label: str
    terms: tuple[str, ...]
    tags: tuple[str, ...]
    titles: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class Recommendation:
    kind: RecommendationKind
    score: float
    explanation: str
    signals: tuple[Signal, ...]
    content_ids: tuple[uuid.UUID, ...] = ()
    platforms: tuple[str, ...] = ()  # Platform values
    topic: Topic | None = field(default=None)
