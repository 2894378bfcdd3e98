"""Parsing model answers and repairing variations to the platform rules."""

from __future__ import annotations

import pytest

from app.models.vocabulary import Platform
from app.platforms.rules import HASHTAG, evaluate
from app.services.ai import drafts

pytestmark = pytest.mark.no_db

SENTENCES = [
    "Content teams publish more than ever, and every platform wants its own shape.",
    "A blog post is long and patient; a post on X is short and quick.",
    "Repurposing by hand takes hours each week that nobody budgets for.",
    "Good tooling keeps the message and changes the form.",
    "Read https://example.com/guide for the long version of this argument.",
]


def blog_post(words: int = 1500) -> str:
    out: list[str] = []
    count = 0
    i = 0
    while count < words:
        sentence = SENTENCES[i % len(SENTENCES)]
        out.append(sentence)
        count += len(sentence.split())
        i += 1
        if i % 6 == 0:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n") + "\n\n#content #marketing"


def test_parse_reads_the_head_and_tolerates_markdown_and_fences() -> None:
    draft = drafts.parse(
        "```\n**Title:** Spring is here\nSubject: Big sale\nPreheader: 20% off\n\nHello there.\n```",
        fallback_title="x",
    )
    assert draft == drafts.Draft("Spring is here", "Hello there.", "Big sale", "20% off")
    bare = drafts.parse("## A heading\n\nBody text.", fallback_title="fallback")
    assert bare.title == "A heading" and bare.body.startswith("## A heading")
    assert drafts.parse("", fallback_title="From the brief").title == "From the brief"


def test_a_1500_word_blog_post_is_repaired_within_every_platform_limit() -> None:
    body = blog_post()
    assert len(body.split()) >= 1500
    for platform in (Platform.X, Platform.LINKEDIN, Platform.INSTAGRAM, Platform.BLUESKY):
        fixed, repairs = drafts.repair(platform, drafts.Draft("T", body), title="T")
        evaluation = evaluate(platform, fixed.body)
        text_problems = [v for v in evaluation.violations if v.code in drafts.TEXT_RULES]
        assert text_problems == [], (platform, text_problems)
        if platform is not Platform.X:
            assert repairs, platform
    x, _ = drafts.repair(Platform.X, drafts.Draft("T", body), title="T")
    parts = evaluate(Platform.X, x.body).parts
    assert 1 < len(parts) <= 25
    assert parts[0].endswith(f" 1/{len(parts)}")


def test_an_x_thread_with_overlong_explicit_parts_is_re_split() -> None:
    body = ("word " * 80).strip() + "\n---\n" + "short part"
    assert not evaluate(Platform.X, body).within_limits
    fixed, repairs = drafts.repair(Platform.X, drafts.Draft("T", body), title="T")
    assert evaluate(Platform.X, fixed.body).within_limits
    assert repairs == ["TOO_LONG: re-split into numbered parts"]


def test_instagram_keeps_at_most_30_hashtags() -> None:
    body = "Caption. " + " ".join(f"#tag{i}" for i in range(40))
    fixed, _ = drafts.repair(Platform.INSTAGRAM, drafts.Draft("T", body), title="T")
    assert len(HASHTAG.findall(fixed.body)) == 30
    assert "#tag29" in fixed.body and "#tag30" not in fixed.body


def test_a_post_is_cut_at_a_sentence_and_keeps_its_hashtags() -> None:
    body = " ".join(SENTENCES * 3) + "\n\n#a #b"
    fixed, _ = drafts.repair(Platform.BLUESKY, drafts.Draft("T", body), title="T")
    assert evaluate(Platform.BLUESKY, fixed.body).within_limits
    assert fixed.body.endswith("#a #b")
    assert fixed.body.split("\n\n")[0].endswith(".")


def test_email_gets_a_subject_and_trimmed_headers() -> None:
    fixed, repairs = drafts.repair(
        Platform.EMAIL, drafts.Draft("A title", "Hi!", preheader="p" * 300), title="A title"
    )
    assert fixed.subject == "A title" and len(fixed.preheader or "") <= 150
    assert evaluate(
        Platform.EMAIL, fixed.body, subject=fixed.subject, preheader=fixed.preheader
    ).within_limits
    assert "SUBJECT_REQUIRED: used the title" in repairs


def test_an_empty_answer_becomes_the_title_not_an_empty_post() -> None:
    fixed, _ = drafts.repair(Platform.LINKEDIN, drafts.Draft("T", "  "), title="The title")
    assert fixed.body == "The title"


def codes(platform: Platform, draft: drafts.Draft) -> list[str]:
    return [v.code for v in drafts.reask_reasons(platform, draft)]


def test_a_small_overrun_is_cut_but_a_large_one_is_worth_asking_again() -> None:
    sentence = "A sentence of exactly fifty characters, near enough. "
    assert codes(Platform.BLUESKY, drafts.Draft("T", (sentence * 6)[:330])) == [], "10% over"
    assert codes(Platform.BLUESKY, drafts.Draft("T", sentence * 9)) == ["TOO_LONG"], "50% over"
    assert codes(Platform.LINKEDIN, drafts.Draft("T", blog_post(1500))) == ["TOO_LONG"]
    assert codes(Platform.LINKEDIN, drafts.Draft("T", "Fine.")) == []
    # Hashtags past Instagram's 30 are dropped: nothing worth a second call.
    tags = "Caption. " + " ".join(f"#tag{i}" for i in range(40))
    assert codes(Platform.INSTAGRAM, drafts.Draft("T", tags)) == []
    assert codes(Platform.LINKEDIN, drafts.Draft("T", " ")) == ["EMPTY"]


def test_an_x_thread_is_asked_again_for_far_too_long_parts_or_too_many() -> None:
    # A long text without explicit parts becomes a thread by itself: fine.
    assert codes(Platform.X, drafts.Draft("T", "word " * 200)) == []
    # An explicit part a little over is re-split; one far over would be broken mid-thought.
    assert codes(Platform.X, drafts.Draft("T", "w" * 10 + " " + "x " * 140 + "\n---\nok")) == []
    far = ("word " * 120).strip() + "\n---\nshort part"
    assert codes(Platform.X, drafts.Draft("T", far)) == ["TOO_LONG"]
    # More than 25 parts of 280 can only be cut short.
    assert codes(Platform.X, drafts.Draft("T", blog_post(1500))) == ["TOO_MANY_PARTS"]
    explicit = "\n---\n".join(f"Part {i}." for i in range(30))
    assert codes(Platform.X, drafts.Draft("T", explicit)) == ["TOO_MANY_PARTS"]


def test_an_email_without_a_subject_or_with_far_too_long_headers_is_asked_again() -> None:
    assert codes(Platform.EMAIL, drafts.Draft("T", "Hi!")) == ["SUBJECT_REQUIRED"]
    assert codes(Platform.EMAIL, drafts.Draft("T", "Hi!", "s" * 110, "p" * 160)) == []
    assert codes(Platform.EMAIL, drafts.Draft("T", "Hi!", "s" * 130, "p" * 200)) == [
        "SUBJECT_TOO_LONG",
        "PREHEADER_TOO_LONG",
    ]


def test_a_draft_written_back_as_an_answer_parses_to_itself() -> None:
    for draft in (
        drafts.Draft("A title", "Body.\n\nMore."),
        drafts.Draft("Mail", "Hello.", "Subject line", "Preheader text"),
    ):
        assert drafts.parse(drafts.as_answer(draft), fallback_title="x") == draft
    text = drafts.describe_violations(
        drafts.reask_reasons(Platform.X, drafts.Draft("T", ("word " * 120) + "\n---\nb"))
    )
    assert text.startswith("- TOO_LONG: Part 1 has") and "the limit is 280" in text
