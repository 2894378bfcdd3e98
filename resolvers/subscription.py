"""Root subscription: live updates over websockets (graphql-transport-ws)."""

from __future__ import annotations

import strawberry

from resolvers.account_events import AccountSubscription
from resolvers.ai import AISubscription
from resolvers.analytics.performance import PerformanceSubscription
from resolvers.jobs import JobSubscription
from resolvers.publishing import PublishingSubscription


@strawberry.type(description="Live updates over websockets (graphql-transport-ws).")
class Subscription(
    JobSubscription,
    AISubscription,
    PublishingSubscription,
    AccountSubscription,
    PerformanceSubscription,
):
    pass
