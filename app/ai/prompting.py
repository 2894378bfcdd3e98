"""Prompt templates: versioned files in app/ai/prompts/, `<operation>_<content_type>.v<N>.txt`.

A template has a `[system]` and a `[user]` section and `$name` placeholders
(`string.Template`: user text containing braces or dollars is inserted as it is, never
interpreted). A changed prompt is a new file with the next version, so a stored job always
names the exact text it was generated from (`name` and `version`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.models.vocabulary import Platform
from app.platforms.rules import RULES, Counting

DIRECTORY = Path(__file__).parent / "prompts"  # the versioned template files
_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.txt$")
_SECTIONS = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)

LENGTH_GUIDE = {
    "SHORT": "short (about 50 words)",
    "MEDIUM": "medium-length (about 150 words)",
    "LONG": "long (about 600 words)",
}
BLOG_LENGTH_GUIDE = {
    "SHORT": "short (about 300 words)",
    "MEDIUM": "medium-length (about 800 words)",
    "LONG": "long (about 1,500 words)",
}
OPERATIONS = ("generate", "refine", "transform", "repair", "personalize", "variants")
# The hooks A/B-test variants take, in the order they are tried (app/services/ai/variants.py;
# the offline writer implements each key mechanically).
VARIANT_ANGLES: dict[str, str] = {
    "question": "Open with a question your reader wants answered, then answer it.",
    "benefit": "Lead with the main benefit to the reader, in the first sentence.",
    "story": "Open with a short, concrete scenario the reader recognises (invent no facts, "
    "figures, names or quotes).",
    "bold": "Open with a bold, confident one-line statement that the rest of the text supports.",
    "action": "Lead with the call to action and a reason to act now; keep the rest short.",
}


class PromptNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    system: string.Template
    user: string.Template

    @property
    def key(self) -> str:
        return f"{self.name}.v{self.version}"


@dataclass(frozen=True)
class RenderedPrompt:
    template: str
    version: int
    system: str
    user: str


def _parse(path: Path, name: str, version: int) -> Template:
    text = path.read_text(encoding="utf-8")
    parts = _SECTIONS.split(text)
    # ["", "system", body, "user", body]
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path.name}: needs a [system] and a [user] section")
    return Template(
        name,
        version,
        string.Template(sections["system"].strip()),
        string.Template(sections["user"].strip()),
    )


@lru_cache(maxsize=1)
def catalogue() -> dict[str, list[Template]]:
    """Every template by name, oldest version first."""
    found: dict[str, list[Template]] = {}
    for path in sorted(DIRECTORY.glob("*.txt")):
        match = _FILE.match(path.name)
        if match is None:
            raise ValueError(f"prompt file {path.name} is not <name>.v<N>.txt")
        name, version = match["name"], int(match["version"])
        found.setdefault(name, []).append(_parse(path, name, version))
    for versions in found.values():
        versions.sort(key=lambda t: t.version)
    return found


def template_name(operation: str, content_type: str | None = None) -> str:
    if operation == "generate":
        return f"generate_{(content_type or 'SOCIAL_POST').lower()}"
    if operation == "refine":
        return "refine_content"
    if operation == "transform":
        return "transform_platform"
    if operation == "repair":  # a platform variation that broke the rules, asked again
        return "repair_platform"
    if operation == "personalize":
        return "personalize_content"
    if operation == "variants":
        return "generate_variants"
    raise PromptNotFound(f"no prompt for operation {operation!r}")


def get(name: str, version: int | None = None) -> Template:
    """The newest version of `name`, or exactly `version` (to re-run a stored job)."""
    versions = catalogue().get(name)
    if not versions:
        raise PromptNotFound(f"no prompt template {name!r}")
    if version is None:
        return versions[-1]
    for template in versions:
        if template.version == version:
            return template
    raise PromptNotFound(f"no version {version} of prompt template {name!r}")


def _list(values: Any, limit: int = 30) -> list[str]:
    if not isinstance(values, list | tuple):
        return []
    return [str(v).strip() for v in values[:limit] if str(v).strip()]


def describe_brand_voice(voice: dict[str, Any] | None) -> str:
    voice = voice or {}
    lines = ["Brand voice:"]
    if tone := str(voice.get("tone") or "").strip():
        lines.append(f"- Tone: {tone}")
    if notes := str(voice.get("style_notes") or "").strip():
        lines.append(f"- Style notes: {notes[:2000]}")
    if keywords := _list(voice.get("keywords")):
        lines.append(f"- Brand keywords: {', '.join(keywords)}")
    if banned := _list(voice.get("banned_words"), 100):
        lines.append(f"- Never use these words: {', '.join(banned)}")
    examples = _list(voice.get("example_posts"), 3)
    for i, example in enumerate(examples, 1):
        lines.append(f"- Example post {i}: {example[:600]}")
    if len(lines) == 1:
        lines.append("- No brand voice set: clear, friendly and professional.")
    return "\n".join(lines)


def describe_audience(segment: dict[str, Any] | None) -> str:
    if not segment or not segment.get("name"):
        return "Audience: a general professional audience."
    lines = [f"Audience: {segment['name']}"]
    if description := str(segment.get("description") or "").strip():
        lines.append(f"- Who they are: {description[:1000]}")
    attributes = segment.get("attributes") or {}
    if industry := attributes.get("industry"):
        lines.append(f"- Industry: {industry}")
    if level := attributes.get("experience_level"):
        lines.append(f"- Experience level: {level}")
    if interests := _list(attributes.get("interests")):
        lines.append(f"- Interests: {', '.join(interests)}")
    return "\n".join(lines)


def describe_platform(platform: Platform | None) -> str:
    """The platform's limits in words, from the one rules table."""
    if platform is None:
        return ""
    rule = RULES[platform]
    lines = [f"\nPlatform: {platform.value}. Its rules:"]
    if rule.threads and rule.max_chars:
        lines.append(
            f"- At most {rule.max_chars} characters per post; a longer text becomes a "
            f"thread: separate the parts with a line containing only `---`, at most "
            f"{rule.max_thread_parts} parts (numbering is added for you)."
        )
    elif rule.max_chars:
        lines.append(f"- At most {rule.max_chars} characters in total.")
    if rule.counting is Counting.X_WEIGHTED:
        lines.append("- Every link counts as 23 characters; CJK characters and emoji count as 2.")
    elif rule.counting is Counting.GRAPHEMES:
        lines.append("- Characters are counted as readers see them (an emoji is one).")
    if rule.max_hashtags is not None:
        lines.append(f"- At most {rule.max_hashtags} hashtags.")
    if rule.subject_max:
        lines.append(f"- A subject line of at most {rule.subject_max} characters.")
    if rule.preheader_max:
        lines.append(f"- A preheader of at most {rule.preheader_max} characters.")
    if len(lines) == 1:
        lines.append("- No length limit.")
    return "\n".join(lines)


def output_format(content_type: str, platform: Platform | None) -> str:
    email = content_type == "EMAIL" or platform is Platform.EMAIL
    lines = ["\nAnswer in exactly this format:", "Title: <a title of at most 90 characters>"]
    if email:
        lines += ["Subject: <the subject line>", "Preheader: <the preheader>"]
    lines += ["", "<the text>"]
    return "\n".join(lines)


def item_format(content_type: str) -> str:
    """The head and text of a whole item (for emails the title is the subject line)."""
    if content_type == "EMAIL":
        title = "Title: <the email's subject line, at most 100 characters>"
    else:
        title = "Title: <a title of at most 90 characters>"
    return f"{title}\n\n<the text>"


def describe_targets(platforms: Any) -> str:
    """The strictest text limits among the platforms a short piece also goes to."""
    targets = [p for p in platforms or () if isinstance(p, Platform)]
    limits = [m for p in targets if (m := RULES[p].max_chars)]
    if not limits:
        return ""
    names = ", ".join(p.value for p in targets)
    line = (
        f"\nThis piece is also posted on {names}: keep it within {min(limits)} characters "
        "(the strictest of their limits)"
    )
    hashtags = [h for p in targets if (h := RULES[p].max_hashtags) is not None]
    if hashtags:
        line += f" and at most {min(hashtags)} hashtags"
    return line + "."


def render(template: Template, **values: Any) -> RenderedPrompt:
    """Fill a template. Every placeholder must have a value (a missing one is a bug)."""
    content_type = str(values.get("content_type") or "SOCIAL_POST")
    platform = values.get("platform")
    length = str(values.get("length") or "MEDIUM")
    guides = BLOG_LENGTH_GUIDE if content_type == "BLOG_POST" else LENGTH_GUIDE
    tone = str(values.get("tone") or "").strip()
    keywords = _list(values.get("keywords"))
    filled = {
        "brief": str(values.get("brief") or ""),
        "content_type": content_type.replace("_", " ").lower(),
        "length_guide": guides.get(length, guides["MEDIUM"]),
        "tone_clause": f" in a {tone} tone" if tone else "",
        "keywords": ", ".join(keywords) if keywords else "(none)",
        "brand_voice": describe_brand_voice(values.get("brand_voice")),
        "audience": describe_audience(values.get("segment")),
        "platform": platform.value if isinstance(platform, Platform) else "",
        "platform_rules": describe_platform(platform if isinstance(platform, Platform) else None),
        "output_format": output_format(
            content_type, platform if isinstance(platform, Platform) else None
        ),
        "instruction": str(values.get("instruction") or ""),
        "source": str(values.get("source") or ""),
        # Repairing a variation: the answer that broke the rules, and how it broke them.
        "answer": str(values.get("answer") or ""),
        "violations": str(values.get("violations") or ""),
        "item_format": item_format(content_type),
        "angle": str(values.get("angle") or ""),
        "label": str(values.get("label") or "B"),
        "target_limits": describe_targets(values.get("platforms")),
    }
    return RenderedPrompt(
        template=template.name,
        version=template.version,
        system=template.system.substitute(filled),
        user=template.user.substitute(filled),
    )
