"""One table of platform rules, and the check every variation goes through.

Counting follows each platform where it differs from plain characters: X counts every link
as 23 characters (t.co) and splits long posts into numbered thread parts; Bluesky counts
grapheme clusters (approximated here by code points without combining marks).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from app.models.vocabulary import Platform


@dataclass(frozen=True)
class MediaRules:
    max_items: int
    max_image_bytes: int
    max_video_bytes: int
    image_types: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
    video_types: frozenset[str] = frozenset({"video/mp4", "video/quicktime"})
    requires_media: bool = False


@dataclass(frozen=True)
class PlatformRule:
    max_chars: int | None  # per post (per thread part for X)
    threads: bool = False  # long text becomes numbered parts
    max_thread_parts: int = 25
    max_hashtags: int | None = None
    subject_max: int | None = None  # email
    preheader_max: int | None = None  # email
    links_count_as: int | None = None  # X: every URL counts as 23
    media: MediaRules | None = None


MB = 1024 * 1024
RULES: dict[Platform, PlatformRule] = {
    Platform.X: PlatformRule(
        max_chars=280, threads=True, links_count_as=23, media=MediaRules(4, 5 * MB, 512 * MB)
    ),
    Platform.LINKEDIN: PlatformRule(max_chars=3000, media=MediaRules(9, 8 * MB, 200 * MB)),
    Platform.FACEBOOK: PlatformRule(max_chars=63206, media=MediaRules(10, 10 * MB, 1024 * MB)),
    Platform.INSTAGRAM: PlatformRule(
        max_chars=2200, max_hashtags=30, media=MediaRules(10, 8 * MB, 100 * MB, requires_media=True)
    ),
    Platform.THREADS: PlatformRule(max_chars=500, media=MediaRules(10, 8 * MB, 1024 * MB)),
    Platform.MASTODON: PlatformRule(max_chars=500, media=MediaRules(4, 16 * MB, 99 * MB)),
    Platform.BLUESKY: PlatformRule(max_chars=300, media=MediaRules(4, 1 * MB, 50 * MB)),
    Platform.EMAIL: PlatformRule(max_chars=None, subject_max=100, preheader_max=150),
    Platform.WEBHOOK: PlatformRule(max_chars=None),
}

URL = re.compile(r"https?://\S+")
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
    if rule.links_count_as is not None and "://" in text:
        text = URL.sub("x" * rule.links_count_as, text)
    if text.isascii():
        return len(text)  # the common case, without walking the text in Python
    # Combining marks belong to the previous character (a grapheme, as users see it).
    return sum(1 for ch in unicodedata.normalize("NFC", text) if not unicodedata.combining(ch))


def split_thread(text: str, rule: PlatformRule) -> list[str]:
    """Explicit parts (separated by a `---` line) are kept; otherwise split at word
    boundaries so each numbered part fits."""
    assert rule.max_chars is not None
    explicit = [p.strip() for p in THREAD_BREAK.split(text) if p.strip()]
    if len(explicit) > 1 or count_characters(text, rule) <= rule.max_chars:
        return explicit or [text.strip()]
    budget = rule.max_chars - len(" 99/99")
    # Words are counted once each: a link or a combining mark never spans a space, so a
    # part's count is its words' counts plus the spaces between them.
    words = text.split()
    if text.isascii() and "://" not in text:
        lengths = [len(word) for word in words]
    else:
        lengths = [count_characters(word, rule) for word in words]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for word, length in zip(words, lengths, strict=True):
        if current and size + 1 + length > budget:
            parts.append(" ".join(current))
            current, size = [word], length
        else:
            size += length + 1 if current else length
            current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


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
    if rule.threads and rule.max_chars is not None:
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
    if len(media) > limits.max_items:
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
