"""First comments at schedule time: refused where the platform takes none (webhook,
email), checked against the platform's text rules (one reply, never cut into a thread);
reschedulePost's replacement of a post's comment checked the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import PostTarget
from app.models.vocabulary import Platform
from app.platforms import registry, rules
from app.services.publishing.comments import initial_status
from app.settings import Settings


def _no_request(request: httpx.Request) -> httpx.Response:
    raise RuntimeError("checks before sending must not make requests")


# Adapters are built around a client; validating a post or asking a capability never sends.
NO_HTTP = httpx.AsyncClient(transport=httpx.MockTransport(_no_request))


def comment_problems(
    settings: Settings, platform: Platform, label: str, text: str
) -> list[FieldError]:
    """At schedule time: a first comment only where the platform takes one, within its
    text rules (a comment is one reply, never cut into a thread)."""
    factory = registry.FACTORIES.get(platform)
    if factory is None or not factory(NO_HTTP, settings).supports_first_comment:
        return [
            FieldError(
                "firstComment",
                UserErrorCode.FIRST_COMMENT_UNSUPPORTED,
                f"{label}: {platform.value} takes no comments; schedule it without one.",
            )
        ]
    return [
        FieldError("firstComment", UserErrorCode.BREAKS_PLATFORM_RULES, f"{label}: {v.message}")
        for v in rules.comment_violations(platform, text)
    ]


def replacement(
    settings: Settings, pending: Sequence[PostTarget], text: str | None
) -> dict[str, Any]:
    """reschedulePost's new first comment for targets not out yet, checked like at
    schedule time: the columns to write ({} when `text` is None; "" removes it)."""
    if text is None:
        return {}
    if text:
        errors = [
            e
            for t in pending
            for e in comment_problems(settings, Platform(t.platform), t.platform, text)
        ]
        if errors:
            raise ValidationFailed(errors)
    return {"first_comment": text or None, "comment_status": initial_status(text)}
