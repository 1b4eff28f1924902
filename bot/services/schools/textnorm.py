"""Folding school and place names for comparison: width, traditional characters, punctuation, pinyin.

Traditional → simplified uses OpenCC (the ``opencc`` wheel is the upstream project's own binding:
Apache-2.0, phrase-level dictionaries, about 3 µs per short name). Pinyin uses pypinyin, whose
phrase dictionary reads polyphonic characters in context (长沙 → changsha, not zhangsha).
"""

from __future__ import annotations

import functools
import re

import opencc
from pypinyin import Style, lazy_pinyin

from bot.services.text import fold_width

# Keep ideographs, Latin letters and digits; brackets, dots, dashes and spaces carry no meaning here
# (中国地质大学（武汉） and 中国地质大学武汉 are the same school to a student).
_NOISE = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003fffd]+")


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s.json")


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def simplify_text(text: str) -> str:
    """``漢江師範學院 `` → ``汉江师范学院``; ``中国地质大学（武汉）`` → ``中国地质大学武汉``."""
    return _NOISE.sub("", to_simplified(fold_width(text)).lower())


def full_pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text, errors="default"))


def initials(text: str) -> str:
    return "".join(lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default"))


def is_latin_query(text: str) -> bool:
    return text.isascii() and text.isalpha()
