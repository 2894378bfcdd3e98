"""From a model's answer to a saved draft: parse the `Title:`/`Subject:`/`Preheader:` head,
and repair a platform variation until it satisfies the platform's text rules.

Where a repair would lose meaning (`reask_reasons`: a text far over its limit, a thread
needing more parts than the platform allows, an empty text, an email without a subject),
the job first asks the model again, naming the violations (app/services/ai/attempts.py,
`platform_variation`). The deterministic `repair` is the final guarantee and always ends
within the rules: hashtags past the limit are dropped, an X thread is re-split at word
boundaries into numbered parts (and cut to the part limit), other posts are cut at the
last sentence (or word) that fits, an email gets a subject from the title and both headers
are trimmed. Media rules (Instagram needs an image) cannot be met by text: media are
attached by people later and checked on every read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from app.models.vocabulary import Platform
from app.platforms.rules import (
    HASHTAG,
    RULES,
    THREAD_BREAK,
    PlatformRule,
    Violation,
    count_characters,
    evaluate,
)

MAX_TITLE = 200
TEXT_RULES = frozenset(
    {
        "EMPTY",
        "TOO_LONG",
        "TOO_MANY_PARTS",
        "TOO_MANY_HASHTAGS",
        "SUBJECT_REQUIRED",
        "SUBJECT_TOO_LONG",
        "PREHEADER_TOO_LONG",
    }
)
_HEADER = re.compile(r"^(title|subject|preheader)\s*:\s*(.*)$", re.IGNORECASE)
_FENCE = re.compile(r"^```[\w-]*\s*$")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n+|$)\s*")
ELLIPSIS = "…"


@dataclass(frozen=True)
class Draft:
    title: str
    body: str
    subject: str | None = None
    preheader: str | None = None


def _cut(text: str, limit: int) -> str:
    """At most `limit` plain characters, at a word boundary, with an ellipsis if cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[: max(1, limit - 1)].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return head + ELLIPSIS


def parse(text: str, *, fallback_title: str) -> Draft:
    """Read the head lines a prompt asks for; tolerate their absence, Markdown emphasis
    around them and a code fence around the whole answer."""
    lines = [line for line in text.strip().splitlines() if not _FENCE.match(line.strip())]
    headers: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        match = _HEADER.match(line.strip("*_# ").replace("**", ""))
        if match and match[1].lower() not in headers:
            headers[match[1].lower()] = match[2].strip().strip("*_ ")
            index += 1
        elif not line and index < len(lines) and not headers:
            index += 1  # leading blank lines
        else:
            break
    body = "\n".join(lines[index:]).strip()
    title = headers.get("title") or ""
    if not title:
        first = next((ln.strip("# ").strip() for ln in body.splitlines() if ln.strip()), "")
        title = first or fallback_title
    return Draft(
        title=_cut(title, MAX_TITLE) or _cut(fallback_title, MAX_TITLE) or "Untitled draft",
        body=body,
        subject=headers.get("subject") or None,
        preheader=headers.get("preheader") or None,
    )


def text_violations(platform: Platform, draft: Draft) -> list[str]:
    evaluation = evaluate(platform, draft.body, subject=draft.subject, preheader=draft.preheader)
    return [v.code for v in evaluation.violations if v.code in TEXT_RULES]


# Over its limit by more than this share, a text would lose too much to a cut: worth asking
# the model again. Less, and a cut at a sentence (or re-splitting a thread) loses little.
REASK_OVER_SHARE = 0.2
# Violations a cut or a default cannot fix without losing meaning, whatever their size.
_ALWAYS_REASK = frozenset({"EMPTY", "TOO_MANY_PARTS", "SUBJECT_REQUIRED"})


def _far_over(size: int, limit: int | None) -> bool:
    return limit is not None and size > limit * (1 + REASK_OVER_SHARE)


def reask_reasons(platform: Platform, draft: Draft) -> list[Violation]:
    """The text-rule violations that `repair` could fix only by losing meaning, so the model
    should be asked again; [] when the draft is within the rules or a repair loses little
    (a few hashtags dropped, a text a little long cut at a sentence, a thread re-split)."""
    rule = RULES[platform]
    evaluation = evaluate(platform, draft.body, subject=draft.subject, preheader=draft.preheader)
    reasons: list[Violation] = []
    for violation in evaluation.violations:
        code = violation.code
        limit: int | None
        if code in _ALWAYS_REASK:
            reasons.append(violation)
            continue
        if code == "TOO_LONG" and violation.part is not None and rule.threads:
            # An explicit part of a thread, far too long: re-splitting would break the
            # author's parts mid-sentence.
            size = count_characters(evaluation.parts[violation.part - 1], rule)
            limit = rule.max_chars
        elif code == "TOO_LONG":
            size, limit = evaluation.character_count, rule.max_chars
        elif code == "SUBJECT_TOO_LONG":
            size, limit = len(draft.subject or ""), rule.subject_max
        elif code == "PREHEADER_TOO_LONG":
            size, limit = len(draft.preheader or ""), rule.preheader_max
        else:  # hashtags past the limit: dropping the last few loses little
            continue
        if _far_over(size, limit):
            reasons.append(violation)
    return reasons


def describe_violations(violations: list[Violation]) -> str:
    """The violations as lines for a repair prompt."""
    return "\n".join(f"- {v.code}: {v.message}" for v in violations)


def as_answer(draft: Draft) -> str:
    """The draft written back in the answer format the prompts ask for."""
    head = [f"Title: {draft.title}"]
    if draft.subject is not None:
        head.append(f"Subject: {draft.subject}")
    if draft.preheader is not None:
        head.append(f"Preheader: {draft.preheader}")
    return "\n".join(head) + "\n\n" + draft.body


def _limit_hashtags(body: str, limit: int) -> str:
    seen = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return match[0] if seen <= limit else ""

    trimmed = HASHTAG.sub(keep, body)
    return re.sub(r"[ \t]{2,}", " ", trimmed).strip()


def _fit(text: str, rule: PlatformRule, limit: int) -> str:
    """The longest run of whole sentences that fits `limit` counted characters; a trailing
    line of hashtags is kept if it still fits."""
    if count_characters(text, rule) <= limit:
        return text
    tags = ""
    paragraphs = text.rstrip().rsplit("\n\n", 1)
    if len(paragraphs) == 2 and all(w.startswith("#") for w in paragraphs[1].split()):
        text, tags = paragraphs[0], paragraphs[1]
    kept = ""
    for sentence in _SENTENCE.findall(text):
        candidate = kept + sentence
        if count_characters(candidate.rstrip(), rule) > limit:
            break
        kept = candidate
    kept = kept.rstrip()
    if not kept:  # one sentence longer than the limit: cut at a word
        words: list[str] = []
        for word in text.split():
            if count_characters(" ".join([*words, word]) + ELLIPSIS, rule) > limit:
                break
            words.append(word)
        kept = " ".join(words) + ELLIPSIS if words else text[: max(1, limit - 1)] + ELLIPSIS
    if tags and count_characters(f"{kept}\n\n{tags}", rule) <= limit:
        kept = f"{kept}\n\n{tags}"
    return kept


def _split_words(text: str, rule: PlatformRule, budget: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for word in text.split():
        if count_characters(word, rule) > budget:
            word = word[: budget - 1] + ELLIPSIS  # one unbreakable "word" (no spaces)
        if current and count_characters(" ".join([*current, word]), rule) > budget:
            parts.append(" ".join(current))
            current = []
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _rethread(body: str, rule: PlatformRule) -> str:
    """Every part small enough for its ` n/N` numbering, at most the part limit."""
    assert rule.max_chars is not None
    budget = rule.max_chars - len(" 99/99")
    pieces = [p.strip() for p in THREAD_BREAK.split(body) if p.strip()] or [body.strip()]
    parts: list[str] = []
    for piece in pieces:
        if count_characters(piece, rule) <= budget:
            parts.append(piece)
        else:
            parts.extend(_split_words(piece, rule, budget))
    return "\n---\n".join(parts[: rule.max_thread_parts])


def repair(platform: Platform, draft: Draft, *, title: str) -> tuple[Draft, list[str]]:
    """The draft made to satisfy the platform's text rules, and what was done to it."""
    rule = RULES[platform]
    done: list[str] = []
    body = draft.body.strip()
    if not body:
        body = title
        done.append("EMPTY: used the title")
    if rule.max_hashtags is not None and len(HASHTAG.findall(body)) > rule.max_hashtags:
        body = _limit_hashtags(body, rule.max_hashtags)
        done.append(f"TOO_MANY_HASHTAGS: kept the first {rule.max_hashtags}")
    fixed = replace(draft, body=body)
    codes = text_violations(platform, fixed)
    if rule.threads and rule.max_chars is not None and {"TOO_LONG", "TOO_MANY_PARTS"} & set(codes):
        body = _rethread(body, rule)
        done.append("TOO_LONG: re-split into numbered parts")
    elif rule.max_chars is not None and "TOO_LONG" in codes:
        body = _fit(body, rule, rule.max_chars)
        done.append(f"TOO_LONG: cut to {rule.max_chars} characters at a sentence")
    subject, preheader = draft.subject, draft.preheader
    if rule.subject_max is not None:
        if not (subject or "").strip():
            subject = title
            done.append("SUBJECT_REQUIRED: used the title")
        if len(subject or "") > rule.subject_max:
            subject = _cut(subject or "", rule.subject_max)
            done.append("SUBJECT_TOO_LONG: cut")
    if rule.preheader_max is not None and len(preheader or "") > rule.preheader_max:
        preheader = _cut(preheader or "", rule.preheader_max)
        done.append("PREHEADER_TOO_LONG: cut")
    if rule.subject_max is None:
        subject = preheader = None  # only email carries them
    repaired = Draft(title=draft.title, body=body, subject=subject, preheader=preheader)
    remaining = text_violations(platform, repaired)
    if remaining:  # cannot happen with the steps above; never save a broken variation
        raise ValueError(f"repair left {remaining} on {platform.value}")
    return repaired, done
