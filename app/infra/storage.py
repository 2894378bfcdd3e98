"""Blob storage behind one interface: local disk (default) or any S3-compatible service.

Downloads go through short-lived URLs: S3 presigned URLs, or for local disk a URL served by
the API itself (on `Settings.api_url`) and signed with HMAC, so media never needs a session
cookie. What a stored file may be served as is decided here, once, for both backends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from app.settings import Settings

URL_SECONDS = 3600
# Types a browser may show inline: raster images and (verified) videos. Nothing else is
# served inline from the API's origin, whatever its name says.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/quicktime",
        "video/webm",
    }
)
# No script, no plugin, no form, an opaque origin: even a mis-sniffed file cannot act.
MEDIA_CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
)


def served_as(content_type: str) -> tuple[str, str]:
    """(Content-Type, Content-Disposition) for a stored file of this (sniffed) type:
    inline for INLINE_TYPES, else an inert type as an attachment."""
    if content_type in INLINE_TYPES:
        return content_type, "inline"
    return "application/octet-stream", "attachment"


def serving_headers(content_type: str) -> dict[str, str]:
    """Every header a media download carries besides its body."""
    media_type, disposition = served_as(content_type)
    return {
        "Content-Type": media_type,
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": MEDIA_CSP,
        "Cache-Control": "private, max-age=3600",
    }


class Storage(Protocol):
    async def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def url(self, key: str, expires_in: int = URL_SECONDS) -> str: ...


def _safe_key(key: str) -> str:
    if ".." in key.split("/") or key.startswith("/"):
        raise ValueError(f"unsafe storage key: {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: Path, base_url: str, secret: str) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")  # the API's public address
        self._secret = secret.encode()

    def path_of(self, key: str) -> Path:
        return self.root / _safe_key(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self.path_of(key)

        def copy() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(path.read_bytes())
            tmp.replace(target)  # atomic: readers never see half a file

        await asyncio.to_thread(copy)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path_of(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, True)

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self._secret, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, expires_in: int = URL_SECONDS) -> str:
        expires = int(time.time()) + expires_in
        signature = self.signature(key, expires)
        return f"{self.base_url}/media/{quote(key)}?expires={expires}&signature={signature}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        return expires >= time.time() and hmac.compare_digest(
            self.signature(key, expires), signature
        )


class S3Storage:
    """boto3 (sync) run in threads; works with AWS S3, MinIO, R2 and other S3-compatible stores."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        if not settings.s3_bucket:
            raise ValueError("S3_BUCKET is required when MEDIA_STORAGE=s3")
        self.bucket = settings.s3_bucket
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            # SigV4 everywhere; path-style addressing works with MinIO and other S3 clones.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            aws_access_key_id=settings.s3_access_key_id.get_secret_value()
            if settings.s3_access_key_id
            else None,
            aws_secret_access_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
        )

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        # S3 serves what is stored with the object: the sniffed type and its disposition.
        # (It cannot add nosniff or a CSP: keep the bucket on an origin of its own.)
        media_type, disposition = served_as(content_type)
        await asyncio.to_thread(
            self._client.upload_file,
            str(path),
            self.bucket,
            _safe_key(key),
            ExtraArgs={"ContentType": media_type, "ContentDisposition": disposition},
        )

    async def get(self, key: str) -> bytes:
        response = await asyncio.to_thread(
            self._client.get_object, Bucket=self.bucket, Key=_safe_key(key)
        )
        body: bytes = await asyncio.to_thread(response["Body"].read)
        return body

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=_safe_key(key))

    def url(self, key: str, expires_in: int = URL_SECONDS) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": _safe_key(key)},
            ExpiresIn=expires_in,
        )
        return url


def build_storage(settings: Settings, secret: str) -> Storage:
    if settings.media_storage == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.media_dir, settings.api_url, secret)
