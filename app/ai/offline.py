"""The offline draft writer: the default provider when no model is configured.

It is NOT a language model and never claims to be one: it composes a structured draft from
the brief, the brand voice, the audience segment and the platform's limits with fixed
templates, and reports `provider: "offline"`. It lets the whole product (jobs, streaming,
rule repair, metrics) run and be tested with no network and no key. It streams its draft
in small chunks, as a model would.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncGenerator

from app.ai.llm import (
    CompletionRequest,
    Delta,
    DraftSpec,
    Finished,
    StreamItem,
    Task,
    Usage,
)
from app.ai.tokens import usage_counts
from app.platforms.rules import RULES

NAME = "offline"
MODEL = "offline-draft-writer-v1"

_OPENINGS = {
    "formal": ("We are pleased to share an update.", "Here is what you should know."),
    "friendly": ("Here is something worth a minute of your day.", "Good news, friends!"),
    "playful": ("Guess what? We have been busy.", "Plot twist: it gets better."),
    "bold": ("This changes how you work.", "Stop settling for less."),
}
_DEFAULT_OPENINGS = ("Here is what is new.", "A quick update worth reading.")
_CTAS = ("Learn more on our website.", "Try it today and tell us what you think.")
_SECTIONS = ("Why it matters", "How it works", "What you can do next", "Getting started")
_PARAGRAPHS = {"SHORT": 1, "MEDIUM": 2, "LONG": 4}
_WORD = re.compile(r"\S+\s*")


def _sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    return [p if p[-1] in ".!?" else p + "." for p in parts]


def _pick(options: tuple[str, ...], seed: str, alternative: int) -> str:
    digest = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=4).digest(), "little")
    return options[(digest + alternative) % len(options)]


def _without_banned(text: str, banned: list[str]) -> str:
    for word in banned:
        if word.strip():
            text = re.sub(rf"\b{re.escape(word.strip())}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text).replace(" .", ".")


def _hashtag(word: str) -> str:
    return "#" + re.sub(r"\W+", "", word.title())


def compose(spec: DraftSpec) -> str:
    """The draft's text: a `Title:` line (and `Subject:`/`Preheader:` for email), a blank
    line, then the body."""
    voice = spec.brand_voice or {}
    tone = (spec.tone or str(voice.get("tone") or "")).strip().lower()
    keywords = [k for k in (*spec.keywords, *voice.get("keywords", [])) if str(k).strip()]
    keywords = list(dict.fromkeys(str(k).strip() for k in keywords))
    banned = [str(w) for w in voice.get("banned_words", [])]
    brief = _sentences(spec.brief) or ["An update."]
    title = brief[0].rstrip(".!?")
    title = title[:1].upper() + title[1:]
    if len(title) > 90:
        title = title[:87].rsplit(" ", 1)[0] + "..."
    openings = next((v for k, v in _OPENINGS.items() if k in tone), _DEFAULT_OPENINGS)
    opening = _pick(openings, spec.brief, spec.alternative)
    cta = _pick(_CTAS, spec.brief + "cta", spec.alternative)
    segment = spec.segment or {}
    audience = ""
    if segment.get("name"):
        interests = ", ".join(str(i) for i in segment.get("interests", [])[:3])
        care = f", who care about {interests}" if interests else ""
        audience = f"Written for {segment['name']}{care}."
    key_line = f"Key points: {', '.join(keywords)}." if keywords else ""

    paragraphs: list[str] = []
    count = _PARAGRAPHS.get(spec.length, 2)
    if spec.content_type == "BLOG_POST":
        paragraphs.append(" ".join([opening, *brief]))
        for i in range(count):
            section = _SECTIONS[i % len(_SECTIONS)]
            points = [s for s in (audience if i == 0 else "", key_line if i == 1 else "") if s]
            body = " ".join(brief[i % len(brief) :] or brief) if i else " ".join(brief)
            paragraphs.append(f"## {section}\n\n{body} {' '.join(points)}".strip())
        paragraphs.append(cta)
    else:
        sentences = [opening, *brief[: 1 + count * 2]]
        if audience and spec.length != "SHORT":
            sentences.append(audience)
        if key_line and spec.length == "LONG":
            sentences.append(key_line)
        sentences.append(cta)
        paragraphs.append(" ".join(sentences))
    body = "\n\n".join(paragraphs)
    if spec.content_type != "EMAIL" and spec.platform not in {"EMAIL", "WEBHOOK"} and keywords:
        limit = spec.max_hashtags if spec.max_hashtags is not None else 5
        tags = [_hashtag(k) for k in keywords[: min(limit, 5)]]
        if tags:
            body += "\n\n" + " ".join(tags)
    body = _without_banned(body, banned)
    head = [f"Title: {_without_banned(title, banned)}"]
    if spec.content_type == "EMAIL" or spec.platform == "EMAIL":
        head.append(f"Subject: {_without_banned(title, banned)[:90]}")
        head.append(f"Preheader: {_without_banned(opening, banned)[:140]}")
    return "\n".join(head) + "\n\n" + body


_CONTRACTIONS = {
    "can't": "cannot",
    "won't": "will not",
    "n't": " not",
    "'re": " are",
    "'ll": " will",
    "'ve": " have",
    "'m": " am",
    "it's": "it is",
    "that's": "that is",
    "let's": "let us",
}


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _formal(text: str) -> str:
    for short, long in _CONTRACTIONS.items():
        text = re.sub(re.escape(short), long, text, flags=re.IGNORECASE)
    return text.replace("!", ".")


def refine(spec: DraftSpec) -> str:
    """Rule-based edits for common instructions: shorter, longer, more formal, more casual,
    add a call to action, add hashtags. Anything else leaves the text as it is."""
    source = (spec.source or "").strip()
    instruction = (spec.instruction or "").lower()
    title = spec.source_title or (_sentences(source) or ["Draft"])[0].rstrip(".!?")[:90]
    paragraphs = _paragraphs(source) or [source]
    if any(w in instruction for w in ("short", "concise", "brief", "trim", "cut", "tight")):
        if len(paragraphs) > 1:
            paragraphs = paragraphs[: max(1, (len(paragraphs) + 1) // 2)]
        else:
            sentences = _sentences(paragraphs[0])
            paragraphs = [" ".join(sentences[: max(1, (len(sentences) + 1) // 2)])]
    if any(w in instruction for w in ("long", "expand", "detail", "more about")):
        keywords = ", ".join(spec.keywords) if spec.keywords else "what matters most"
        paragraphs.append(f"Here is more detail: it comes down to {keywords}.")
    if "formal" in instruction or "professional" in instruction:
        paragraphs = [_formal(p) for p in paragraphs]
    if any(w in instruction for w in ("casual", "friendly", "warm", "fun")):
        paragraphs[0] = "Here is the thing: " + paragraphs[0]
    if "call to action" in instruction or "cta" in instruction.split():
        paragraphs.append(_pick(_CTAS, source, spec.alternative))
    if "hashtag" in instruction and spec.keywords:
        paragraphs.append(" ".join(_hashtag(k) for k in spec.keywords[:5]))
    banned = [str(w) for w in (spec.brand_voice or {}).get("banned_words", [])]
    body = _without_banned("\n\n".join(paragraphs), banned)
    return f"Title: {_without_banned(title, banned)}\n\n{body}"


_THREADED = {p.value for p, rule in RULES.items() if rule.threads}
_TAGS_ROOM = 80  # characters kept free for the hashtag line


def _fitting(sentences: list[str], limit: int) -> list[str]:
    """The leading sentences that fit in `limit` characters together (at least one)."""
    kept: list[str] = []
    size = -1  # no space before the first
    for sentence in sentences:
        size += 1 + len(sentence)
        if kept and size > limit:
            break
        kept.append(sentence)
    return kept


def adapt(spec: DraftSpec) -> str:
    """Repurpose `source` for `platform`: the sentences of the text without Markdown
    headings, the platform's shape (email headers), hashtags from the keywords. A post
    keeps the whole sentences that fit its limit (a thread, six at most); the platform-rule
    repair that follows is the guarantee."""
    source = spec.source or ""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith("#")]
    sentences = _sentences(" ".join(lines))
    title = spec.source_title or (sentences[0].rstrip(".!?")[:90] if sentences else "Update")
    limit = spec.max_chars
    if limit is None:
        body_sentences = sentences
    elif spec.platform in _THREADED:
        body_sentences = sentences[:6]
    else:
        body_sentences = _fitting(sentences, limit - _TAGS_ROOM)
    body = " ".join(body_sentences) or title
    existing = set(re.findall(r"#\w+", source))
    tags = [_hashtag(k) for k in spec.keywords[:5]] + sorted(existing)[:5]
    head = [f"Title: {title}"]
    if spec.platform == "EMAIL":
        preheader = sentences[1] if len(sentences) > 1 else title
        head += [f"Subject: {title[:90]}", f"Preheader: {preheader[:140]}"]
    elif tags and spec.platform not in {"WEBHOOK"}:
        limit_tags = spec.max_hashtags if spec.max_hashtags is not None else 5
        body += "\n\n" + " ".join(list(dict.fromkeys(tags))[: min(5, limit_tags)])
    banned = [str(w) for w in (spec.brand_voice or {}).get("banned_words", [])]
    return "\n".join(head) + "\n\n" + _without_banned(body, banned)


_BEGINNER = ("beginner", "new", "novice", "junior", "entry", "student")
_EXPERT = ("expert", "advanced", "senior", "professional", "specialist")


def _strings(values: object, limit: int = 3) -> list[str]:
    items = values if isinstance(values, list | tuple) else []
    return [str(v).strip() for v in items if str(v).strip()][:limit]


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _source_parts(spec: DraftSpec) -> tuple[str, list[str], int]:
    """The title, the paragraphs, and the index of the first one that is not a heading."""
    source = (spec.source or "").strip()
    title = spec.source_title or (_sentences(source) or ["Update"])[0].rstrip(".!?")[:90]
    paragraphs = _paragraphs(source) or [title + "."]
    first = next((i for i, p in enumerate(paragraphs) if not p.startswith("#")), 0)
    return title, paragraphs, first


def _take(paragraphs: list[str], sentence: str) -> list[str]:
    """The paragraphs without the first occurrence of `sentence` (as `_sentences` gave it,
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
    lead = _sentences(paragraphs[first])
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
        found = [s for p in paragraphs for s in _sentences(p) if mentioned[0].lower() in s.lower()]
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
    title_line = _without_banned(new_title, banned)
    return f"Title: {title_line}\n\n{_without_banned(body, banned)}\n\nChanges:\n{listed}"


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
            for n, s in enumerate(s for i in text for s in _sentences(paragraphs[i]))
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
        last = _sentences(paragraphs[text[-1]])[-1]
        paragraphs = [f"Do not wait: {last}", *_take(paragraphs, last)]
        said = "Call to action first: the original's last sentence moved to the top."
    else:  # "question"
        new_title = f"{topic}?"
        paragraphs.insert(0, f'Want to know what "{topic}" means for you?')
        said = f'Question hook: opens by asking what "{topic}" means for the reader.'
    body = "\n\n".join(paragraphs)
    if spec.max_chars is not None and len(body) > spec.max_chars:
        kept: list[str] = []
        for sentence in _sentences(" ".join(paragraphs)):
            if len(" ".join([*kept, sentence])) > spec.max_chars:
                break
            kept.append(sentence)
        body = " ".join(kept) or body[: spec.max_chars]
        said += f" Cut to the whole sentences that fit {spec.max_chars} characters."
    banned = [str(w) for w in spec.brand_voice.get("banned_words", [])]
    title_line = _without_banned(new_title, banned)
    return f"Angle: {said}\nTitle: {title_line}\n\n{_without_banned(body, banned)}"


class OfflineWriter:
    """Streams `compose(...)` in chunks of a few words, `delay_seconds` apart."""

    def __init__(self, *, delay_seconds: float = 0.0, words_per_chunk: int = 3) -> None:
        self.name = NAME
        self._delay = delay_seconds
        self._words = max(1, words_per_chunk)

    def model_for(self, task: Task) -> str:
        return MODEL

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        started = time.perf_counter()
        spec = request.draft or DraftSpec(brief=request.prompt)
        if spec.source is not None and spec.angle is not None:
            write = variant
        elif spec.source is not None and spec.personalize:
            write = personalize
        elif spec.source is not None and spec.instruction is not None:
            write = refine
        elif spec.source is not None:
            write = adapt
        else:
            write = compose
        size = len(spec.brief) + len(spec.source or "")
        text = await asyncio.to_thread(write, spec) if size > 5000 else write(spec)
        pieces = _WORD.findall(text)
        first: float | None = None
        for i in range(0, len(pieces), self._words):
            if i and self._delay:
                await asyncio.sleep(self._delay)
            if first is None:
                first = time.perf_counter()
            yield Delta("".join(pieces[i : i + self._words]))
            if not self._delay:
                await asyncio.sleep(0)  # let others run, as a network stream would
        input_tokens, output_tokens, _ = await usage_counts(request, text)
        yield Finished(
            Usage(
                provider=NAME,
                model=MODEL,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                estimated=True,
                first_token_ms=(first - started) * 1000 if first is not None else None,
                total_ms=(time.perf_counter() - started) * 1000,
            )
        )
