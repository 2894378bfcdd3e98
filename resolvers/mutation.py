"""Root mutation: each domain's mutations."""

from __future__ import annotations

import strawberry

from resolvers.content import ContentMutation
from resolvers.identity import IdentityMutation
from resolvers.jobs import JobMutation
from resolvers.media import MediaMutation
from resolvers.review_links import ReviewMutation
from resolvers.segments import SegmentMutation
from resolvers.workspaces import WorkspaceMutation


@strawberry.type(description="Entry points for changing data.")
class Mutation(
    IdentityMutation,
    WorkspaceMutation,
    ContentMutation,
    MediaMutation,
    SegmentMutation,
    ReviewMutation,
    JobMutation,
):
    pass
