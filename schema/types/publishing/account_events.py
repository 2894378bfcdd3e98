"""socialAccountStatusChanged's events: an account as stored at a status change."""

from __future__ import annotations

from collections.abc import Hashable

import strawberry

from app.services.publishing.account_events import AccountChange
from schema.types.publishing.accounts import SocialAccount
from schema.types.vocabulary import AccountStatus


@strawberry.type(description="A connected account's status changed (or, catching up, needs care).")
class SocialAccountStatusChange:
    account: SocialAccount = strawberry.field(description="The account, as stored now.")
    status: AccountStatus = strawberry.field(description="Its status now.")
    reason: str | None = strawberry.field(
        description="Why it needs reconnecting (the platform's words), if it does."
    )
    catch_up: bool = strawberry.field(
        description="True when sent from stored state: at the start (accounts needing "
        "reconnection) or after missed events."
    )

    def shared_key(self) -> Hashable:
        # Results shared by the workspace's followers (schema.shared_events); equality of
        # the whole event is checked on a hit.
        return (self.account.id, self.status, self.catch_up)

    @classmethod
    def of(cls, change: AccountChange) -> SocialAccountStatusChange:
        row = change.account
        return cls(
            account=SocialAccount.from_row(row),
            status=AccountStatus(row.status),
            reason=row.status_reason,
            catch_up=change.catch_up,
        )
