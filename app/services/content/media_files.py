"""What an uploaded file really is, decided from its bytes and never from its name: the type
sniffed from its content, images measured from their header (and refused when too large
before anything is decoded), videos parsed as containers, thumbnails made at reduced scale.

Decoding and parsing are CPU-bound and their cost grows with the file: they run in a small
thread pool of their own (`MEDIA_DECODE_CONCURRENCY` threads per process), never on the
event loop, and no more of them at once than that.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filetype
from hachoir.core import config as hachoir_config
from hachoir.parser.container.mkv import MkvFile
from hachoir.parser.container.mp4 import MP4File
from hachoir.stream import FileInputStream
from PIL import Image, UnidentifiedImageError

from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.settings import Settings

# hachoir repairs what it cannot parse ("autofix": padding, raw fields) and prints warnings;
# a file that needs repairing is not one we accept, and the log is ours.
hachoir_config.autofix = False
hachoir_config.quiet = True
# Pillow's own decompression-bomb guard (it refuses twice this from the header): a second
# line behind MAX_IMAGE_PIXELS, which may be at most this.
Image.MAX_IMAGE_PIXELS = 80_000_000
# Its warning (from 80 MP) says what `image_header` has already decided: not needed.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}
# What Pillow may call each format, to check it agrees with the sniffed type (MPO: the
# multi-picture JPEG many cameras and phones write).
PIL_FORMATS = {
    "image/jpeg": {"JPEG", "MPO"},
    "image/png": {"PNG"},
    "image/gif": {"GIF"},
    "image/webp": {"WEBP"},
}
THUMBNAIL_SIZE = (320, 320)
# Every thumbnail is written as WebP (alpha kept), and served as this type.
THUMBNAIL_MIME = "image/webp"
# Bounds on the boxes / elements walked, so a file of millions of tiny boxes costs little.
MAX_TOP_LEVEL_BOXES = 50_000
MAX_NESTED_BOXES = 1_000

_pools: dict[int, ThreadPoolExecutor] = {}


@dataclass(frozen=True)
class Inspected:
    kind: str  # IMAGE or VIDEO
    mime: str
    width: int | None = None
    height: int | None = None
    thumbnail: bool = False


def _refuse(code: UserErrorCode, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("file", code, message)])


def sniff(head: bytes) -> str:
    """The type the first bytes say; SVG (XML text, so unknown to `filetype`) is named so it
    can be refused with a reason rather than as an unknown type."""
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and b"<svg" in head.lower():
        return "image/svg+xml"  # markup with an <svg> element: an SVG, or HTML carrying one
    guess = filetype.guess(head)
    if guess is None:
        return "application/octet-stream"
    # An animated PNG is a PNG (and shown as one by every browser).
    return "image/png" if guess.mime == "image/apng" else guess.mime


def classify(mime: str) -> str:
    """IMAGE or VIDEO for a supported type; a clear refusal otherwise."""
    if mime in IMAGE_TYPES:
        return "IMAGE"
    if mime in VIDEO_TYPES:
        return "VIDEO"
    if mime == "image/svg+xml":
        raise _refuse(
            UserErrorCode.UNSUPPORTED_TYPE,
            "SVG images are not accepted (they can carry scripts): upload PNG, JPEG, GIF or WebP.",
        )
    raise _refuse(UserErrorCode.UNSUPPORTED_TYPE, f"{mime} is not a supported image or video type.")


# --- images ------------------------------------------------------------------------------


def image_header(path: Path, mime: str, settings: Settings) -> tuple[int, int]:
    """(width, height) read from the header alone (Pillow's `open` decodes no pixels),
    refused when over the configured size; then the file's structure is checked."""
    too_large = _refuse(
        UserErrorCode.IMAGE_TOO_LARGE,
        f"Images may be at most {settings.max_image_side} px on a side and "
        f"{settings.max_image_pixels / 1_000_000:g} megapixels.",
    )
    try:
        with Image.open(path) as probe:
            width, height = probe.size
            if probe.format not in PIL_FORMATS[mime]:
                raise _refuse(UserErrorCode.INVALID_IMAGE, "The image cannot be read.")
            if max(width, height) > settings.max_image_side or (
                width * height > settings.max_image_pixels
            ):
                raise too_large
            probe.verify()  # chunk structure and checksums, still without decoding
    except Image.DecompressionBombError as exc:  # Pillow's own guard, from the header too
        raise too_large from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _refuse(UserErrorCode.INVALID_IMAGE, "The image cannot be read.") from exc
    if width < 1 or height < 1:
        raise _refuse(UserErrorCode.INVALID_IMAGE, "The image cannot be read.")
    return width, height


def make_thumbnail(path: Path, thumb_path: Path) -> None:
    """A WebP of at most THUMBNAIL_SIZE. `draft` lets JPEG decode at 1/2..1/8 scale and
    `thumbnail` reduces in steps (`reduce`) before resampling, so memory follows the
    thumbnail more than the original (PNG and GIF have no reduced decode: the header check
    bounds them)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", THUMBNAIL_SIZE)
            image.thumbnail(THUMBNAIL_SIZE, reducing_gap=2.0)
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image.convert("RGBA" if has_alpha else "RGB").save(
                thumb_path, "WEBP", quality=80, method=4
            )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _refuse(UserErrorCode.INVALID_IMAGE, "The image cannot be read.") from exc


# --- videos ------------------------------------------------------------------------------


class _NotAVideo(Exception):
    pass


def _children(field_set: Any, limit: int = MAX_NESTED_BOXES) -> Iterator[Any]:
    for n, child in enumerate(field_set):
        if n >= limit:
            raise _NotAVideo("it has too many boxes")
        yield child


def _isobmff_video(path: Path, mime: str) -> None:
    """MP4 / QuickTime: top-level boxes whose sizes tile the file exactly (hachoir refuses a
    box that runs past the end or trailing bytes), ftyp first (MP4), a moov with a track
    whose handler is `vide`, and media data (mdat, or moof fragments)."""
    with MP4File(FileInputStream(str(path)), validate=True) as parser:
        tags: list[str] = []
        video_track = False
        for atom in _children(parser, MAX_TOP_LEVEL_BOXES):
            if not atom.name.startswith("atom["):
                raise _NotAVideo("it has bytes that are not boxes")
            tag = atom["tag"].value
            tags.append(tag)
            if tag == "moov" and "movie" in atom:
                video_track = video_track or any(
                    _handler(trak) == "vide"
                    for trak in _children(atom["movie"])
                    if trak["tag"].value == "trak" and "track" in trak
                )
        if mime == "video/mp4" and tags[:1] != ["ftyp"]:
            raise _NotAVideo("it does not start with a file type box")
        if "moov" not in tags:
            raise _NotAVideo("it has no movie header (moov)")
        if "mdat" not in tags and "moof" not in tags:
            raise _NotAVideo("it has no media data")
        if not video_track:
            raise _NotAVideo("it has no video track")


def _handler(trak: Any) -> str | None:
    for box in _children(trak["track"]):
        if box["tag"].value == "mdia" and "media" in box:
            for inner in _children(box["media"]):
                if inner["tag"].value == "hdlr" and "hdlr" in inner:
                    subtype: str = inner["hdlr/subtype"].value
                    return subtype
    return None


def _webm_video(path: Path) -> None:
    """WebM: an EBML header whose DocType is webm, one Segment within the file, a video
    TrackEntry in its Tracks and at least one Cluster."""
    with MkvFile(FileInputStream(str(path)), validate=True) as parser:
        if parser["EBML[0]/DocType/string"].value != "webm":
            raise _NotAVideo("it is not a WebM document")
        segments = [f for f in _children(parser) if f.name.startswith("Segment")]
        if not segments:
            raise _NotAVideo("it has no segment")
        video_track = has_cluster = False
        for element in _children(segments[0], MAX_TOP_LEVEL_BOXES):
            if element.name.startswith("Tracks"):
                video_track = video_track or any(
                    entry.name.startswith("TrackEntry")
                    and "TrackType/enum" in entry
                    and entry["TrackType/enum"].value == 1  # 1 = video
                    for entry in _children(element)
                )
            has_cluster = has_cluster or element.name.startswith("Cluster")
            if video_track and has_cluster:
                return
        if not video_track:
            raise _NotAVideo("it has no video track")
        raise _NotAVideo("it has no media data (clusters)")


def verify_video(path: Path, mime: str) -> None:
    """Refuse a file that only starts like a video (a bare `ftyp` box, a lone EBML header)."""
    try:
        if mime == "video/webm":
            _webm_video(path)
        else:
            _isobmff_video(path, mime)
    except _NotAVideo as exc:
        raise _refuse(UserErrorCode.INVALID_VIDEO, f"The video cannot be read: {exc}.") from exc
    except Exception as exc:  # hachoir's parse errors have no common base worth naming
        raise _refuse(UserErrorCode.INVALID_VIDEO, "The video cannot be read.") from exc


# --- together, off the loop ----------------------------------------------------------------


def inspect(path: Path, mime: str, thumb_path: Path, settings: Settings) -> Inspected:
    """Check the file against its sniffed type (blocking: run it through `inspect_upload`)."""
    kind = classify(mime)
    if kind == "VIDEO":
        verify_video(path, mime)
        return Inspected(kind=kind, mime=mime)
    width, height = image_header(path, mime, settings)
    make_thumbnail(path, thumb_path)
    return Inspected(kind=kind, mime=mime, width=width, height=height, thumbnail=True)


def _pool(settings: Settings) -> ThreadPoolExecutor:
    size = settings.media_decode_concurrency
    pool = _pools.get(size)
    if pool is None:
        pool = _pools[size] = ThreadPoolExecutor(size, thread_name_prefix="media-decode")
    return pool


async def inspect_upload(path: Path, mime: str, thumb_path: Path, settings: Settings) -> Inspected:
    """`inspect` in the bounded decode pool: waiting uploads queue, holding no thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(settings), inspect, path, mime, thumb_path, settings)
