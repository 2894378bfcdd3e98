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
from app.ai.offline_rewrites import (
    personalize,
    split_paragraphs,
    split_sentences,
    variant,
    without_banned,
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


def _pick(options: tuple[str, ...], seed: str, alternative: int) -> str:
    digest = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=4).digest(), "little")
    return options[(digest + alternative) % len(options)]


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
    brief = split_sentences(spec.brief) or ["An update."]
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
    body = without_banned(body, banned)
    head = [f"Title: {without_banned(title, banned)}"]
    if spec.content_type == "EMAIL" or spec.platform == "EMAIL":
        head.append(f"Subject: {without_banned(title, banned)[:90]}")
        head.append(f"Preheader: {without_banned(opening, banned)[:140]}")
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


def _formal(text: str) -> str:
    for short, long in _CONTRACTIONS.items():
        text = re.sub(re.escape(short), long, text, flags=re.IGNORECASE)
    return text.replace("!", ".")


def refine(spec: DraftSpec) -> str:
    """Rule-based edits for common instructions: shorter, longer, more formal, more casual,
    add a call to action, add hashtags. Anything else leaves the text as it is."""
    source = (spec.source or "").strip()
    instruction = (spec.instruction or "").lower()
    title = spec.source_title or (split_sentences(source) or ["Draft"])[0].rstrip(".!?")[:90]
    paragraphs = split_paragraphs(source) or [source]
    if any(w in instruction for w in ("short", "concise", "brief", "trim", "cut", "tight")):
        if len(paragraphs) > 1:
            paragraphs = paragraphs[: max(1, (len(paragraphs) + 1) // 2)]
        else:
            sentences = split_sentences(paragraphs[0])
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
    body = without_banned("\n\n".join(paragraphs), banned)
    return f"Title: {without_banned(title, banned)}\n\n{body}"


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
    sentences = split_sentences(" ".join(lines))
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
    return "\n".join(head) + "\n\n" + without_banned(body, banned)


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
