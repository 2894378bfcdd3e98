"""Insights: a few statements computed from a workspace's published posts, each with the
numbers behind it ("LinkedIn posts with media get 2.3x the engagement rate of posts
without, n=41 vs 57").

Every candidate compares the engagement rates of two groups of posts on one platform (or
all platforms): tagged vs not, one content type vs the rest, media, a call to action,
questions, short vs long, weekend vs weekday, one part of the day vs the rest, and one
platform vs another. A candidate needs enough posts in each group, a difference worth
saying (`min_ratio`) and a Mann-Whitney U p-value (rates are skewed: a rank test, not a
t-test) that survives the Benjamini-Hochberg correction over all the comparisons made at
false-discovery rate `alpha`: twenty comparisons of pure noise at p < 0.05 would otherwise
find one "insight" most of the time. The strongest effects
win, one per kind of comparison, so the answer is not five ways of saying the same thing.
Nothing here is invented: with too little data the answer is shorter, or empty.

`workspace_insights` reads the period's history (one statement) and computes in a worker
thread: the tests are CPU work on up to MAX_HISTORY posts.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scipy import stats
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import BadUserInput
from app.permissions import Action
from app.services.analytics import history
from app.services.analytics.history import PublishedPost

MAX_PERIOD = timedelta(days=366)

PLATFORM_NAMES = {
    "X": "X",
    "LINKEDIN": "LinkedIn",
    "FACEBOOK": "Facebook",
    "INSTAGRAM": "Instagram",
    "THREADS": "Threads",
    "MASTODON": "Mastodon",
    "BLUESKY": "Bluesky",
    "EMAIL": "email",
    "WEBHOOK": "webhook",
}
DAYPARTS = {"mornings": range(6, 12), "afternoons": range(12, 18), "evenings": range(18, 24)}


@dataclass(frozen=True)
class Insight:
    statement: str
    kind: str  # which comparison: tag, content_type, media, cta, ...
    platform: str | None  # None: across platforms
    ratio: float  # mean rate of the better group over the other's (> 1)
    better_rate: float
    other_rate: float
    better_n: int
    other_n: int
    p_value: float


@dataclass(frozen=True)
class _Split:
    kind: str
    better: str  # how the first group is named in a sentence
    other: str
    test: Callable[[PublishedPost], bool | None]  # True / False: which group; None: neither


Test = Callable[[PublishedPost], bool | None]


def _tagged(tag: str) -> Test:
    return lambda p: tag in p.tags


def _of_type(kind: str) -> Test:
    return lambda p: p.content_type == kind


def _in_hours(hours: range) -> Test:
    return lambda p: p.at.hour in hours


def _on(platform: str) -> Test:
    return lambda p: p.platform == platform


def _words(post: PublishedPost) -> int:
    return int((post.metrics or {}).get("words", 0))


def _splits(posts: Sequence[PublishedPost], min_group: int) -> Iterable[_Split]:
    tags: dict[str, int] = {}
    for post in posts:
        for tag in set(post.tags):
            tags[tag] = tags.get(tag, 0) + 1
    for tag, count in tags.items():
        if count >= min_group:
            yield _Split("tag", f'"{tag}" posts', "other posts", _tagged(tag))
    for kind in {p.content_type for p in posts}:
        name = kind.lower().replace("_", " ")
        yield _Split("content_type", f"{name}s", "other content", _of_type(kind))
    yield _Split("media", "posts with media", "posts without", lambda p: p.has_media)
    yield _Split(
        "cta",
        "posts with a call to action",
        "posts without one",
        lambda p: bool((p.metrics or {}).get("has_call_to_action")) if p.metrics else None,
    )
    yield _Split(
        "questions",
        "posts asking a question",
        "posts without one",
        lambda p: int((p.metrics or {}).get("questions", 0)) > 0 if p.metrics else None,
    )
    yield _Split(
        "length",
        "short posts (under 50 words)",
        "long ones (150 words or more)",
        lambda p: True if _words(p) < 50 else False if _words(p) >= 150 else None,
    )
    yield _Split("weekend", "weekend posts", "weekday posts", lambda p: p.at.weekday() >= 5)
    for name, hours in DAYPARTS.items():
        yield _Split("daypart", f"posts in the {name}", "the rest", _in_hours(hours))


def _compare(
    split: _Split, posts: Sequence[PublishedPost], platform: str | None, min_group: int
) -> Insight | None:
    yes: list[float] = []
    no: list[float] = []
    for post in posts:
        side = split.test(post)
        if side is True:
            yes.append(post.rate)
        elif side is False:
            no.append(post.rate)
    if len(yes) < min_group or len(no) < min_group:
        return None
    mean_yes, mean_no = sum(yes) / len(yes), sum(no) / len(no)
    if mean_yes <= 0 or mean_no <= 0:
        return None
    p_value = float(stats.mannwhitneyu(yes, no, alternative="two-sided").pvalue)
    flip = mean_yes < mean_no
    better, other = (split.other, split.better) if flip else (split.better, split.other)
    better_rate, other_rate = (mean_no, mean_yes) if flip else (mean_yes, mean_no)
    better_n, other_n = (len(no), len(yes)) if flip else (len(yes), len(no))
    where = f" on {PLATFORM_NAMES.get(platform, platform)}" if platform else ""
    ratio = better_rate / other_rate
    statement = (
        f"{better[0].upper()}{better[1:]}{where} get {ratio:.1f}x the engagement rate of "
        f"{other} ({better_rate:.2%} vs {other_rate:.2%}, n={better_n} vs {other_n})."
    )
    return Insight(
        statement, split.kind, platform, ratio, better_rate, other_rate, better_n, other_n, p_value
    )


def _platforms(posts: Sequence[PublishedPost], min_group: int) -> list[Insight]:
    by: dict[str, list[PublishedPost]] = {}
    for post in posts:
        by.setdefault(post.platform, []).append(post)
    names = sorted(n for n, group in by.items() if len(group) >= min_group)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            split = _Split(
                "platform",
                f"{PLATFORM_NAMES.get(a, a)} posts",
                f"{PLATFORM_NAMES.get(b, b)} posts",
                _on(a),
            )
            insight = _compare(split, by[a] + by[b], None, min_group)
            if insight is not None:
                found.append(insight)
    return found


def _discoveries(candidates: list[Insight], alpha: float) -> list[Insight]:
    """Benjamini-Hochberg: the candidates whose p-values survive at false-discovery rate
    `alpha` over all `len(candidates)` tests."""
    ranked = sorted(candidates, key=lambda i: i.p_value)
    m = len(ranked)
    passed = 0
    for k, insight in enumerate(ranked, start=1):
        if insight.p_value <= alpha * k / m:
            passed = k
    return ranked[:passed]


def insights(
    posts: Sequence[PublishedPost],
    *,
    limit: int = 5,
    min_group: int = 8,
    min_ratio: float = 1.2,
    alpha: float = 0.05,
) -> list[Insight]:
    """At most `limit` statements, strongest effect first, one per kind of comparison."""
    candidates = _platforms(posts, min_group)
    by_platform: dict[str | None, list[PublishedPost]] = {None: list(posts)}
    for post in posts:
        by_platform.setdefault(post.platform, []).append(post)
    for platform, group in by_platform.items():
        for split in _splits(group, min_group):
            insight = _compare(split, group, platform, min_group)
            if insight is not None:
                candidates.append(insight)
    candidates = [i for i in _discoveries(candidates, alpha) if i.ratio >= min_ratio]
    candidates.sort(key=lambda i: (-abs(math.log(i.ratio)), i.p_value))
    chosen: list[Insight] = []
    kinds: set[str] = set()
    for insight in candidates:
        if insight.kind in kinds:
            continue
        kinds.add(insight.kind)
        chosen.append(insight)
        if len(chosen) == limit:
            break
    return chosen


async def workspace_insights(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    workspace_id: uuid.UUID,
    since: datetime,
    until: datetime,
) -> list[Insight]:
    """Insights over posts published in [since, until) (readers of the workspace)."""
    principal.require(workspace_id, Action.CONTENT_READ)
    if since.tzinfo is None or until.tzinfo is None:
        raise BadUserInput("from and to need a time zone offset")
    if not since < until:
        raise BadUserInput("from must be before to")
    if until - since > MAX_PERIOD:
        raise BadUserInput("the period can be at most 366 days")
    async with factory() as session:
        posts = await history.published_posts(session, workspace_id, since=since, until=until)
    return await asyncio.to_thread(insights, posts)
