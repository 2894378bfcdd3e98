"""DataLoaders of the content library: items, their relations, campaigns, media, segments."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.models import (
    AudienceSegment,
    Campaign,
    Content,
    ContentComment,
    ContentPersonalization,
    ContentVariant,
    ContentVariation,
    ContentVersion,
    MediaAsset,
)
from app.pagination import Page
from app.services.ai import personalization, variants
from app.services.content import campaigns, comments, items, media, search, variations, versions
from app.services.content.variations import VariationRecord
from schema.loaders.base import PageKey, by_id, mapped, pages

if TYPE_CHECKING:
    from app.state import AppState


class ContentLoaders:
    def __init__(self, state: AppState) -> None:
        self.contents: DataLoader[uuid.UUID, Content | None] = DataLoader(
            load_fn=lambda ids: by_id(state, Content, ids, items.select_readable())
        )
        self.campaigns: DataLoader[uuid.UUID, Campaign | None] = DataLoader(
            load_fn=lambda ids: by_id(state, Campaign, ids)
        )
        self.variations: DataLoader[uuid.UUID, ContentVariation | None] = DataLoader(
            load_fn=lambda ids: by_id(state, ContentVariation, ids)
        )
        self.media: DataLoader[uuid.UUID, MediaAsset | None] = DataLoader(
            load_fn=lambda ids: by_id(state, MediaAsset, ids)
        )
        self.segments: DataLoader[uuid.UUID, AudienceSegment | None] = DataLoader(
            load_fn=lambda ids: by_id(state, AudienceSegment, ids)
        )
        self.variations_by_content: DataLoader[uuid.UUID, list[VariationRecord]] = DataLoader(
            load_fn=lambda ids: mapped(state, variations.variations_for, ids, list)
        )
        self.versions_by_content: DataLoader[uuid.UUID, list[ContentVersion]] = DataLoader(
            load_fn=lambda ids: mapped(state, versions.versions_for, ids, list)
        )
        self.comments_by_content: DataLoader[uuid.UUID, list[ContentComment]] = DataLoader(
            load_fn=lambda ids: mapped(state, comments.comments_for, ids, list)
        )
        self.comment_counts: DataLoader[uuid.UUID, int] = DataLoader(
            load_fn=lambda ids: mapped(state, comments.comment_counts, ids, int)
        )
        self.media_by_content: DataLoader[uuid.UUID, list[MediaAsset]] = DataLoader(
            load_fn=lambda ids: mapped(state, media.media_for_contents, ids, list)
        )
        # AI-written alternatives: by id (node), per item (Content), per generation record.
        self.personalizations: DataLoader[uuid.UUID, ContentPersonalization | None] = DataLoader(
            load_fn=lambda ids: by_id(state, ContentPersonalization, ids)
        )
        self.personalizations_by_content: DataLoader[uuid.UUID, list[ContentPersonalization]] = (
            DataLoader(
                load_fn=lambda ids: mapped(state, personalization.personalizations_for, ids, list)
            )
        )
        self.personalizations_by_generation: DataLoader[uuid.UUID, list[ContentPersonalization]] = (
            DataLoader(
                load_fn=lambda ids: mapped(
                    state, personalization.personalizations_by_generation, ids, list
                )
            )
        )
        self.variants: DataLoader[uuid.UUID, ContentVariant | None] = DataLoader(
            load_fn=lambda ids: by_id(state, ContentVariant, ids)
        )
        self.variants_by_content: DataLoader[uuid.UUID, list[ContentVariant]] = DataLoader(
            load_fn=lambda ids: mapped(state, variants.variants_for, ids, list)
        )
        self.variants_by_generation: DataLoader[uuid.UUID, list[ContentVariant]] = DataLoader(
            load_fn=lambda ids: mapped(state, variants.variants_by_generation, ids, list)
        )
        # (campaign id, first, after) -> a page of the campaign's items
        self.campaign_contents: DataLoader[PageKey, Page[Content]] = DataLoader(
            load_fn=lambda keys: pages(state, campaigns.campaign_pages, keys)
        )
        # (content id, how many) -> [(similar content id, cosine similarity)]
        self.similar: DataLoader[tuple[uuid.UUID, int], list[tuple[uuid.UUID, float]]] = DataLoader(
            load_fn=lambda keys: mapped(state, search.similar_many, keys, list)
        )
