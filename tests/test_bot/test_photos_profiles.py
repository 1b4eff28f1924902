"""Photo profiles: the shipped spec sets, school overrides from GRADBOT_PHOTO_PROFILES, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.services.photos import PhotoProfile, ProfileError, load_profiles, profiles_from_env
from bot.services.photos.profiles import ENV_VAR, KB, background_rgb


def test_standard_and_seed_profiles_ship(photo_profiles: dict[str, PhotoProfile]) -> None:
    chsi = photo_profiles["chsi"]
    assert (chsi.width, chsi.height, chsi.formats, chsi.dpi) == ((480, 480), (640, 640), ("JPEG",), 300)
    assert chsi.byte_range == (20 * KB, 40 * KB)
    assert chsi.background_colours() == {"light_blue": (100, 197, 255), "white": (255, 255, 255),
                                         "light_grey": (240, 240, 240)}
    assert chsi.geometry.head_top == (50, 110) and chsi.geometry.eye_line == (200, 300)
    assert chsi.geometry.face_width == (180, 300)
    hunnu = photo_profiles["hunnu-degree"]  # seed 000
    assert hunnu.kb == (100, 200) and hunnu.backgrounds == ("light_blue",) and hunnu.width == (480, 480)
    hanjiang = photo_profiles["hanjiang-2025"]  # seed 003
    assert (hanjiang.width, hanjiang.height, hanjiang.kb) == ((480, 1350), (640, 1700), (50, 1024))
    shanxi = photo_profiles["shanxi-zikao"]  # seed 004
    assert set(shanxi.formats) == {"JPEG", "PNG"} and shanxi.byte_range[1] < 2 * 1024 * KB


def test_school_file_adds_and_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "schools.toml"
    extra.write_text('[demo-u]\nextends = "chsi"\ntitle = "示例大学"\nkb = [30, 900]\n'
                     'backgrounds = ["#00a3e6"]\n[demo-u.geometry]\neye_target = 260\n'
                     '[hunnu-degree]\nextends = "chsi"\nkb = [120, 200]\n', "utf-8")
    profiles = profiles_from_env({ENV_VAR: str(extra)})
    demo = profiles["demo-u"]
    assert demo.kb == (30, 900) and demo.width == (480, 480)
    assert demo.background_colours() == {"#00a3e6": (0, 163, 230)}
    assert demo.geometry.eye_target == 260 and demo.geometry.eye_line == (200, 300)
    # A school's own entry replaces the shipped one of the same name.
    hunnu = profiles["hunnu-degree"]
    assert hunnu.kb == (120, 200) and hunnu.backgrounds == profiles["chsi"].backgrounds


@pytest.mark.parametrize(("text", "words"), [
    ('[x]\nextends = "chsi"\nkbytes = [1, 2]\n', "unknown field 'kbytes'"),
    ('[x]\nextends = "chsi"\nbackgrounds = ["pink"]\n', "unknown background"),
    ('[x]\nextends = "y"\n[y]\nextends = "x"\n', "loops"),
    ('[x]\nextends = "nope"\n', "unknown profile 'nope'"),
    ('[x]\nextends = "chsi"\nfix_size = [600, 800]\n', "outside its own pixel ranges"),
    ('[x]\nextends = "chsi"\nkb = [40, 20]\n', "out of order"),
    ('[x]\ntitle = "no sizes"\n', "missing field"),
    ('not toml at all ===', "schools.toml"),
])
def test_bad_profile_files_say_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    extra = tmp_path / "schools.toml"
    extra.write_text(text, "utf-8")
    with pytest.raises(ProfileError, match=words):
        load_profiles(extra)


def test_missing_profile_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=ENV_VAR):
        load_profiles(tmp_path / "missing.toml")


def test_background_names() -> None:
    assert background_rgb("#FFFFFF") == (255, 255, 255)
    with pytest.raises(ProfileError):
        background_rgb("#12345")
