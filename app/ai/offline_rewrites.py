"""The offline writer's rewrites of an existing text (a version for an audience segment,
an A/B variant) and the sentence helpers the whole offline writer shares.

Like the rest of app/ai/offline it follows fixed rules, adds no facts, and lists what it
did; it is not a language model."""

from __future__ import annotations

import re

from app.ai.llm import (
    DraftSpec,
)

# Words in a segment's "level" attribute that say how much the reader already knows.
_BEGINNER = ("beginner", "new", "novice", "junior", "entry", "student")
_EXPERT = ("expert", "advanced", "senior", "professional", "specialist")


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    return [p if p[-1] in ".!?" else p + "." for p in parts]


def without_banned(text: str, banned: list[str]) -> str:
    for word in banned:
        if word.strip():
            text = re.sub(rf"\b{re.escape(word.strip())}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text).replace(" .", ".")


def split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _strings(values: object, limit: int = 3) -> list[str]:
    items = values if isinstance(values, list | tuple) else []
    return [str(v).strip() for v in items if str(v).strip()][:limit]


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _source_parts(spec: DraftSpec) -> tuple[str, list[str], int]:
    """The title, the paragraphs, and the index of the first one that is not a heading."""
    source = (spec.source or "").strip()
    title = spec.source_title or (split_sentences(source) or ["Update"])[0].rstrip(".!?")[:90]
    paragraphs = split_paragraphs(source) or [title + "."]
    first = next((i for i, p in enumerate(paragraphs) if not p.startswith("#")), 0)
    return title, paragraphs, first


def _take(paragraphs: list[str], sentence: str) -> list[str]:
    """The paragraphs without the first occurrence of `sentence` (as `split_sentences` gave it,
    perhaps with a full stop added), and without any paragraph left empty."""
    out, done = [], False
    for paragraph in paragraphs:
        for raw in (sentence, sentence[:-1]):
            if not done and raw and raw in paragraph:
                paragraph, done = paragraph.replace(raw, "", 1).strip(), True
        out.append(paragraph)
    return [p for p in out if p]


def _before_tags(paragraphs: list[str]) -> int:
    """Where a closing line goes: before a trailing line of hashtags."""
    end = len(paragraphs)
    while end > 1 and all(w.startswith("#") for w in paragraphs[end - 1].split()):
        end -= 1
    return end


def personalize(spec: DraftSpec) -> str:
    """The text adapted to `segment` by fixed rules, then a `Changes:` list of exactly the
    edits made and the segment attribute behind each. The writer cannot judge an audience:
    it applies what the segment states (name, industry, experience level, interests) and
    the brand's banned words."""
    segment = spec.segment or {}
    attributes = segment.get("attributes") or {}
    name = str(segment.get("name") or "this audience").strip()
    industry = str(attributes.get("industry") or "").strip()
    level = str(attributes.get("experience_level") or "").strip()
    title, paragraphs, first = _source_parts(spec)
    short = title.rstrip(".!?")
    if len(short) > 84 - len(name):
        short = short[: max(10, 84 - len(name))].rsplit(" ", 1)[0]
    new_title = f"{short}, for {name}"
    changes = [(f'Retitled it "{new_title}".', f"{name} see at once that it is for them.")]
    lead = split_sentences(paragraphs[first])
    if any(w in level.lower() for w in _EXPERT) and len(lead) >= 3:
        paragraphs[first] = " ".join(lead[1:])
        changes.append(("Dropped the opening sentence.", f"{level} readers skip the lead-in."))
    elif any(w in level.lower() for w in _BEGINNER) and lead:
        paragraphs.insert(_before_tags(paragraphs), f"In short: {lead[0]}")
        changes.append(('Ended with an "In short" recap.', f"{level} readers like the recap."))
    where = f" in {industry}" if industry else ""
    paragraphs[first] = f"A note for {name}{where}: {paragraphs[first]}"
    why = f"the segment works in {industry}." if industry else "readers notice a text for them."
    changes.append((f"Opened with a line addressed to {name}{where}.", why))
    interests = _strings(attributes.get("interests"))
    text = " ".join(paragraphs).lower()
    if mentioned := [i for i in interests if i.lower() in text]:
        found = [
            s for p in paragraphs for s in split_sentences(p) if mentioned[0].lower() in s.lower()
        ]
        if found and found[0] not in paragraphs[first]:
            paragraphs.insert(first + 1, found[0])
            changes.append(
                (f"Repeated the sentence on {mentioned[0]} near the top.", f"{name} care about it.")
            )
    if missing := [i for i in interests if i not in mentioned]:
        question = f"How does this fit your work on {_joined(missing)}? Tell us."
        paragraphs.insert(_before_tags(paragraphs), question)
        changes.append(
            (
                f"Added a closing question on {_joined(missing)}.",
                "they are the segment's stated interests and the text did not mention them.",
            )
        )
    banned = [str(w).strip() for w in (spec.brand_voice or {}).get("banned_words", [])]
    body = "\n\n".join(paragraphs)
    pattern = r"\b{}\b"
    if used := [w for w in banned if w and re.search(pattern.format(re.escape(w)), body, re.I)]:
        changes.append((f"Removed {_joined(used)}.", "the brand voice bans these words."))
    listed = "\n".join(f"- {change} Why: {reason}" for change, reason in changes)
    title_line = without_banned(new_title, banned)
    return f"Title: {title_line}\n\n{without_banned(body, banned)}\n\nChanges:\n{listed}"


def variant(spec: DraftSpec) -> str:
    """An A/B variant with the hook `angle` (a key of prompting.VARIANT_ANGLES) made by a
    fixed rearrangement of the original, under an `Angle:` line that says what was done.
    Nothing is invented; with `max_chars` it keeps the whole sentences that fit."""
    title, paragraphs, first = _source_parts(spec)
    topic, new_title = title.rstrip(".!?"), title
    text = [i for i, p in enumerate(paragraphs) if not p.startswith("#")] or [first]
    if spec.angle == "benefit":
        voice = _strings(spec.brand_voice.get("keywords"), 30)
        words = [k.lower() for k in (*spec.keywords, *voice)]
        ranked = [
            (sum(s.lower().count(w) for w in words), -n, s)
            for n, s in enumerate(s for i in text for s in split_sentences(paragraphs[i]))
        ]
        best = max(ranked)[2] if max(ranked)[0] else ranked[min(1, len(ranked) - 1)][2]
        paragraphs = [best, *_take(paragraphs, best)]
        said = f'Benefit first: moves "{best[:80]}" (the sentence naming the keywords most, '
        said += "or else the second) to the top."
    elif spec.angle == "story":
        paragraphs[first] = f"Picture this: {paragraphs[first]}"
        said = 'Scenario opening: "Picture this:" before the first paragraph; nothing added.'
    elif spec.angle == "bold":
        paragraphs.insert(0, f"{topic}. Here is why.")
        said = 'Bold statement: opens with the title as a one-line claim, then "Here is why."'
    elif spec.angle == "action":
        last = split_sentences(paragraphs[text[-1]])[-1]
        paragraphs = [f"Do not wait: {last}", *_take(paragraphs, last)]
        said = "Call to action first: the original's last sentence moved to the top."
    else:  # "question"
        new_title = f"{topic}?"
        paragraphs.insert(0, f'Want to know what "{topic}" means for you?')
        said = f'Question hook: opens by asking what "{topic}" means for the reader.'
    body = "\n\n".join(paragraphs)
    if spec.max_chars is not None and len(body) > spec.max_chars:
        kept: list[str] = []
        for sentence in split_sentences(" ".join(paragraphs)):
            if len(" ".join([*kept, sentence])) > spec.max_chars:
                break
            kept.append(sentence)
        body = " ".join(kept) or body[: spec.max_chars]
        said += f" Cut to the whole sentences that fit {spec.max_chars} characters."
    banned = [str(w) for w in spec.brand_voice.get("banned_words", [])]
    title_line = without_banned(new_title, banned)
    return f"Angle: {said}\nTitle: {title_line}\n\n{without_banned(body, banned)}"
