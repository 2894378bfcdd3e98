"""TOPICS: what the workspace's published items are about, and which of those topics
perform but are under-covered in what it writes now.

The published items (those with a performance score, at most MAX_ITEMS, most recently
published first) are clustered by meaning: their embeddings, L2-normalised (so Euclidean
k-means is cosine k-means), with scikit-learn's KMeans for k = 2 .. MAX_TOPICS, keeping the
k with the best silhouette. Items created in the last RECENT_DAYS (any status, at most
MAX_RECENT) are assigned to their nearest topic: that topic's recent share.

A topic of at least MIN_SIZE items scores

    mean performance of its items x under-coverage,
    under-coverage = published share / (published share + recent share)

(1 when nothing recent is on it, 1/2 when it gets the same share of recent content as of
the published items). It is labelled with its most common tags (on at least two items)
else its most distinctive terms (TF-IDF of title and body, mean over the topic), and shown
with the titles of the items nearest its centre.

Fitting is CPU work on up to MAX_ITEMS vectors: it runs in a worker thread on one core
(threadpool_limits, as app/services/analytics/prediction.py does: the machine's cores
serve requests, and BLAS threads inside a thread pool oversubscribe them).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from threadpoolctl import threadpool_limits

from app.models import Content
from app.models.vocabulary import RecommendationKind
from app.services.analytics.recommend.result import Recommendation, Signal, Topic
from app.services.analytics.recommend.scores import ItemScore

MAX_ITEMS = 500
MAX_RECENT = 500
RECENT_DAYS = 30
MAX_TOPICS = 8
MIN_ITEMS = 6  # fewer published items with embeddings: no topics
MIN_SIZE = 2
TEXT_CHARS = 2_000
SHOWN = 3
WORDS = r"(?u)\b[^\W\d_]{3,}\b"  # words of 3+ letters, no numbers


@dataclass(frozen=True)
class _Item:
    content_id: uuid.UUID
    title: str
    text: str
    tags: tuple[str, ...]
    performance: float
    lift: float


@dataclass(frozen=True)
class _Cluster:
    members: tuple[int, ...]  # indexes into the items, nearest the centre first
    recent: int


def _normalised(vectors: Sequence[Any]) -> npt.NDArray[np.float64]:
    x = np.asarray([np.asarray(v, dtype=np.float64) for v in vectors])
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(x / norms, dtype=np.float64)


def _fit(x: npt.NDArray[np.float64], recent: npt.NDArray[np.float64]) -> tuple[list[_Cluster], int]:
    best: tuple[float, KMeans] | None = None
    with threadpool_limits(limits=1):
        for k in range(2, min(MAX_TOPICS, len(x) // MIN_SIZE) + 1):
            model = KMeans(n_clusters=k, n_init=3, random_state=0).fit(x)
            if len(set(model.labels_.tolist())) < 2:
                continue
            quality = float(silhouette_score(x, model.labels_, metric="euclidean"))
            if best is None or quality > best[0]:
                best = (quality, model)
        if best is None:
            return [], 0
        model = best[1]
        assigned = model.predict(recent) if len(recent) else np.zeros(0, dtype=np.int64)
    centres = model.cluster_centers_
    clusters = []
    for label in range(len(centres)):
        members = np.flatnonzero(model.labels_ == label)
        distance = np.linalg.norm(x[members] - centres[label], axis=1)
        order = members[np.argsort(distance, kind="stable")]
        clusters.append(
            _Cluster(tuple(int(i) for i in order), int(np.count_nonzero(assigned == label)))
        )
    return clusters, len(recent)


def _terms(items: Sequence[_Item], clusters: Sequence[_Cluster]) -> list[tuple[str, ...]]:
    try:
        vectorizer = TfidfVectorizer(stop_words="english", max_features=5_000, token_pattern=WORDS)
        matrix = vectorizer.fit_transform([f"{i.title}\n{i.text}" for i in items])
    except ValueError:  # nothing but stop words
        return [() for _ in clusters]
    vocabulary = vectorizer.get_feature_names_out()
    found = []
    for cluster in clusters:
        weights = np.asarray(matrix[list(cluster.members)].mean(axis=0)).ravel()
        top = [int(j) for j in np.argsort(-weights, kind="stable")[:SHOWN] if weights[j] > 0]
        found.append(tuple(str(vocabulary[j]) for j in top))
    return found


def _tags(items: Sequence[_Item], cluster: _Cluster) -> tuple[str, ...]:
    counts = Counter(tag for i in cluster.members for tag in set(items[i].tags))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(tag for tag, n in ranked[:SHOWN] if n >= MIN_SIZE)


def rank_topics(
    items: Sequence[_Item],
    vectors: Sequence[Any],
    recent_vectors: Sequence[Any],
    first: int,
) -> list[Recommendation]:
    if len(items) < MIN_ITEMS:
        return []
    x = _normalised(vectors)
    recent = _normalised(recent_vectors) if recent_vectors else np.zeros((0, x.shape[1]))
    clusters, recent_total = _fit(x, recent)
    terms = _terms(items, clusters)
    found = []
    for cluster, words in zip(clusters, terms, strict=True):
        if len(cluster.members) < MIN_SIZE:
            continue
        members = [items[i] for i in cluster.members]
        performance = sum(m.performance for m in members) / len(members)
        lift = sum(m.lift for m in members) / len(members)
        share = len(members) / len(items)
        recent_share = cluster.recent / recent_total if recent_total else 0.0
        under = share / (share + recent_share)
        tags = _tags(items, cluster)
        label = ", ".join(tags or words) or members[0].title
        shown = members[:SHOWN]
        explanation = (
            f'Topic "{label}": its {len(members)} published items average {lift:.1f}x the '
            f"workspace's median engagement rate on their platforms (mean percentile "
            f"{performance:.0%}); {cluster.recent} of the {recent_total} items created in the "
            f"last {RECENT_DAYS} days ({recent_share:.0%}) are on it, against {share:.0%} of "
            "published items."
        )
        found.append(
            Recommendation(
                kind=RecommendationKind.TOPICS,
                score=round(performance * under, 6),
                explanation=explanation,
                signals=(
                    Signal("performance", round(performance, 4)),
                    Signal("lift", round(lift, 4)),
                    Signal("underCoverage", round(under, 4)),
                    Signal("publishedShare", round(share, 4)),
                    Signal("recentShare", round(recent_share, 4)),
                    Signal("items", float(len(members))),
                    Signal("recentItems", float(cluster.recent)),
                ),
                content_ids=tuple(m.content_id for m in shown),
                topic=Topic(
                    label=label,
                    terms=words,
                    tags=tags,
                    titles=tuple(m.title for m in shown),
                    size=len(members),
                ),
            )
        )
    found.sort(key=lambda r: (-r.score, r.topic.label if r.topic else ""))
    return found[:first]


async def topics(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    scores: dict[uuid.UUID, ItemScore],
    now: datetime,
    first: int,
) -> list[Recommendation]:
    chosen = sorted(scores.values(), key=lambda s: (s.last_at, str(s.content_id)), reverse=True)
    chosen = chosen[:MAX_ITEMS]
    if len(chosen) < MIN_ITEMS:
        return []
    rows = list(
        (
            await session.execute(
                select(
                    Content.id,
                    Content.title,
                    func.left(Content.body, TEXT_CHARS).label("text"),
                    Content.tags,
                    Content.embedding,
                ).where(
                    Content.workspace_id == workspace_id,
                    Content.id.in_([s.content_id for s in chosen]),
                    Content.embedding.is_not(None),
                )
            )
        ).all()
    )
    rows.sort(key=lambda r: str(r.id))
    items = [
        _Item(
            r.id,
            r.title,
            r.text or "",
            tuple(r.tags or ()),
            scores[r.id].performance,
            scores[r.id].main.lift,
        )
        for r in rows
    ]
    recent = (
        await session.scalars(
            select(Content.embedding)
            .where(
                Content.workspace_id == workspace_id,
                Content.deleted_at.is_(None),
                Content.embedding.is_not(None),
                Content.created_at >= now - timedelta(days=RECENT_DAYS),
            )
            .order_by(Content.created_at.desc())
            .limit(MAX_RECENT)
        )
    ).all()
    vectors = [r.embedding for r in rows]
    return await asyncio.to_thread(rank_topics, items, vectors, list(recent), first)
