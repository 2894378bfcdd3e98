"""Versioned prompt templates rendered with brand voice, audience and platform rules."""

from __future__ import annotations

import pytest

from app.ai import prompting as prompts
from app.models.vocabulary import ContentType, Platform

pytestmark = pytest.mark.no_db

VOICE = {
    "tone": "warm",
    "style_notes": "Short sentences.",
    "keywords": ["oat milk"],
    "banned_words": ["cheap"],
    "example_posts": ["We brew slow."],
}
SEGMENT = {
    "name": "Students",
    "description": "Busy undergraduates",
    "attributes": {"industry": "education", "interests": ["budget", "coffee"]},
}


def test_every_content_type_and_operation_has_a_template() -> None:
    for content_type in ContentType:
        template = prompts.get(prompts.template_name("generate", content_type.value))
        assert template.version >= 1
    for operation in ("refine", "transform", "repair"):
        assert prompts.get(prompts.template_name(operation)).version >= 1


@pytest.mark.parametrize("name", sorted(prompts.catalogue()))
def test_every_template_renders_with_every_placeholder_filled(name: str) -> None:
    for platform in (None, *Platform):
        rendered = prompts.render(
            prompts.get(name),
            brief="Launch of the oat latte",
            content_type="SOCIAL_POST",
            platform=platform,
            brand_voice=VOICE,
            segment=SEGMENT,
            keywords=["vegan"],
            instruction="shorter",
            source="Old text",
        )
        assert "$" not in rendered.system + rendered.user
        assert rendered.template == name


def test_render_carries_voice_audience_rules_and_version() -> None:
    rendered = prompts.render(
        prompts.get("generate_social_post"),
        brief="Launch of the oat latte ${not a placeholder} {braces}",
        content_type="SOCIAL_POST",
        tone="playful",
        length="SHORT",
        platform=Platform.X,
        brand_voice=VOICE,
        segment=SEGMENT,
        keywords=["vegan"],
    )
    assert rendered.version == 1
    assert "Never use these words: cheap" in rendered.system
    assert "Tone: warm" in rendered.system and "Example post 1: We brew slow." in rendered.system
    assert "Audience: Students" in rendered.system and "budget, coffee" in rendered.system
    assert "280 characters per post" in rendered.user and "23 characters" in rendered.user
    assert "in a playful tone" in rendered.user and "about 50 words" in rendered.user
    assert "${not a placeholder} {braces}" in rendered.user, "user text is inserted verbatim"
    assert "Keywords to include: vegan" in rendered.user


def test_email_templates_ask_for_subject_and_preheader() -> None:
    rendered = prompts.render(
        prompts.get("generate_email"), brief="Spring sale", content_type="EMAIL"
    )
    assert "Subject: <the subject line>" in rendered.user
    assert "Preheader:" in rendered.user
    instagram = prompts.describe_platform(Platform.INSTAGRAM)
    assert "2200 characters" in instagram and "30 hashtags" in instagram


def test_unknown_templates_and_versions_are_clear_errors() -> None:
    with pytest.raises(prompts.PromptNotFound):
        prompts.get("generate_poem")
    with pytest.raises(prompts.PromptNotFound):
        prompts.get("generate_email", version=99)
    assert prompts.get("generate_email", version=1).key == "generate_email.v1"


def test_the_repair_prompt_names_the_violations_the_limits_and_the_broken_text() -> None:
    rendered = prompts.render(
        prompts.get(prompts.template_name("repair")),
        platform=Platform.X,
        content_type="BLOG_POST",
        brand_voice=VOICE,
        answer="Title: Long\n\nA part far too long ${x}",
        violations="- TOO_LONG: Part 1 has 600 characters; the limit is 280.",
    )
    assert (rendered.template, rendered.version) == ("repair_platform", 1)
    assert "Never use these words: cheap" in rendered.system
    assert "- TOO_LONG: Part 1 has 600 characters; the limit is 280." in rendered.user
    assert "A part far too long ${x}" in rendered.user, "the answer is inserted verbatim"
    assert "280 characters per post" in rendered.user and "Title: <a title" in rendered.user
