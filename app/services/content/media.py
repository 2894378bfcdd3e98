"""The media library: uploads checked by content sniffing and size, images measured and
thumbnailed (Pillow), blobs in the configured storage, rows in Postgres."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import filetype
from PIL import Image, UnidentifiedImageError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.logging import get_logger
from app.models import Content, ContentMedia, MediaAsset
from app.pagination import Page
from app.permissions import Action, Role
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

log = get_logger(__name__)

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
THUMBNAIL_SIZE = (320, 320)
CHUNK = 256 * 1024
MAX_CONTENT_MEDIA = 20
# Refuse decompression bombs: a tiny file that expands to gigapixels.
Image.MAX_IMAGE_PIXELS = 80_000_000


class Readable(Protocol):
    """What an upload offers (Starlette's UploadFile fits)."""

    filename: str | None

    async def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Received:
    path: Path
    size: int
    sha256: str
    head: bytes


async def _receive(upload: Readable, limit: int) -> Received:
    """Stream the upload to a temporary file, hashing it; stop as soon as it is too big."""
    digest = hashlib.sha256()
    handle = tempfile.NamedTemporaryFile(prefix="upload-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    size = 0
    head = b""
    try:
        with handle:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(
                        [
                            FieldError(
                                "file",
                                UserErrorCode.TOO_LARGE,
                                f"Files may be at most {limit // 1_000_000} MB.",
                            )
                        ]
                    )
                if len(head) < 512:
                    head += chunk[: 512 - len(head)]
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink of our own temp file
        raise
    return Received(path=path, size=size, sha256=digest.hexdigest(), head=head)


def _clean_filename(name: str | None) -> str:
    base = Path(name or "upload").name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "upload"
    return cleaned[:120]


def _measure_image(path: Path, thumb_path: Path) -> tuple[int, int, str]:
    """(width, height, thumbnail mime type); raises ValidationFailed for broken images."""
    try:
        with Image.open(path) as probe:
            probe.verify()  # structure check; the image must be reopened after verify
        with Image.open(path) as image:
            width, height = image.size
            image.thumbnail(THUMBNAIL_SIZE)
            if image.mode in ("RGBA", "LA", "P"):
                image.convert("RGBA").save(thumb_path, "PNG")
                return width, height, "image/png"
            image.convert("RGB").save(thumb_path, "JPEG", quality=85)
            return width, height, "image/jpeg"
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationFailed(
            [FieldError("file", UserErrorCode.INVALID_IMAGE, "The image cannot be read.")]
        ) from exc


async def upload(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, file: Readable, *, alt_text: str
) -> MediaAsset:
    principal.require(workspace_id, Action.CONTENT_EDIT)
    settings = state.settings
    if len(alt_text) > 1000:
        raise ValidationFailed(
            [FieldError("altText", UserErrorCode.TOO_LONG, "At most 1000 characters.")]
        )
    received = await _receive(file, max(settings.max_image_bytes, settings.max_video_bytes))
    thumb_path = received.path.with_suffix(".thumb")
    stored: list[str] = []
    try:
        kind_guess = filetype.guess(received.head)
        mime = kind_guess.mime if kind_guess else "application/octet-stream"
        if mime in IMAGE_TYPES:
            kind, limit = "IMAGE", settings.max_image_bytes
        elif mime in VIDEO_TYPES:
            kind, limit = "VIDEO", settings.max_video_bytes
        else:
            raise ValidationFailed(
                [
                    FieldError(
                        "file",
                        UserErrorCode.UNSUPPORTED_TYPE,
                        f"{mime} is not a supported image or video type.",
                    )
                ]
            )
        if received.size > limit:
            raise ValidationFailed(
                [
                    FieldError(
                        "file",
                        UserErrorCode.TOO_LARGE,
                        f"{kind.lower()}s may be at most {limit // 1_000_000} MB.",
                    )
                ]
            )
        if received.size == 0:
            raise ValidationFailed([FieldError("file", UserErrorCode.EMPTY, "The file is empty.")])
        width = height = None
        thumb_mime = None
        if kind == "IMAGE":
            width, height, thumb_mime = await asyncio.to_thread(
                _measure_image, received.path, thumb_path
            )
        asset_id = uuid.uuid4()
        filename = _clean_filename(file.filename)
        key = f"{workspace_id}/{asset_id}/{filename}"
        thumb_key = f"{workspace_id}/{asset_id}/thumbnail" if thumb_mime else None
        # Blobs first, row last: a failure leaves no row pointing at nothing (and the blobs
        # written so far are removed below).
        await state.storage.put_file(key, received.path, mime)
        stored.append(key)
        if thumb_key and thumb_mime:
            await state.storage.put_file(thumb_key, thumb_path, thumb_mime)
            stored.append(thumb_key)
        async with state.session_factory() as session, session.begin():
            asset = MediaAsset(
                id=asset_id,
                workspace_id=workspace_id,
                kind=kind,
                mime_type=mime,
                filename=filename,
                size_bytes=received.size,
                sha256=received.sha256,
                width=width,
                height=height,
                alt_text=alt_text.strip(),
                storage_key=key,
                thumbnail_key=thumb_key,
                created_by_id=principal.user_id,
            )
            session.add(asset)
            audit.record(
                session,
                principal,
                "uploadMedia",
                workspace_id=workspace_id,
                target_type="MediaAsset",
                target_id=asset_id,
                details={"filename": filename, "mime_type": mime, "size": received.size},
            )
        stored.clear()
    finally:
        for leftover in stored:
            try:
                await state.storage.delete(leftover)
            except Exception as exc:
                log.warning("media_cleanup_failed", key=leftover, error=repr(exc))
        received.path.unlink(missing_ok=True)
        thumb_path.unlink(missing_ok=True)
    return await get(state, principal, asset_id)


async def get(state: AppState, principal: Principal, asset_id: uuid.UUID) -> MediaAsset:
    return await lookup.fetch_scoped(
        state.session_factory, MediaAsset, asset_id, principal, Action.CONTENT_READ
    )


async def update_alt_text(
    state: AppState, principal: Principal, asset_id: uuid.UUID, alt_text: str
) -> MediaAsset:
    if len(alt_text) > 1000:
        raise ValidationFailed(
            [FieldError("altText", UserErrorCode.TOO_LONG, "At most 1000 characters.")]
        )
    async with state.session_factory() as session, session.begin():
        asset = await lookup.scoped_row(
            session, MediaAsset, asset_id, principal, Action.CONTENT_EDIT, for_update=True
        )
        asset.alt_text = alt_text.strip()
        audit.record_row(session, principal, "updateMedia", asset)
    return asset


async def delete_asset(state: AppState, principal: Principal, asset_id: uuid.UUID) -> None:
    """Members delete their own uploads; admins any. The row goes first, then the blobs."""
    async with state.session_factory() as session, session.begin():
        asset = await lookup.scoped_row(
            session, MediaAsset, asset_id, principal, None, for_update=True
        )
        role = principal.require(asset.workspace_id, Action.CONTENT_EDIT)
        if role < Role.ADMIN and asset.created_by_id != principal.user_id:
            raise ValidationFailed(
                [
                    FieldError(
                        None, UserErrorCode.NOT_OWNER, "Members can delete only their own uploads."
                    )
                ]
            )
        keys = [k for k in (asset.storage_key, asset.thumbnail_key) if k]
        await session.delete(asset)
        audit.record_row(session, principal, "deleteMedia", asset, {"filename": asset.filename})
    for key in keys:
        try:
            await state.storage.delete(key)
        except Exception as exc:
            log.warning("media_blob_delete_failed", key=key, error=repr(exc))


async def list_media(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, *, first: int, after: str | None
) -> Page[MediaAsset]:
    return await lookup.workspace_page(
        state.session_factory,
        principal,
        MediaAsset,
        workspace_id,
        Action.CONTENT_READ,
        first=first,
        after=after,
    )


async def set_content_media(
    state: AppState, principal: Principal, content_id: uuid.UUID, media_ids: list[uuid.UUID]
) -> None:
    if len(media_ids) > MAX_CONTENT_MEDIA or len(set(media_ids)) != len(media_ids):
        raise ValidationFailed(
            [
                FieldError(
                    "mediaIds",
                    UserErrorCode.INVALID,
                    f"At most {MAX_CONTENT_MEDIA} distinct media.",
                )
            ]
        )
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_EDIT, for_update=True
        )
        found = set(
            (
                await session.scalars(
                    select(MediaAsset.id).where(
                        MediaAsset.id.in_(media_ids),
                        MediaAsset.workspace_id == content.workspace_id,
                    )
                )
            ).all()
        )
        if set(media_ids) - found:
            raise ValidationFailed(
                [
                    FieldError(
                        "mediaIds", UserErrorCode.NOT_FOUND, "Some media are not in this workspace."
                    )
                ]
            )
        await session.execute(delete(ContentMedia).where(ContentMedia.content_id == content_id))
        for position, media_id in enumerate(media_ids):
            session.add(ContentMedia(content_id=content_id, media_id=media_id, position=position))
        audit.record(
            session,
            principal,
            "setContentMedia",
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content_id,
            details={"count": len(media_ids)},
        )


async def media_for_contents(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MediaAsset]]:
    rows = (
        await session.execute(
            select(ContentMedia.content_id, MediaAsset)
            .join(MediaAsset, MediaAsset.id == ContentMedia.media_id)
            .where(ContentMedia.content_id.in_(content_ids))
            .order_by(ContentMedia.content_id, ContentMedia.position)
        )
    ).all()
    out: dict[uuid.UUID, list[MediaAsset]] = {i: [] for i in content_ids}
    for content_id, asset in rows:
        out[content_id].append(asset)
    return out
