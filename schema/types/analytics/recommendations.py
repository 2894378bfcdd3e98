"""recommendations: what to write or post next, each with the numbers behind it."""

from __future__ import annotations

import uuid

import strawberry

from app.services.analytics.recommend import result
from schema.context import Info
from schema.types.content.items import Content
from schema.types.vocabulary import Platform, RecommendationKind


@strawberry.type(description="One number that fed a recommendation's score.")
class RecommendationSignal:
    name: str = strawberry.field(
        description="similarity (cosine, -1..1), performance (mean percentile of the "
        "engagement rate within its platform, 0..1), popularity (performance decayed by "
        "age, half-life 60 days), lift (engagement rate over the platform's median), "
        "engagementRate, medianEngagementRate, impressions, audienceAffinity (share of the "
        "item's engaged visitors who engaged with the top performers, shrunk), "
        "daysSinceLastPublished, underCoverage, publishedShare, recentShare, items, "
        "recentItems."
    )
    value: float = strawberry.field(description="Its value, computed from the workspace's data.")


@strawberry.type(description="A topic: a cluster of published items close in meaning.")
class RecommendationTopic:
    label: str = strawberry.field(description="Its most common tags, else its top terms.")
    terms: list[str] = strawberry.field(
        description="Its most distinctive words (TF-IDF of the items' titles and bodies)."
    )
    tags: list[str] = strawberry.field(description="Tags on at least two of its items.")
    titles: list[str] = strawberry.field(description="Titles of the items nearest its centre.")
    size: int = strawberry.field(description="Published items in it.")


@strawberry.type(description="Something worth writing or posting next, and why.")
class Recommendation:
    kind: RecommendationKind = strawberry.field(description="What is recommended.")
    score: float = strawberry.field(description="Ranking score (higher first; per kind).")
    explanation: str = strawberry.field(
        description="Why, in words, with the numbers computed from the data."
    )
    signals: list[RecommendationSignal] = strawberry.field(
        description="The numbers that fed the score."
    )
    platforms: list[Platform] = strawberry.field(
        description="CONTENT_TO_REPURPOSE: the connected platforms to take it to; "
        "SIMILAR_HIGH_PERFORMERS: the platform its figures are from; TOPICS: empty."
    )
    topic: RecommendationTopic | None = strawberry.field(description="TOPICS only: the topic.")
    content_ids: strawberry.Private[tuple[uuid.UUID, ...]]

    @strawberry.field(
        description="The items it is about: the recommended item (SIMILAR_HIGH_PERFORMERS: "
        "then the draft it is similar to), or a topic's most representative items."
    )
    async def contents(self, info: Info) -> list[Content]:
        nodes = await Content.resolve_nodes(info=info, node_ids=[str(i) for i in self.content_ids])
        return [n for n in nodes if n is not None]

    @classmethod
    def of(cls, value: result.Recommendation) -> Recommendation:
        topic = value.topic
        return cls(
            kind=value.kind,
            score=value.score,
            explanation=value.explanation,
            signals=[RecommendationSignal(name=s.name, value=s.value) for s in value.signals],
            platforms=[Platform(p) for p in value.platforms],
            topic=RecommendationTopic(
                label=topic.label,
                terms=list(topic.terms),
                tags=list(topic.tags),
                titles=list(topic.titles),
                size=topic.size,
            )
            if topic
            else None,
            content_ids=value.content_ids,
        )
