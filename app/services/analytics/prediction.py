"""Predicting a post's engagement rate from what is known before it goes out.

Features are what a writer controls (length, readability, sentiment, questions, a call to
action, hashtags, media, when and where it goes out) plus how close the text is to the
workspace's past top performers (cosine similarity of embeddings, computed by the
caller). Most come from the text metrics stored with every content item
(app/ai/metrics.py), so the history needs no re-analysis.

`train` fits a gradient-boosted regressor and measures it on a held-out tail of the
history (the newest fifth: the model is judged on posts it could not have seen, as it
will be used), beside the constant baseline that always answers the training median.
`predict` answers a 0-100 score (where the prediction falls among the training posts'
predictions: 50 is a typical post), the expected rate, a confidence from the held-out
rank correlation and the sample size, and the factors that moved the prediction: for
each group of features, the predicted rate minus its average when that group takes the
values of a background sample of past posts instead (so a yes/no feature is compared with
the real mix of yeses and noes, not with an average no post has). What is not decided yet
(a draft's posting time, its platform) can be left unknown: the prediction then averages
over the background's values there, the model's neutral time or platform.

CPU-bound and synchronous: callers run it in a worker thread or process. It uses one
core (OpenMP's threads spin against each other and everything else on a busy 2-core box).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

PLATFORMS = ("X", "LINKEDIN", "FACEBOOK", "INSTAGRAM", "THREADS", "MASTODON", "BLUESKY")
CONTENT_TYPES = ("BLOG_POST", "SOCIAL_POST", "EMAIL", "AD_COPY")
MIN_TRAINING = 40  # fewer posts than this: no model of its own (the prior answers)
BACKGROUND = 64  # past posts each factor is compared against


@dataclass(frozen=True)
class Post:
    """One post as the model sees it. `engagement_rate` is the target (None to predict)."""

    words: int
    flesch_reading_ease: float
    sentiment: float
    questions: int
    has_call_to_action: bool
    hashtag_count: int
    has_media: bool
    platform: str
    content_type: str
    # Local time it goes out (weekday and hour in the workspace's zone).
    at: datetime
    similarity_to_top: float = 0.0
    engagement_rate: float | None = None


# Feature columns, grouped by the factor they explain.
_GROUPS: dict[str, tuple[str, ...]] = {
    "length": ("log_words",),
    "readability": ("flesch_reading_ease",),
    "sentiment": ("sentiment",),
    "questions": ("questions",),
    "call to action": ("has_call_to_action",),
    "hashtags": ("hashtag_count",),
    "media": ("has_media",),
    "posting time": ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "weekend"),
    "platform": tuple(f"platform_{p}" for p in PLATFORMS),
    "content type": tuple(f"type_{t}" for t in CONTENT_TYPES),
    "similarity to top performers": ("similarity_to_top",),
}
COLUMNS: tuple[str, ...] = tuple(c for cols in _GROUPS.values() for c in cols)


def _row(post: Post) -> list[float]:
    hour = post.at.hour + post.at.minute / 60
    weekday = post.at.weekday()
    values = {
        "log_words": math.log1p(max(0, post.words)),
        "flesch_reading_ease": post.flesch_reading_ease,
        "sentiment": post.sentiment,
        "questions": float(min(post.questions, 10)),
        "has_call_to_action": float(post.has_call_to_action),
        "hashtag_count": float(min(post.hashtag_count, 30)),
        "has_media": float(post.has_media),
        "hour_sin": math.sin(2 * math.pi * hour / 24),
        "hour_cos": math.cos(2 * math.pi * hour / 24),
        "weekday_sin": math.sin(2 * math.pi * weekday / 7),
        "weekday_cos": math.cos(2 * math.pi * weekday / 7),
        "weekend": float(weekday >= 5),
        "similarity_to_top": post.similarity_to_top,
    }
    for p in PLATFORMS:
        values[f"platform_{p}"] = float(post.platform == p)
    for t in CONTENT_TYPES:
        values[f"type_{t}"] = float(post.content_type == t)
    return [values[c] for c in COLUMNS]


def matrix(posts: Sequence[Post]) -> npt.NDArray[np.float64]:
    return np.asarray([_row(p) for p in posts], dtype=np.float64).reshape(len(posts), len(COLUMNS))


@dataclass(frozen=True)
class Evaluation:
    """Held-out quality, stored with each model version."""

    mae: float
    baseline_mae: float  # the constant training median's
    spearman: float | None
    n_train: int
    n_test: int


@dataclass
class Trained:
    model: HistGradientBoostingRegressor
    evaluation: Evaluation
    # What `predict` compares against: the training predictions (sorted), and a sample of
    # training rows as the background for the factors.
    reference: npt.NDArray[np.float64] = field(repr=False)
    background: npt.NDArray[np.float64] = field(repr=False)


def _fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> HistGradientBoostingRegressor:
    model = HistGradientBoostingRegressor(
        max_iter=150, learning_rate=0.08, min_samples_leaf=10, l2_regularization=1.0, random_state=0
    )
    with threadpool_limits(limits=1):
        return model.fit(x, y)


def _predict(
    model: HistGradientBoostingRegressor, x: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    with threadpool_limits(limits=1):
        return np.asarray(model.predict(x), dtype=np.float64)


def train(history: Sequence[Post], *, test_share: float = 0.2) -> Trained:
    """Fit on the history (oldest first by `at`), judged on its newest `test_share`; the
    returned model is then refitted on everything."""
    posts = sorted((p for p in history if p.engagement_rate is not None), key=lambda p: p.at)
    if len(posts) < MIN_TRAINING:
        raise ValueError(f"at least {MIN_TRAINING} posts with engagement are needed")
    x = matrix(posts)
    y = np.asarray([p.engagement_rate for p in posts], dtype=np.float64)
    cut = max(1, min(len(posts) - 1, round(len(posts) * (1 - test_share))))
    held_out = _predict(_fit(x[:cut], y[:cut]), x[cut:])
    baseline = float(np.median(y[:cut]))
    rho = stats.spearmanr(held_out, y[cut:]).statistic if len(posts) - cut > 2 else float("nan")
    evaluation = Evaluation(
        mae=float(np.mean(np.abs(held_out - y[cut:]))),
        baseline_mae=float(np.mean(np.abs(baseline - y[cut:]))),
        spearman=None if math.isnan(float(rho)) else float(rho),
        n_train=cut,
        n_test=len(posts) - cut,
    )
    model = _fit(x, y)
    return Trained(
        model=model,
        evaluation=evaluation,
        reference=np.sort(_predict(model, x)),
        background=x[np.random.default_rng(0).permutation(len(x))[:BACKGROUND]],
    )


@dataclass(frozen=True)
class Factor:
    name: str
    impact: float  # change in predicted engagement rate this factor makes (+ helps)


@dataclass(frozen=True)
class Prediction:
    score: float  # 0-100: where it falls among the training posts (50 = typical)
    expected_engagement_rate: float
    confidence: float  # 0-1
    factors: list[Factor]


# Feature groups a prediction may leave unknown (see `predict`).
POSTING_TIME = "posting time"
PLATFORM = "platform"


def predict(
    trained: Trained,
    post: Post,
    *,
    top_factors: int = 5,
    unknown: Collection[str] = (),
) -> Prediction:
    """`unknown`: feature groups not decided yet (POSTING_TIME for a draft without a time,
    PLATFORM for text not meant for one platform): the post's values there are ignored and
    the prediction is its average with those groups taken from each background post (the
    model's neutral value: the mix of past posts' times or platforms); they move nothing,
    so they are not among the factors."""
    row = np.asarray(_row(post), dtype=np.float64)
    background = trained.background
    hidden = [COLUMNS.index(c) for name in unknown for c in _GROUPS[name]]
    names = [name for name in _GROUPS if name not in unknown]
    # The post itself: one row, or one per background post when some groups are unknown.
    base = row[None, :]
    if hidden:
        base = np.repeat(base, len(background), axis=0)
        base[:, hidden] = background[:, hidden]
    # One batch: the post, then per factor the post with that factor's columns taken from
    # each background row (paired with the same row's unknown columns).
    paired = base if hidden else np.repeat(base, len(background), axis=0)
    blocks = [base]
    for name in names:
        block = paired.copy()
        idx = [COLUMNS.index(c) for c in _GROUPS[name]]
        block[:, idx] = background[:, idx]
        blocks.append(block)
    predicted = _predict(trained.model, np.vstack(blocks))
    own = float(predicted[: len(base)].mean())
    averages = predicted[len(base) :].reshape(len(names), len(background)).mean(axis=1)
    rate = max(0.0, own)
    rank = np.searchsorted(trained.reference, own, side="right")
    score = round(100 * float(rank) / max(1, len(trained.reference)), 1)
    factors = sorted(
        (Factor(name, own - float(avg)) for name, avg in zip(names, averages, strict=True)),
        key=lambda f: -abs(f.impact),
    )[:top_factors]
    ev = trained.evaluation
    quality = max(0.0, ev.spearman or 0.0)
    size = ev.n_train / (ev.n_train + 200)
    return Prediction(
        score=score,
        expected_engagement_rate=rate,
        confidence=round(quality * size, 3),
        factors=factors,
    )
