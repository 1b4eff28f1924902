"""The browser tests' screenshots stay out of the work tree unless GRADBOT_UPDATE_SCREENSHOTS=1 asks for them."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.screenshots import DOCS_SCREENSHOTS, ROOT, screenshot_folder


def test_screenshots_go_to_the_temp_folder_by_default(tmp_path: Path) -> None:
    assert screenshot_folder(tmp_path, {}) == tmp_path
    assert screenshot_folder(tmp_path, {"GRADBOT_UPDATE_SCREENSHOTS": "0"}) == tmp_path
    assert screenshot_folder(tmp_path, {"GRADBOT_UPDATE_SCREENSHOTS": ""}) == tmp_path


def test_update_writes_the_docs_screenshots(tmp_path: Path) -> None:
    assert DOCS_SCREENSHOTS == ROOT / "docs" / "screenshots" and DOCS_SCREENSHOTS.is_dir()
    assert screenshot_folder(tmp_path, {"GRADBOT_UPDATE_SCREENSHOTS": "1"}) == DOCS_SCREENSHOTS
    both = {"GRADBOT_UPDATE_SCREENSHOTS": "1", "GRADBOT_SCREENSHOTS": str(tmp_path / "elsewhere")}
    assert screenshot_folder(tmp_path, both) == DOCS_SCREENSHOTS


def test_a_named_folder_is_read_from_the_repository_root(tmp_path: Path) -> None:
    assert screenshot_folder(tmp_path, {"GRADBOT_SCREENSHOTS": "build/shots"}) == ROOT / "build" / "shots"
    assert screenshot_folder(tmp_path, {"GRADBOT_SCREENSHOTS": str(tmp_path / "x")}) == tmp_path / "x"
