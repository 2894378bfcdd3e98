"""What can be known before a post is saved: every reason one of its targets could not go
out (account not connected, wrong variation, the platform's rules and the adapter's own
validation), all at once. schedulePost and importSchedule both refuse through it."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import AccountStatus, Content, ContentVariation, SocialAccount
from app.models.vocabulary import Platform
from app.platforms import registry
from app.services.publishing import compose
from app.services.publishing.accounts import unseal
from app.services.publishing.comment_checks import NO_HTTP, comment_problems
from app.state import AppState


async def check_targets(
    state: AppState,
    session: AsyncSession,
    content: Content,
    variation: ContentVariation | None,
    accounts: list[SocialAccount],
    *,
    platform_variations: dict[str, ContentVariation] | None = None,
    content_has_media: bool | None = None,
    first_comment: str | None = None,
) -> None:
    """Every reason a target could not go out that is known now, all at once.
    `platform_variations` (with `content_has_media`): the caller loaded the content's
    variations per platform already (a bulk import), so nothing is looked up again.
    `first_comment`: checked for each account's platform too."""
    errors: list[FieldError] = []
    for account in accounts:
        platform = Platform(account.platform)
        label = f"{account.name} ({platform.value})"
        if account.status != AccountStatus.CONNECTED.value:
            state_text = account.status.lower().replace("_", " ")
            errors.append(
                FieldError(
                    "socialAccountIds",
                    UserErrorCode.ACCOUNT_NOT_CONNECTED,
                    f"{label} is {state_text}; connect it again first.",
                )
            )
            continue
        if variation is not None and variation.platform != account.platform:
            errors.append(
                FieldError(
                    "variationId",
                    UserErrorCode.INVALID,
                    f"The variation is for {variation.platform}; {label} is not.",
                )
            )
            continue
        if platform_variations is None:
            draft = await compose.draft_for(session, content, platform, variation)
        else:
            draft = await compose.draft_for(
                session,
                content,
                platform,
                variation or platform_variations.get(account.platform),
                find_variation=False,
                content_has_media=content_has_media,
            )
        evaluation = compose.check(draft)
        problems = [v.message for v in evaluation.violations]
        if platform in registry.FACTORIES and not problems:
            post = compose.post_of(
                draft,
                evaluation,
                target_id=uuid.uuid4(),
                content_id=content.id,
                idempotency_key="check",
                storage=None,
            )
            publisher = registry.publisher_for(platform, NO_HTTP, state.settings)
            problems = publisher.validate(post, unseal(state.keys.box, account.credentials))
        if problems:
            errors.append(
                FieldError(
                    "socialAccountIds",
                    UserErrorCode.BREAKS_PLATFORM_RULES,
                    f"{label}: {' '.join(problems)}",
                )
            )
        if first_comment is not None:
            errors += comment_problems(state.settings, platform, label, first_comment)
    if errors:
        raise ValidationFailed(errors)
