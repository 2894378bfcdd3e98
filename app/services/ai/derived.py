"""Shared by the jobs that write text derived from an item without changing it
(personalizeContent, generateVariants): the item they start from, its text as the prompt
shows it, one model call whose answer must be usable (asked once more if not), and the
sections a prompt asks for around the text (`Changes:` after it, `Angle:` before it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from app.ai import prompting as prompts
from app.ai.llm import DraftSpec, Task
from app.jobs.runner import JobContext, PermanentJobError
from app.models import Content
from app.services.ai.attempts import Accounting, Inputs, complete_stage, completion
from app.services.ai.progress import Streamer
from app.settings import Settings

_SPACE = re.compile(r"\s+")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
# "<change> Why: <reason>" (also "because:"/"reason:", after a dash, in bold).
_REASON = re.compile(
    r"\s*(?:[-\u2013\u2014]+\s*)?\**\b(?:why|because|reason)\b\**\s*:\**\s*", re.IGNORECASE
)
MAX_CHANGES = 12
DASHES = " -\u2013\u2014"  # hyphen, en and em dash
MAX_CHANGE_CHARS = 300


class UnusableAnswer(Exception):
    """The model's answer could not be saved (empty, or the same as a text we have), even
    when asked again: the attempt fails and the job is retried or fails with this reason."""


async def load_item(ctx: JobContext, inputs: Inputs) -> Content:
    if inputs.generation.content_id is None:
        raise PermanentJobError("the generation names no content")
    async with ctx.factory() as session:
        content = await session.get(Content, inputs.generation.content_id)
    if content is None or content.deleted_at is not None:
        raise PermanentJobError("the content was deleted")
    return content


def item_source(content: Content) -> str:
    return f"Title: {content.title}\n\n{content.body}"


def normalised(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


async def ask(
    ctx: JobContext,
    settings: Settings,
    streamer: Streamer,
    accounting: Accounting,
    *,
    stage: str,
    index: int,
    fraction: float,
    rendered: prompts.RenderedPrompt,
    spec: DraftSpec,
    task: Task,
    max_tokens: int,
    problem: Callable[[str], str | None],
    temperature: float = 0.7,
) -> str:
    """One stage's answer; `problem(answer)` says what makes it unusable (None: usable).
    An unusable answer is asked for once more, with the problem named."""
    request = completion(rendered, spec, task=task, max_tokens=max_tokens, temperature=temperature)
    for attempt in range(2):
        answer = await complete_stage(
            ctx,
            settings,
            streamer,
            accounting,
            stage=stage,
            index=index,
            fraction=fraction,
            request=request,
        )
        issue = problem(answer)
        if issue is None:
            return answer
        if attempt == 0:
            note = f"\n\nYour previous answer could not be used: {issue}. Answer again."
            request = replace(request, prompt=request.prompt + note)
    raise UnusableAnswer(f"{stage} {index}: {issue}")


def _label_line(line: str, name: str, *, heading: bool = False) -> str | None:
    """The value of a `Name: value` line (Markdown emphasis or heading marks allowed);
    with `heading`, a line of just the name (`## Changes`) counts too, with value ""."""
    colon = ":?" if heading else ":"
    pattern = rf"^[#*_\s]*{name}[*_\s]*{colon}[*_\s]*(.*)$"
    match = re.match(pattern, line.strip(), re.IGNORECASE)
    if match is None or (heading and ":" not in line and match[1].strip()):
        return None  # "Changes to the menu ..." is a sentence, not the section
    return match[1].strip().strip("*_ ")


def split_angle(answer: str) -> tuple[str, str | None]:
    """The answer without its first `Angle:` line, and that line's value."""
    lines = answer.splitlines()
    for i, line in enumerate(lines):
        value = _label_line(line, "angle")
        if value:
            return "\n".join(lines[:i] + lines[i + 1 :]), value[:MAX_CHANGE_CHARS]
    return answer, None


def split_changes(answer: str) -> tuple[str, list[dict[str, str | None]]]:
    """The answer without its trailing `Changes:` section, and the section's items as
    {change, reason} (reason None when the item gave none)."""
    lines = answer.splitlines()
    heads = [
        i for i, line in enumerate(lines) if _label_line(line, "changes", heading=True) is not None
    ]
    if not heads:
        return answer, []
    head = heads[-1]
    items: list[dict[str, str | None]] = []
    rest = [_label_line(lines[head], "changes", heading=True) or "", *lines[head + 1 :]]
    for line in rest:
        text = _BULLET.sub("", line).strip()
        if not text or len(items) >= MAX_CHANGES:
            continue
        change, reason = _split_reason(text)
        items.append({"change": change, "reason": reason})
    return "\n".join(lines[:head]).rstrip(), items


def _split_reason(text: str) -> tuple[str, str | None]:
    parts = _REASON.split(text, maxsplit=1)
    change = parts[0].strip().rstrip(DASHES)[:MAX_CHANGE_CHARS] or text[:MAX_CHANGE_CHARS]
    reason = parts[1].strip()[:MAX_CHANGE_CHARS] if len(parts) > 1 else ""
    return change, reason or None
