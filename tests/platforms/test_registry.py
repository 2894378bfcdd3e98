"""Every platform but the webhook (its own engineer's) has an adapter in the registry, and
each says what delivery may rely on."""

from __future__ import annotations

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.registry import FACTORIES, publisher_for
from app.settings import Settings

pytestmark = pytest.mark.no_db


def test_every_platform_has_an_adapter() -> None:
    assert set(Platform) - set(FACTORIES) <= {Platform.WEBHOOK}


@pytest.mark.parametrize("platform", sorted(set(FACTORIES) - {Platform.WEBHOOK}), ids=str)
def test_adapters_declare_their_guarantees(platform: Platform) -> None:
    publisher = publisher_for(platform, httpx.AsyncClient(), Settings(_env_file=None))  # type: ignore[call-arg]
    assert publisher.platform is platform
    # Only Mastodon de-duplicates by our key; only Bluesky can look a lost post up.
    assert publisher.supports_idempotency_key is (platform is Platform.MASTODON)
    assert publisher.can_look_up is (platform is Platform.BLUESKY)
    assert publisher.supports_first_comment is (platform is not Platform.EMAIL)
