"""One table of platform rules, and the check every variation goes through.

Counting follows each platform where it differs from plain characters (see
app.platforms.counting): X weighs text as twitter-text does (CJK and emoji count 2, every
link 23) and splits long posts into numbered thread parts; Bluesky counts grapheme
clusters. X takes up to 4 images or 1 video per post, not both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from app.models.vocabulary import Platform
from app.platforms.counting import GRAPHEME, code_points, graphemes, x_weighted_length


class Counting(StrEnum):
    CODE_POINTS = "code_points"
    GRAPHEMES = "graphemes"  # Bluesky
    X_WEIGHTED = "x_weighted"  # twitter-text v3: CJK and emoji 2, links 23

    @property
    def counter(self) -> Callable[[str], int]:
        return _COUNTERS[self]


_COUNTERS: dict[Counting, Callable[[str], int]] = {
    Counting.CODE_POINTS: code_points,
    Counting.GRAPHEMES: graphemes,
    Counting.X_WEIGHTED: x_weighted_length,
}


@dataclass(frozen=True)
class MediaRules:
    max_items: int
    max_image_bytes: int
    max_video_bytes: int
    image_types: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
    video_types: frozenset[str] = frozenset({"video/mp4", "video/quicktime"})
    requires_media: bool = False
    max_videos: int | None = None  # videos per post, if fewer than max_items
    mix: bool = True  # images and videos in one post


@dataclass(frozen=True)
class PlatformRule:
    max_chars: int | None  # per post (per thread part for X)
    threads: bool = False  # long text becomes numbered parts
    max_thread_parts: int = 25
    max_hashtags: int | None = None
    subject_max: int | None = None  # email
    preheader_max: int | None = None  # email
    counting: Counting = Counting.CODE_POINTS
    media: MediaRules | None = None


MB = 1024 * 1024
RULES: dict[Platform, PlatformRule] = {
    Platform.X: PlatformRule(
        max_chars=280,
        threads=True,
        counting=Counting.X_WEIGHTED,
        media=MediaRules(4, 5 * MB, 512 * MB, max_videos=1, mix=False),
    ),
    Platform.LINKEDIN: PlatformRule(max_chars=3000, media=MediaRules(9, 8 * MB, 200 * MB)),
    Platform.FACEBOOK: PlatformRule(max_chars=63206, media=MediaRules(10, 10 * MB, 1024 * MB)),
    Platform.INSTAGRAM: PlatformRule(
        max_chars=2200, max_hashtags=30, media=MediaRules(10, 8 * MB, 100 * MB, requires_media=True)
    ),
    Platform.THREADS: PlatformRule(max_chars=500, media=MediaRules(10, 8 * MB, 1024 * MB)),
    Platform.MASTODON: PlatformRule(max_chars=500, media=MediaRules(4, 16 * MB, 99 * MB)),
    Platform.BLUESKY: PlatformRule(
        max_chars=300, counting=Counting.GRAPHEMES, media=MediaRules(4, 1 * MB, 50 * MB)
    ),
    Platform.EMAIL: PlatformRule(max_chars=None, subject_max=100, preheader_max=150),
    Platform.WEBHOOK: PlatformRule(max_chars=None),
}

HASHTAG = re.compile(r"(?<!\w)#\w+")
THREAD_BREAK = re.compile(r"\n\s*---\s*\n")


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    part: int | None = None


@dataclass(frozen=True)
class MediaItem:
    mime_type: str
    size_bytes: int
    kind: str  # IMAGE | VIDEO


@dataclass
class Evaluation:
    character_count: int
    parts: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def within_limits(self) -> bool:
        return not self.violations


def count_characters(text: str, rule: PlatformRule) -> int:
    return rule.counting.counter(text)


def split_thread(text: str, rule: PlatformRule) -> list[str]:
    """Explicit parts (separated by a `---` line) are kept; otherwise split at word
    boundaries so each numbered part fits."""
    assert rule.max_chars is not None
    explicit = [p.strip() for p in THREAD_BREAK.split(text) if p.strip()]
    if len(explicit) > 1 or count_characters(text, rule) <= rule.max_chars:
        return explicit or [text.strip()]
    budget = rule.max_chars - len(" 99/99")
    # Words are counted once each: a link, an emoji or a combining mark never spans a
    # space, so a part's count is its words' counts plus the spaces between them.
    words = text.split()
    if text.isascii() and "." not in text:
        lengths = [len(word) for word in words]
    else:
        lengths = [count_characters(word, rule) for word in words]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for word, length in zip(words, lengths, strict=True):
        if length > budget:
            # A word no part can hold (CJK and Thai are written without spaces): cut it
            # between characters as the reader sees them, the last piece continuing.
            if current:
                parts.append(" ".join(current))
            *whole, (word, length) = _pieces(word, rule, budget)
            parts.extend(piece for piece, _ in whole)
            current, size = [word], length
        elif current and size + 1 + length > budget:
            parts.append(" ".join(current))
            current, size = [word], length
        else:
            size += length + 1 if current else length
            current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _pieces(word: str, rule: PlatformRule, budget: int) -> list[tuple[str, int]]:
    """`word` cut at grapheme boundaries into pieces of at most `budget` (with their
    counts)."""
    pieces: list[tuple[str, int]] = []
    piece: list[str] = []
    size = 0
    for cluster in GRAPHEME.findall(word):
        weight = count_characters(cluster, rule)
        if piece and size + weight > budget:
            pieces.append(("".join(piece), size))
            piece, size = [], 0
        piece.append(cluster)
        size += weight
    pieces.append(("".join(piece), size))
    return pieces


def evaluate(
    platform: Platform,
    body: str,
    *,
    subject: str | None = None,
    preheader: str | None = None,
    media: list[MediaItem] | None = None,
) -> Evaluation:
    rule = RULES[platform]
    media = media or []
    result = Evaluation(character_count=count_characters(body, rule))
    if not body.strip():
        result.violations.append(Violation("EMPTY", "The text is empty."))
    if (
        rule.threads
        and rule.max_chars is not None
        and result.character_count > rule.max_chars * rule.max_thread_parts
    ):
        # More than the longest thread can hold, however it is cut: not worth cutting (and
        # cutting 100 KB word by word would cost a second of CPU on every read).
        result.parts = [body]
        result.violations.append(
            Violation(
                "TOO_MANY_PARTS",
                f"{result.character_count} characters need more than "
                f"{rule.max_thread_parts} parts of {rule.max_chars}.",
            )
        )
    elif rule.threads and rule.max_chars is not None:
        parts = split_thread(body, rule)
        numbered = len(parts) > 1
        result.parts = [f"{p} {i}/{len(parts)}" if numbered else p for i, p in enumerate(parts, 1)]
        for i, part in enumerate(result.parts, 1):
            size = count_characters(part, rule)
            if size > rule.max_chars:
                result.violations.append(
                    Violation(
                        "TOO_LONG",
                        f"Part {i} has {size} characters; the limit is {rule.max_chars}.",
                        i,
                    )
                )
        if len(parts) > rule.max_thread_parts:
            result.violations.append(
                Violation("TOO_MANY_PARTS", f"{len(parts)} parts; at most {rule.max_thread_parts}.")
            )
    elif rule.max_chars is not None and result.character_count > rule.max_chars:
        result.violations.append(
            Violation(
                "TOO_LONG", f"{result.character_count} characters; the limit is {rule.max_chars}."
            )
        )
    if rule.max_hashtags is not None:
        hashtags = len(HASHTAG.findall(body))
        if hashtags > rule.max_hashtags:
            result.violations.append(
                Violation("TOO_MANY_HASHTAGS", f"{hashtags} hashtags; at most {rule.max_hashtags}.")
            )
    if rule.subject_max is not None:
        if not (subject or "").strip():
            result.violations.append(Violation("SUBJECT_REQUIRED", "An email needs a subject."))
        elif len(subject or "") > rule.subject_max:
            result.violations.append(
                Violation("SUBJECT_TOO_LONG", f"The subject is over {rule.subject_max} characters.")
            )
    if rule.preheader_max is not None and len(preheader or "") > rule.preheader_max:
        result.violations.append(
            Violation(
                "PREHEADER_TOO_LONG", f"The preheader is over {rule.preheader_max} characters."
            )
        )
    result.violations.extend(_media_violations(platform, rule, media))
    return result


def _media_violations(
    platform: Platform, rule: PlatformRule, media: list[MediaItem]
) -> list[Violation]:
    limits = rule.media
    if limits is None:
        return (
            [Violation("MEDIA_NOT_SUPPORTED", f"{platform} posts carry no media.")] if media else []
        )
    out: list[Violation] = []
    if limits.requires_media and not media:
        out.append(
            Violation("MEDIA_REQUIRED", f"{platform} posts need at least one image or video.")
        )
    videos = sum(1 for item in media if item.kind == "VIDEO")
    if not limits.mix and videos and videos < len(media):
        out.append(
            Violation(
                "MEDIA_MIX",
                f"{platform} posts carry images or a video, not both "
                f"(up to {limits.max_items} images or {limits.max_videos or 1} video).",
            )
        )
    elif limits.max_videos is not None and videos > limits.max_videos:
        out.append(Violation("TOO_MANY_VIDEOS", f"{videos} videos; at most {limits.max_videos}."))
    elif len(media) > limits.max_items:
        out.append(
            Violation("TOO_MANY_MEDIA", f"{len(media)} media items; at most {limits.max_items}.")
        )
    for i, item in enumerate(media, 1):
        allowed = limits.image_types if item.kind == "IMAGE" else limits.video_types
        cap = limits.max_image_bytes if item.kind == "IMAGE" else limits.max_video_bytes
        if item.mime_type not in allowed:
            out.append(Violation("MEDIA_TYPE", f"Media {i} ({item.mime_type}) is not accepted.", i))
        if item.size_bytes > cap:
            out.append(Violation("MEDIA_TOO_LARGE", f"Media {i} is over {cap // MB} MB.", i))
    return out


def comment_violations(platform: Platform, text: str) -> list[Violation]:
    """A first comment is one reply on the platform: never cut into a thread, so it must
    fit one post's limit as the platform counts it."""
    rule = RULES[platform]
    if not text.strip():
        return [Violation("EMPTY", "The comment is empty.")]
    size = count_characters(text, rule)
    if rule.max_chars is not None and size > rule.max_chars:
        return [
            Violation(
                "TOO_LONG",
                f"The comment has {size} characters; {platform.value} allows {rule.max_chars}.",
            )
        ]
    return []
