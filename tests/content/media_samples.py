"""Tiny media files built byte by byte, so the tests need no encoder: a playable-shaped MP4
(ISO BMFF boxes: ftyp, moov with one `vide` track and its sample tables, mdat), a WebM
(EBML header, Segment with Info, a video TrackEntry and a Cluster), and PNGs whose header
declares any size."""

from __future__ import annotations

import struct
import zlib


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes = b"", version: int = 0, flags: int = 0) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _track(handler: bytes, width: int, height: int, chunk_offset: int) -> bytes:
    tkhd = full_box(
        b"tkhd",
        struct.pack(">IIIII", 0, 0, 1, 0, 1000)
        + b"\0" * 8
        + struct.pack(">hhhH", 0, 0, 0, 0)
        + _MATRIX
        + struct.pack(">II", width << 16, height << 16),
        flags=3,
    )
    mdhd = full_box(b"mdhd", struct.pack(">IIIIHH", 0, 0, 1000, 1000, 0x55C4, 0))
    hdlr = full_box(b"hdlr", struct.pack(">I", 0) + handler + b"\0" * 12 + b"Handler\0")
    header = (
        full_box(b"vmhd", b"\0" * 8, flags=1)
        if handler == b"vide"
        else full_box(b"smhd", b"\0" * 4)
    )
    dinf = box(b"dinf", full_box(b"dref", struct.pack(">I", 1) + full_box(b"url ", flags=1)))
    avcc = box(b"avcC", bytes([1, 0x42, 0xC0, 0x0A, 0xFF, 0xE0, 0, 0, 1, 0, 0]))
    avc1 = box(
        b"avc1",
        b"\0" * 6
        + struct.pack(">H", 1)
        + b"\0" * 16
        + struct.pack(">HHII", width, height, 0x480000, 0x480000)
        + b"\0" * 4
        + struct.pack(">H", 1)
        + b"\0" * 32
        + struct.pack(">Hh", 0x18, -1)
        + avcc,
    )
    stbl = box(
        b"stbl",
        full_box(b"stsd", struct.pack(">I", 1) + avc1)
        + full_box(b"stts", struct.pack(">III", 1, 1, 1000))
        + full_box(b"stsc", struct.pack(">IIII", 1, 1, 1, 1))
        + full_box(b"stsz", struct.pack(">III", 0, 1, 4))
        + full_box(b"stco", struct.pack(">II", 1, chunk_offset)),
    )
    minf = box(b"minf", header + dinf + stbl)
    return box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf))


def mp4(width: int = 16, height: int = 16, handler: bytes = b"vide") -> bytes:
    """ftyp + moov (mvhd, one track) + mdat of one 4-byte sample the track points at."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = full_box(
        b"mvhd",
        struct.pack(">IIIIIH", 0, 0, 1000, 1000, 0x10000, 0x100)
        + b"\0" * 10
        + _MATRIX
        + b"\0" * 24
        + struct.pack(">I", 2),
    )

    def head(offset: int) -> bytes:
        return ftyp + box(b"moov", mvhd + _track(handler, width, height, offset))

    offset = len(head(0)) + 8
    return head(offset) + box(b"mdat", b"\0\0\0\0")


def _ebml(element_id: str, payload: bytes) -> bytes:
    size = len(payload)
    length = bytes([0x80 | size]) if size < 127 else bytes([0x40 | size >> 8, size & 0xFF])
    return bytes.fromhex(element_id) + length + payload


def _uint(element_id: str, value: int, width: int = 1) -> bytes:
    return _ebml(element_id, value.to_bytes(width, "big"))


def webm(width: int = 16, height: int = 16, track_type: int = 1, clusters: int = 1) -> bytes:
    header = _ebml(
        "1A45DFA3",
        _uint("4286", 1)
        + _uint("42F7", 1)
        + _uint("42F2", 4)
        + _uint("42F3", 8)
        + _ebml("4282", b"webm")
        + _uint("4287", 2)
        + _uint("4285", 2),
    )
    info = _ebml("1549A966", _uint("2AD7B1", 1_000_000, 3) + _ebml("4489", struct.pack(">f", 1e3)))
    if track_type == 1:
        codec = _ebml("86", b"V_VP8") + _ebml("E0", _uint("B0", width, 2) + _uint("BA", height, 2))
    else:
        codec = _ebml("86", b"A_OPUS") + _ebml("E1", _ebml("B5", struct.pack(">f", 48000.0)))
    entry = _ebml("AE", _uint("D7", 1) + _uint("73C5", 1) + _uint("83", track_type) + codec)
    cluster = _ebml("1F43B675", _uint("E7", 0) + _ebml("A3", b"\x81\0\0\x80" + b"\0" * 10))
    body = info + _ebml("1654AE6B", entry) + cluster * clusters
    # Segment with an 8-byte size, as muxers write it.
    return header + bytes.fromhex("18538067") + b"\x01" + len(body).to_bytes(7, "big") + body


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height, with checksums right and one empty IDAT:
    small on disk, enormous if anything decoded it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
