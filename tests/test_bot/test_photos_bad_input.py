"""Bad uploads: each gets a clear Chinese reply, raises nothing, and leaves the worker alive."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageOps

from bot.services.photos import PhotoProfile, analyse, check_photo, process_pool, render_reply
from bot.services.photos.decode import MAX_BYTES, decode
from tests.fixtures import photos as ph


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 30000) -> bytes:
    """A 30000×30000 PNG header (900 MP) with a tiny compressed body: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(buf.getvalue())), "is_animated", False)
    return buf.getvalue()


def _reply(data: bytes, profile: PhotoProfile) -> tuple[str, str]:
    report = analyse(data, profile, fix=True)
    assert not report.ok and report.fixed is None
    decode_check = report.check("decode")
    assert decode_check is not None
    return decode_check.hint, render_reply(report, profile)


@pytest.mark.parametrize(("name", "make", "code", "words"), [
    ("not an image", lambda: b"%PDF-1.7 definitely not a photo", "not_image", "无法读取"),
    ("empty", lambda: b"", "not_image", "无法读取"),
    ("truncated jpeg", lambda: ph.jpeg(ph.studio(), quality=90)[:6000], "truncated", "不完整"),
    ("30000x30000 png", bomb_png, "too_many_pixels", "尺寸异常"),
    ("over the byte cap", lambda: b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 1), "too_large", "20 MB"),
    ("animated gif", animated_gif, "animated", "动图"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_refused_with_a_clear_reply(name: str, make, code: str, words: str, chsi: PhotoProfile) -> None:
    hint, text = _reply(make(), chsi)
    assert hint == code
    assert words in text and text.startswith("需要修改 1 项")
    assert "Traceback" not in text and "Error" not in text


def test_cmyk_jpeg_is_read_and_fixed_to_rgb(chsi: PhotoProfile) -> None:
    buf = io.BytesIO()
    Image.fromarray(ph.studio()).convert("CMYK").save(buf, "JPEG", quality=92, dpi=(300, 300))
    report = analyse(buf.getvalue(), chsi, fix=True)
    assert report.check("colour_mode").measured == "CMYK" and not report.check("colour_mode").ok
    assert report.check("one_face").ok and report.fixable
    assert report.fixed is not None and Image.open(io.BytesIO(report.fixed.data)).mode == "RGB"
    assert "RGB" in render_reply(report, chsi)


def test_sixteen_bit_grayscale_png(chsi: PhotoProfile) -> None:
    gray = np.asarray(Image.fromarray(ph.studio()).convert("L"), dtype=np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I;16"
    report = analyse(buf.getvalue(), chsi, fix=False)
    assert report.check("one_face").ok, "decoded to 8 bits and analysed"
    assert not report.check("colour").ok and not report.check("colour_mode").ok
    assert "彩色" in render_reply(report, chsi)


def test_grayscale_jpeg_needs_a_colour_photo(chsi: PhotoProfile) -> None:
    data = ph.jpeg(ph.grayscale(ph.studio()), kb=chsi.kb)
    report = analyse(data, chsi, fix=True)
    assert not report.check("colour").ok and report.fixed is None and "colour" in report.retake


# Stored pixels for orientation n: the upright picture transformed by the inverse of tag n.
_INVERSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_is_applied(orientation: int, chsi: PhotoProfile) -> None:
    upright = Image.fromarray(ph.studio())
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    upright.transpose(_INVERSE[orientation]).save(buf, "JPEG", quality=90, exif=exif, dpi=(300, 300))
    data = buf.getvalue()
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert shown.size == (480, 640)
    report = analyse(data, chsi, fix=False)
    assert report.check("roll").ok and report.check("pixel_size").measured == [480, 640]
    assert report.check("geometry").ok
    assert decode(data).orientation == orientation


def test_huge_exif_is_harmless(chsi: PhotoProfile) -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60000  # ImageDescription near the 64 KB APP1 limit
    data = ph.jpeg(ph.studio(), quality=90, exif=exif)
    assert len(data) > 60000
    report = analyse(data, chsi, fix=True)
    assert report.check("one_face").ok and report.fixed is not None
    assert b"xxxxxxxx" not in report.fixed.data, "EXIF is stripped from the fixed file"


def test_heic_is_decoded(chsi: PhotoProfile) -> None:
    buf = io.BytesIO()
    Image.fromarray(ph.studio()).save(buf, "HEIF", quality=90)
    report = analyse(buf.getvalue(), chsi, fix=True)
    assert report.check("format").measured == "HEIF" and not report.check("format").ok
    assert report.check("one_face").ok and report.fixable
    assert report.fixed is not None and report.fixed.ok


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with process_pool(1) as executor:
        yield executor


async def test_worker_survives_bad_input(pool: ProcessPoolExecutor, chsi: PhotoProfile) -> None:
    """Bomb, truncated file and garbage go through the same worker process; it still checks a photo."""
    for data in (bomb_png(), ph.jpeg(ph.studio())[:5000], b"garbage", animated_gif()):
        report = await check_photo(data, chsi, fix=True, executor=pool)
        assert report.check("decode") is not None
    good = await check_photo(ph.jpeg(ph.studio(), kb=chsi.kb), chsi, fix=False, executor=pool)
    assert good.ok
