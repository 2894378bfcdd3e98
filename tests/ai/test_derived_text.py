"""The text side of personalisation and variants, without a database: the offline writer's
rules, the sections parsed out of a model's answer, and the prompts."""

from __future__ import annotations

import pytest

from app.ai import offline
from app.ai import prompting as prompts
from app.ai.llm import DraftSpec
from app.models.vocabulary import Platform
from app.services.ai.derived import split_angle, split_changes

pytestmark = pytest.mark.no_db

BLOG = (
    "Remote teams lose hours to meetings. Async updates fix that. Here is how we do it.\n\n"
    "## Why it matters\n\nFewer meetings mean more focus. Teams ship faster.\n\n"
    "## Getting started\n\nWrite one update a day. Try it this week."
)


def _spec(**values: object) -> DraftSpec:
    return DraftSpec(brief="", source=BLOG, source_title="Async by default", **values)  # type: ignore[arg-type]


def test_offline_personalisation_lists_exactly_what_it_did() -> None:
    segment = {
        "name": "Engineering managers",
        "attributes": {
            "experience_level": "senior",
            "industry": "software",
            "interests": ["focus"],
        },
    }
    text = offline.personalize(_spec(segment=segment, personalize=True))
    body, changes = split_changes(text)
    assert body.startswith("Title: Async by default, for Engineering managers\n\n")
    assert "A note for Engineering managers in software: Async updates fix that." in body
    assert "Remote teams lose hours" not in body, "senior readers skip the lead-in"
    assert "## Why it matters" in body and "## Getting started" in body, "structure kept"
    assert "Fewer meetings mean more focus." in body.split("\n\n")[2], "their interest near the top"
    assert [c["change"] for c in changes] == [
        'Retitled it "Async by default, for Engineering managers".',
        "Dropped the opening sentence.",
        "Opened with a line addressed to Engineering managers in software.",
        "Repeated the sentence on focus near the top.",
    ]
    assert all(c["reason"] for c in changes)


def test_offline_personalisation_of_a_bare_segment_still_says_why() -> None:
    body, changes = split_changes(
        offline.personalize(_spec(segment={"name": "Everyone"}, personalize=True))
    )
    assert "A note for Everyone: Remote teams" in body
    assert len(changes) == 2 and all(c["reason"] for c in changes)


def test_every_angle_gives_a_different_variant_that_says_what_it_did() -> None:
    outputs = {
        key: split_angle(offline.variant(_spec(angle=key, keywords=("focus",))))
        for key in prompts.VARIANT_ANGLES
    }
    bodies = {text for text, _angle in outputs.values()}
    stated = {angle for _text, angle in outputs.values()}
    assert len(bodies) == len(stated) == len(prompts.VARIANT_ANGLES)
    assert all(text.startswith("Title: ") for text in bodies) and None not in stated
    benefit, said = outputs["benefit"]
    assert benefit.split("\n\n")[1] == "Fewer meetings mean more focus."
    assert said and "Fewer meetings mean more focus." in said
    action, _ = outputs["action"]
    assert action.split("\n\n")[1] == "Do not wait: Try it this week."
    assert "## Why it matters" in outputs["question"][0], "headings kept"


def test_a_variant_for_short_platforms_keeps_the_sentences_that_fit() -> None:
    text, said = split_angle(offline.variant(_spec(angle="bold", max_chars=120)))
    body = text.split("\n\n", 1)[1]
    assert len(body) <= 120 and body.endswith(".")
    assert said and "120 characters" in said


def test_changes_and_angle_sections_are_read_from_common_shapes() -> None:
    answer = (
        "Title: T\n\nThe text.\n\n## Changes\n"
        "1) Shorter sentences -- Why: they read on phones\n"
        "* Led with the price **Why:** budget\n"
        "- Plain words, because they are new\n"
    )
    body, changes = split_changes(answer)
    assert body == "Title: T\n\nThe text."
    assert changes == [
        {"change": "Shorter sentences", "reason": "they read on phones"},
        {"change": "Led with the price", "reason": "budget"},
        {"change": "Plain words, because they are new", "reason": None},
    ]
    assert split_changes("Title: T\n\nNo list here.") == ("Title: T\n\nNo list here.", [])
    text, angle = split_angle("Title: T\n\nBody.\n\n*Angle*: story-led")
    assert (text, angle) == ("Title: T\n\nBody.\n", "story-led")
    assert split_angle("Title: T\n\nBody.")[1] is None


def test_the_prompts_carry_the_segment_the_angle_and_the_strictest_limits() -> None:
    assert prompts.template_name("personalize") == "personalize_content"
    assert prompts.template_name("variants") == "generate_variants"
    segment = {
        "name": "Students",
        "description": "Undergraduates",
        "attributes": {"interests": ["budget"]},
    }
    personal = prompts.render(
        prompts.get("personalize_content"),
        source="Title: T\n\nBody",
        content_type="EMAIL",
        segment=segment,
        brand_voice={"banned_words": ["cheap"]},
    )
    assert "Audience: Students" in personal.user and "Interests: budget" in personal.user
    assert "Never use these words: cheap" in personal.system
    assert "email's subject line" in personal.user and "Why: <the reason" in personal.user
    variant = prompts.render(
        prompts.get("generate_variants"),
        source="Title: T\n\nBody",
        angle=prompts.VARIANT_ANGLES["story"],
        label="D",
        platforms=[Platform.LINKEDIN, Platform.BLUESKY, Platform.INSTAGRAM],
    )
    assert "Write variant D" in variant.user and "concrete scenario" in variant.user
    assert "keep it within 300 characters" in variant.user
    assert "at most 30 hashtags" in variant.user and variant.user.count("Angle:") == 1
    assert prompts.describe_targets([Platform.EMAIL, Platform.WEBHOOK]) == ""
