"""contentPerformance: platform metrics of a content item per target, per platform and in
all, with their history; and performanceUpdated's events."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import strawberry

from app.services.analytics import performance, performance_updates
from app.services.analytics.performance import Figures
from schema.context import Info
from schema.types.content.items import Content
from schema.types.publishing.posts import PostTarget
from schema.types.vocabulary import Platform


@strawberry.interface(
    description="Platform counters summed over the targets they cover (each target's latest "
    "snapshot), and the rates computed from them. A counter is null when no target's "
    "platform reports it."
)
class PerformanceFigures:
    impressions: int | None = strawberry.field(
        description="Times the posts were shown (X impressions, Threads and Instagram views, "
        "Facebook post impressions)."
    )
    reach: int | None = strawberry.field(
        description="Distinct accounts that saw the posts (Facebook, Instagram)."
    )
    likes: int | None = strawberry.field(description="Likes, favourites or reactions.")
    comments: int | None = strawberry.field(description="Comments or replies.")
    shares: int | None = strawberry.field(description="Shares, reposts and quotes.")
    clicks: int | None = strawberry.field(description="Link clicks, where the platform says.")
    saves: int | None = strawberry.field(description="Saves or bookmarks (Instagram, X).")
    engagement_rate: float | None = strawberry.field(
        description="(likes + comments + shares) / impressions, over the targets reporting "
        "impressions above 0; null when impressions are 0 or unknown."
    )
    ctr: float | None = strawberry.field(
        description="Click-through rate: clicks / impressions, over the targets reporting "
        "both; null when either is unknown or impressions are 0."
    )


def _figures(value: Figures) -> dict[str, Any]:
    """The interface's fields, as keyword arguments."""
    return asdict(value)


@strawberry.type(description="The figures at one time: one snapshot, or a sum of snapshots.")
class PerformancePoint(PerformanceFigures):
    collected_at: datetime = strawberry.field(description="When the platform was asked.")

    @classmethod
    def of(cls, point: performance.Point) -> PerformancePoint:
        return cls(collected_at=point.collected_at, **_figures(point.figures))


async def _snapshots(info: Info, content_id: uuid.UUID) -> list[performance.Snapshot]:
    return await info.context.loaders.performance.history.load(content_id)


@strawberry.type(description="One published target's figures: its latest snapshot.")
class TargetPerformance(PerformanceFigures):
    platform: Platform = strawberry.field(description="The target's platform.")
    published_at: datetime | None = strawberry.field(description="When it went out.")
    collected_at: datetime | None = strawberry.field(
        description="When its latest snapshot was taken; null before the first (1 h after "
        "publishing)."
    )
    target_id: strawberry.Private[uuid.UUID]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The post target (null if no longer visible).")
    async def target(self, info: Info) -> PostTarget | None:
        [node] = await PostTarget.resolve_nodes(info=info, node_ids=[str(self.target_id)])
        return node

    @strawberry.field(description="Its snapshots, oldest first.")
    async def history(self, info: Info) -> list[PerformancePoint]:
        mine = [s for s in await _snapshots(info, self.content_id) if s.target_id == self.target_id]
        return [PerformancePoint.of(p) for p in performance.series(mine)]

    @classmethod
    def of(cls, value: performance.TargetPerformance, content_id: uuid.UUID) -> TargetPerformance:
        return cls(
            platform=Platform(value.platform.value),
            published_at=value.published_at,
            collected_at=value.latest.collected_at if value.latest else None,
            target_id=value.target_id,
            content_id=content_id,
            **_figures(value.figures),
        )


@strawberry.type(description="A content item's figures on one platform: its targets summed.")
class PlatformPerformance(PerformanceFigures):
    platform: Platform = strawberry.field(description="The platform.")
    collected_at: datetime | None = strawberry.field(
        description="The latest snapshot of any of its targets."
    )
    targets: list[TargetPerformance] = strawberry.field(
        description="Each published target on this platform, first published first."
    )
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="Over time: at each snapshot of one of its targets, the sum of each "
        "target's latest snapshot up to then."
    )
    async def history(self, info: Info) -> list[PerformancePoint]:
        platform = self.platform.value
        mine = [s for s in await _snapshots(info, self.content_id) if s.platform == platform]
        return [PerformancePoint.of(p) for p in performance.series(mine)]

    @classmethod
    def of(
        cls, value: performance.PlatformPerformance, content_id: uuid.UUID
    ) -> PlatformPerformance:
        return cls(
            platform=Platform(value.platform.value),
            collected_at=value.collected_at,
            targets=[TargetPerformance.of(t, content_id) for t in value.targets],
            content_id=content_id,
            **_figures(value.figures),
        )


@strawberry.type(
    description="How a content item performed where it was published: per platform and "
    "per target from each target's latest snapshot (collected 1 h, 6 h, 24 h, 72 h and 7 d "
    "after publishing), and in all."
)
class ContentPerformance(PerformanceFigures):
    collected_at: datetime | None = strawberry.field(
        description="The latest snapshot of any target; null before the first."
    )
    platforms: list[PlatformPerformance] = strawberry.field(
        description="One entry per platform it was published to, by platform name."
    )
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The content item (null if no longer visible).")
    async def content(self, info: Info) -> Content | None:
        [node] = await Content.resolve_nodes(info=info, node_ids=[str(self.content_id)])
        return node

    @strawberry.field(
        description="All platforms over time: at each snapshot, the sum of each target's "
        "latest snapshot up to then."
    )
    async def history(self, info: Info) -> list[PerformancePoint]:
        snapshots = await _snapshots(info, self.content_id)
        return [PerformancePoint.of(p) for p in performance.series(snapshots)]

    @classmethod
    def of(cls, value: performance.ContentPerformance) -> ContentPerformance:
        return cls(
            collected_at=value.collected_at,
            platforms=[PlatformPerformance.of(p, value.content_id) for p in value.platforms],
            content_id=value.content_id,
            **_figures(value.figures),
        )


@strawberry.type(
    description="A new snapshot of one published target: its figures as the platform "
    "reported them then."
)
class PerformanceUpdate(PerformanceFigures):
    platform: Platform = strawberry.field(description="The target's platform.")
    collected_at: datetime = strawberry.field(description="When the platform was asked.")
    catch_up: bool = strawberry.field(
        description="True when sent to catch up after missed events (collected while this "
        "subscriber was not receiving)."
    )
    target_id: strawberry.Private[uuid.UUID]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The post target (null if no longer visible).")
    async def target(self, info: Info) -> PostTarget | None:
        [node] = await PostTarget.resolve_nodes(info=info, node_ids=[str(self.target_id)])
        return node

    @strawberry.field(description="The content item (null if no longer visible).")
    async def content(self, info: Info) -> Content | None:
        [node] = await Content.resolve_nodes(info=info, node_ids=[str(self.content_id)])
        return node

    def shared_key(self) -> Hashable:
        # Results shared by the workspace's subscribers (schema.shared_events); equality of
        # the whole event is checked on a hit.
        return (self.target_id, self.collected_at, self.catch_up)

    @classmethod
    def of(cls, update: performance_updates.SnapshotUpdate) -> PerformanceUpdate:
        snapshot = update.snapshot
        return cls(
            platform=Platform(snapshot.platform.value),
            collected_at=snapshot.collected_at,
            catch_up=update.catch_up,
            target_id=snapshot.target_id,
            content_id=update.content_id,
            **_figures(performance.figures([snapshot])),
        )
