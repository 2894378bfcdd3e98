"""The media library: uploads checked by content sniffing and size, images measured from
their header and thumbnailed, videos parsed (see `media_files`), blobs in the configured
storage, rows in Postgres."""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
from app.services.content import media_files
from app.state import AppState

log = get_logger(__name__)

CHUNK = 256 * 1024
HEAD = 512  # bytes kept for sniffing
MAX_CONTENT_MEDIA = 20


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
                if len(head) < HEAD:
                    head += chunk[: HEAD - len(head)]
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


def _blob_names(filename: str, mime: str) -> tuple[str, str]:
    """(original, thumbnail) blob names: the upload's stem with the extension of its sniffed
    type, so nothing that guesses a type from a name (a proxy, a static file server over
    MEDIA_DIR) can be told `x.html` for what is a PNG; `.thumbnail.webp` is no sniffed
    type's extension, so the two never collide."""
    stem = Path(filename).stem.strip("-.")[:100] or "upload"
    return f"{stem}.{media_files.EXTENSIONS[mime]}", f"{stem}.thumbnail.webp"


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
        if received.size == 0:
            raise ValidationFailed([FieldError("file", UserErrorCode.EMPTY, "The file is empty.")])
        # The type comes from the bytes, never from the name or the client's Content-Type.
        mime = media_files.sniff(received.head)
        kind = media_files.classify(mime)
        limit = settings.max_image_bytes if kind == "IMAGE" else settings.max_video_bytes
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
        # Images: header checked before any decoding; videos: the container parsed. In the
        # bounded decode pool, off the event loop.
        inspected = await media_files.inspect_upload(received.path, mime, thumb_path, settings)
        asset_id = uuid.uuid4()
        filename = _clean_filename(file.filename)
        original, thumbnail = _blob_names(filename, mime)
        key = f"{workspace_id}/{asset_id}/{original}"
        thumb_key = f"{workspace_id}/{asset_id}/{thumbnail}" if inspected.thumbnail else None
        # Blobs first, row last: a failure leaves no row pointing at nothing (and the blobs
        # written so far are removed below).
        await state.storage.put_file(key, received.path, mime)
        stored.append(key)
        if thumb_key:
            await state.storage.put_file(thumb_key, thumb_path, media_files.THUMBNAIL_MIME)
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
                width=inspected.width,
                height=inspected.height,
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


async def served_type(state: AppState, key: str) -> str | None:
    """The type a stored blob is served as: the type sniffed at upload and kept in its row
    (or the thumbnail format), never one guessed from the key. None: no such asset/blob."""
    parts = key.split("/")
    try:
        asset_id = uuid.UUID(parts[1]) if len(parts) == 3 else None
    except ValueError:
        asset_id = None
    if asset_id is None:
        return None
    async with state.read_session_factory() as session:
        row = (
            await session.execute(
                select(
                    MediaAsset.mime_type, MediaAsset.storage_key, MediaAsset.thumbnail_key
                ).where(MediaAsset.id == asset_id)
            )
        ).one_or_none()
    if row is None:
        return None
    if key == row.storage_key:
        mime: str = row.mime_type
        return mime
    if key == row.thumbnail_key:
        return media_files.THUMBNAIL_MIME
    return None
