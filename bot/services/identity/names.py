"""Personal names as written on the identity document.

Chinese names may hold any CJK ideograph, including the extension blocks that second-generation
ID cards carry for rare characters (no ``[\\u4e00-\\u9fa5]`` filter), and U+00B7 between the parts
of a minority name (2016 national notice on name collection; reference §4.4). Foreign names on
passports and permits are Latin letters with spaces, hyphens and apostrophes. See docs/identity.md.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from bot.privacy import mask_name
from bot.services.identity.documents import IdType
from bot.services.text import Explained, drop_spaces, fold_width, squeeze_spaces
from dialogs.spec import Say

MIDDLE_DOT = "\u00b7"
# Look-alike dots students type or paste between name parts: katakana middle dot (full and half
# width), bullet, hyphenation point, full stops (ASCII, full-width, small, and the ideographic 。 a
# Chinese IME types for "."), dot operators, word separator.
_DOTS = str.maketrans(dict.fromkeys("\u30fb\uff65\u2022\u2027\uff0e.\u2219\u22c5\u2e31\u3002\ufe52\uff61", MIDDLE_DOT))
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2019\u2018\u02bc`\u00b4", "'"))
CJK_LIMITS = (2, 40)  # characters; the notice asks systems to hold at least 25 Chinese characters
LATIN_LIMITS = (2, 64)
_LATIN_TYPES = frozenset({IdType.PASSPORT, IdType.HK_MO_PERMIT, IdType.TW_PERMIT})


class NameProblem(StrEnum):
    EMPTY = "empty"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_CHARACTERS = "bad_characters"
    PRIVATE_USE = "private_use"
    BAD_DOT = "bad_dot"
    MIXED_SCRIPTS = "mixed_scripts"
    LATIN_NOT_ALLOWED = "latin_not_allowed"


@dataclass(frozen=True, slots=True, repr=False)
class NameCheck(Explained):
    name: str  # normalised: what to store and send to the verifier
    script: str  # "han", "latin" or "" when undecided
    problem: NameProblem | None = None
    position: int | None = None
    char: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def reply(self) -> Say | None:
        if self.problem is None:
            return None
        return Say("identity/name_problem", {
            "problem": self.problem.value, "position": self.position, "char": self.char,
            "cjk_limits": CJK_LIMITS, "latin_limits": LATIN_LIMITS, "script": self.script,
        })

    def __repr__(self) -> str:
        return f"NameCheck({mask_name(self.name)!r}, {self.script}, problem={self.problem})"


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF  # unified ideographs
        or 0x3400 <= cp <= 0x4DBF  # extension A (e.g. 䶮)
        or 0x20000 <= cp <= 0x3FFFD  # planes 2 and 3: extensions B–J and compatibility supplement
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs, some of them real name characters
        or cp == 0x3007  # 〇
    )


def _is_latin(ch: str) -> bool:
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN")


def _fold(raw: str) -> str:
    # NFKC only on Kangxi radicals: PDFs hand them out instead of the ideograph (⼈ for 人);
    # NFKC on the whole name would rewrite compatibility ideographs that are real name characters.
    text = unicodedata.normalize("NFC", fold_width(raw))
    return "".join(unicodedata.normalize("NFKC", c) if 0x2F00 <= ord(c) <= 0x2FDF else c for c in text)


def normalise_name(raw: str, id_type: IdType) -> NameCheck:
    text = _fold(raw)
    has_latin = any(_is_latin(c) for c in text)
    has_cjk = any(is_cjk(c) for c in text)
    if not text.strip():
        return NameCheck("", "", NameProblem.EMPTY)
    if has_latin and has_cjk:
        return NameCheck(squeeze_spaces(text), "", NameProblem.MIXED_SCRIPTS)
    if has_latin:
        if id_type not in _LATIN_TYPES:
            return NameCheck(squeeze_spaces(text), "latin", NameProblem.LATIN_NOT_ALLOWED)
        return _latin(squeeze_spaces(text.translate(_APOSTROPHES)).upper())
    return _han(drop_spaces(text).translate(_DOTS))


def _bad(name: str, script: str, index: int) -> NameCheck:
    ch = name[index]
    problem = NameProblem.PRIVATE_USE if unicodedata.category(ch) == "Co" else NameProblem.BAD_CHARACTERS
    shown = ch if ch.isprintable() else ""
    return NameCheck(name, script, problem, position=index + 1, char=shown)


def _length(name: str, script: str, limits: tuple[int, int]) -> NameCheck | None:
    if len(name) < limits[0]:
        return NameCheck(name, script, NameProblem.TOO_SHORT)
    if len(name) > limits[1]:
        return NameCheck(name, script, NameProblem.TOO_LONG)
    return None


def _han(name: str) -> NameCheck:
    for i, ch in enumerate(name):
        if not (is_cjk(ch) or ch == MIDDLE_DOT):
            return _bad(name, "han", i)
    if name.startswith(MIDDLE_DOT) or name.endswith(MIDDLE_DOT) or MIDDLE_DOT * 2 in name:
        return NameCheck(name, "han", NameProblem.BAD_DOT)
    return _length(name, "han", CJK_LIMITS) or NameCheck(name, "han")


def _latin(name: str) -> NameCheck:
    for i, ch in enumerate(name):
        if not (_is_latin(ch) or ch in " -'"):
            return _bad(name, "latin", i)
    for i in (0, len(name) - 1):
        if not _is_latin(name[i]):
            return _bad(name, "latin", i)
    return _length(name, "latin", LATIN_LIMITS) or NameCheck(name, "latin")
