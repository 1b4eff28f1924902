"""Every environment variable `Settings.from_env` reads has a row in README.md's settings table.

The names come from the code itself: `from_env` is handed a mapping that records each name it
looks up, so a new field (or a change in how names are derived) is picked up without editing
this test.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"`(GRADBOT_[A-Z0-9_]+)`")


class _RecordingEnv(dict[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.append(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.append(key)
        return super().__contains__(key)


def read_names() -> set[str]:
    env = _RecordingEnv()
    Settings.from_env(env)
    return set(env.asked)


def documented_names(readme: str) -> set[str]:
    """Names in the first column of the table under README's ``## Settings`` heading."""
    section = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert section is not None, "README.md has no '## Settings' section"
    names: set[str] = set()
    for line in section.group(1).splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names.update(NAME.findall(cells[1]))
    return names


def test_the_names_are_read_from_the_code() -> None:
    names = read_names()
    assert "GRADBOT_REDIS_URL" in names and "GRADBOT_PAY_MCHID" in names
    assert all(n.startswith("GRADBOT_") for n in names), names


def test_documented_names_come_from_the_table_only() -> None:
    readme = "## Settings\n\n| variable | default | meaning |\n|---|---|---|\n" \
             "| `GRADBOT_A`, `GRADBOT_B` | `GRADBOT_C` | see `GRADBOT_D` |\n\n## Next\n\n| `GRADBOT_E` | x | y |\n"
    assert documented_names(readme) == {"GRADBOT_A", "GRADBOT_B"}


def test_every_setting_is_in_the_readme_table() -> None:
    documented = documented_names((ROOT / "README.md").read_text(encoding="utf-8"))
    missing = sorted(read_names() - documented)
    assert not missing, f"README.md's settings table lacks: {', '.join(missing)}"
