"""The student's reply: one summary line, ✗ per failure, ⚠ per warning, one folded ✓ line; short."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.services.photos import CheckResult, PhotoProfile, PhotoReport, PhotoTexts, Severity, analyse, render_reply
from bot.services.photos.pipeline import CHECKS
from tests.fixtures import photos as ph

TEMPLATES = Path(__file__).resolve().parents[2] / "dialogs" / "templates" / "photo"
PHONE_LINE_CHARS = 40  # a phone chat bubble shows ~16 CJK characters a line; 40 is about 2.5 lines


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_reply_shape_for_a_failing_photo(chsi: PhotoProfile) -> None:
    report = analyse(ph.jpeg(ph.darken(ph.studio(), 0.35), kb=chsi.kb), chsi, fix=False)
    lines = _lines(render_reply(report, chsi))
    assert re.fullmatch(rf"需要修改 {len(report.failed)} 项（.+）", lines[0])
    assert sum(line.startswith("✗ ") for line in lines) == len(report.failed)
    assert sum(line.startswith("⚠ ") for line in lines) == len(report.warnings)
    assert [line for line in lines if line.startswith("✓")] == [f"✓ 其余 {len(report.passed)} 项合格"]
    assert any("太暗" in line for line in lines)


def test_reply_for_a_good_photo_with_fix(studio_jpeg: bytes, chsi: PhotoProfile) -> None:
    report = analyse(studio_jpeg, chsi, fix=True)
    text = render_reply(report, chsi)
    assert _lines(text)[0].startswith("✅ 合格")
    assert "✗" not in text and "已自动裁剪" in text


def test_reply_fits_a_phone_screen(chsi: PhotoProfile) -> None:
    """The astronaut fails the most checks of our fixtures; each line stays short."""
    report = analyse(ph.png(ph.astronaut_rgb()), chsi, fix=True)
    lines = _lines(render_reply(report, chsi))
    assert len(lines) <= len(report.failed) + len(report.warnings) + 3
    assert all(len(line) <= PHONE_LINE_CHARS for line in lines), max(lines, key=len)
    assert "无法自动修正" in lines[-1]


def _every_variant() -> list[CheckResult]:
    hints = {"one_face": ["none", "many"], "resolution": ["low", "upscale"], "roll": ["tilt", "sideways"],
             "pose": ["yaw", "down", "up"], "framing": ["head_cut", "top", "sides", "bottom", "headroom", "x"],
             "exposure": ["dark", "bright", "clipped"], "background_uniform": ["clutter", "shadow"],
             "hair_cover": ["brows", "ear_left", "brows,ear_right"],
             "geometry": ["head_top", "eye_line,face_width,centre"], "file_size": ["small", "large"],
             "decode": ["not_image", "truncated", "too_many_pixels", "too_large", "animated", "heic",
                        "too_small", "unreadable"]}
    measured = {"pixel_size": [3000, 4000], "resolution": {"face_px": 90}, "roll": 5.2, "file_size": 1500.0,
                "one_face": 2, "dpi": 72, "colour_mode": "CMYK", "format": "PNG", "jpeg_quality": 40}
    ids = {"decode"} | {check.__name__.removeprefix("check_") for check in CHECKS}
    return [CheckResult(i, False, Severity.ERROR, measured.get(i), None, hint)
            for i in sorted(ids) for hint in hints.get(i, [""])]


@pytest.mark.parametrize("profile_name", ["chsi", "hanjiang-2025", "shanxi-zikao"])
def test_every_check_and_hint_has_a_short_chinese_message(profile_name: str,
                                                          photo_profiles: dict[str, PhotoProfile]) -> None:
    texts, profile = PhotoTexts(), photo_profiles[profile_name]
    for check in _every_variant():
        message = texts.message(check, profile)
        assert message and re.search(r"[\u4e00-\u9fff]", message), check
        assert "\n" not in message and len(message) <= PHONE_LINE_CHARS, (check.id, message)
        assert texts.message(CheckResult(check.id, True, Severity.ERROR), profile).endswith("合格")


def test_file_rule_messages_quote_the_profile(photo_profiles: dict[str, PhotoProfile]) -> None:
    texts = PhotoTexts()
    size = CheckResult("pixel_size", False, Severity.ERROR, [512, 600], None)
    kb = CheckResult("file_size", False, Severity.ERROR, 1500.0, None)
    assert "480×640" in texts.message(size, photo_profiles["chsi"])
    assert "480–1350×640–1700" in texts.message(size, photo_profiles["hanjiang-2025"])
    assert "50 KB–1 MB" in texts.message(kb, photo_profiles["hanjiang-2025"])
    assert "1.5 MB" in texts.message(kb, photo_profiles["chsi"])


def test_warnings_only_report_is_ok(chsi: PhotoProfile) -> None:
    warn = CheckResult("head_covering", False, Severity.WARNING, None, None)
    report = PhotoReport("chsi", (warn, CheckResult("format", True, Severity.ERROR)), True)
    text = render_reply(report, chsi)
    assert report.ok and text.startswith("✅ 合格") and "⚠ " in text


def _code_strings(path: Path) -> list[str]:
    """String literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text("utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def test_no_student_text_in_python() -> None:
    """Student-facing Chinese lives in the templates; the code holds only EXIF app names to match."""
    package = Path(__file__).resolve().parents[2] / "bot" / "services" / "photos"
    allowed = {"美图", "醒图", "美颜", "天天p图", "前置"}
    for path in package.glob("*.py"):
        chinese = [s for s in _code_strings(path) if re.search(r"[\u4e00-\u9fff]", s)]
        assert set(chinese) <= allowed, (path.name, chinese)
    assert (TEMPLATES / "checks.j2").exists() and (TEMPLATES / "reply.txt.j2").exists()
