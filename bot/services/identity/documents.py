"""Identity document numbers: the five types a student can pick, normalisation and validation.

18-digit numbers (mainland resident ID and the HK/Macau/Taiwan residence permit) follow
GB 11643-1999: address code, birth date, sequence, ISO 7064 MOD 11-2 check character. The checks
run in the order a student can act on: characters, length, region, birth date, checksum, so the
reply points at the part that is wrong. See docs/identity.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from bot.privacy import mask_id
from bot.services.identity.regions import birth_region
from bot.services.text import Explained, fold_width
from dialogs.spec import Say

CHINA_TZ = timezone(timedelta(hours=8))  # no daylight saving, so a fixed offset is exact
MIN_AGE = 14  # nobody younger applies for a diploma or degree
EARLIEST_BIRTH = date(1900, 1, 1)

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_CHECK_CHARS = "10X98765432"
# The 31 mainland provinces; 71 (Taiwan) appears in GB/T 2260 and is left to the verifier.
_MAINLAND_PROVINCES = frozenset(str(code) for code in (
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
    61, 62, 63, 64, 65, 71,
))
_HMT_PREFIXES = ("810000", "820000", "830000")


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"
    HMT_RESIDENCE = "hmt_residence"
    HK_MO_PERMIT = "hk_mo_permit"
    TW_PERMIT = "tw_permit"
    PASSPORT = "passport"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, text: str) -> IdType | None:
        """A code, a label or a common name (身份证, 回乡证, 台胞证) → the type; else None."""
        key = fold_width(text).strip().lower()
        for member in cls:
            if key in (member.value, member.label):
                return member
        return _SYNONYMS.get(key)


_LABELS = {
    IdType.RESIDENT_ID: "居民身份证",
    IdType.HMT_RESIDENCE: "港澳台居民居住证",
    IdType.HK_MO_PERMIT: "港澳居民来往内地通行证",
    IdType.TW_PERMIT: "台湾居民来往大陆通行证",
    IdType.PASSPORT: "护照",
}
_SYNONYMS = {
    "身份证": IdType.RESIDENT_ID,
    "身份证号": IdType.RESIDENT_ID,
    "居民身份证号": IdType.RESIDENT_ID,
    "二代身份证": IdType.RESIDENT_ID,
    "居住证": IdType.HMT_RESIDENCE,
    "港澳台居住证": IdType.HMT_RESIDENCE,
    "回乡证": IdType.HK_MO_PERMIT,
    "港澳居民通行证": IdType.HK_MO_PERMIT,
    "台胞证": IdType.TW_PERMIT,
    "台湾通行证": IdType.TW_PERMIT,
    "passport": IdType.PASSPORT,
}


class IdProblem(StrEnum):
    EMPTY = "empty"
    BAD_CHARACTERS = "bad_characters"
    WRONG_LENGTH = "wrong_length"
    LEGACY_15_DIGIT = "legacy_15_digit"
    BAD_PREFIX = "bad_prefix"
    UNKNOWN_REGION = "unknown_region"
    TYPE_MISMATCH = "type_mismatch"
    INVALID_BIRTH_DATE = "invalid_birth_date"
    FUTURE_BIRTH_DATE = "future_birth_date"
    TOO_YOUNG = "too_young"
    BAD_CHECKSUM = "bad_checksum"


@dataclass(frozen=True, slots=True, repr=False)
class IdCheck(Explained):
    """The outcome of :func:`validate_id`. ``number`` is the normalised form to store and verify."""

    id_type: IdType
    number: str
    problem: IdProblem | None = None
    position: int | None = None  # 1-based position of the first wrong character, when known
    birth_date: date | None = None
    region: str | None = None  # advisory, from the historic county table; never blocks
    suggested_type: IdType | None = None
    details: tuple[tuple[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def reply(self) -> Say | None:
        if self.problem is None:
            return None
        suggested = self.suggested_type.label if self.suggested_type else None
        return Say("identity/id_problem", {
            "problem": self.problem.value, "label": self.id_type.label, "position": self.position,
            "suggested": suggested, "min_age": MIN_AGE, **dict(self.details),
        })

    def __repr__(self) -> str:
        return f"IdCheck({self.id_type.value}, {mask_id(self.number)!r}, problem={self.problem})"


def china_today() -> date:
    return datetime.now(CHINA_TZ).date()


def check_character(body17: str) -> str:
    """ISO 7064 MOD 11-2 check character over the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_number(id_type: IdType, raw: str) -> str:
    """Fold full-width forms, drop spaces (and hyphens in numeric types), upper-case ``x``."""
    text = re.sub(r"\s+", "", fold_width(raw)).upper()
    return text if id_type is IdType.PASSPORT else text.replace("-", "")


def validate_id(id_type: IdType, raw: str, *, today: date | None = None) -> IdCheck:
    number = normalise_number(id_type, raw)
    if not number:
        return IdCheck(id_type, number, IdProblem.EMPTY)
    if id_type in (IdType.RESIDENT_ID, IdType.HMT_RESIDENCE):
        return _check_18(id_type, number, today or china_today())
    return _PATTERN_CHECKS[id_type](number)


def _first_bad(number: str, allowed: re.Pattern[str]) -> tuple[int, str] | None:
    for i, ch in enumerate(number):
        if not allowed.fullmatch(ch):
            return i + 1, ch
    return None


def _bad_chars(id_type: IdType, number: str, allowed: str, hint: str) -> IdCheck | None:
    bad = _first_bad(number, re.compile(allowed))
    if bad is None:
        return None
    return IdCheck(id_type, number, IdProblem.BAD_CHARACTERS, position=bad[0],
                   details=(("char", bad[1]), ("hint", hint)))


def _wrong_length(id_type: IdType, number: str, expected: str) -> IdCheck:
    return IdCheck(id_type, number, IdProblem.WRONG_LENGTH,
                   details=(("length", len(number)), ("expected", expected)))


def _check_18(id_type: IdType, number: str, today: date) -> IdCheck:
    bad = _bad_chars(id_type, number, "[0-9]", "digits")
    if bad is not None and not (bad.position == 18 and number[17] == "X"):
        return bad
    if len(number) != 18:
        if len(number) == 15 and id_type is IdType.RESIDENT_ID:
            return IdCheck(id_type, number, IdProblem.LEGACY_15_DIGIT)
        return _wrong_length(id_type, number, "18")
    return _check_region(id_type, number) or _check_birth(id_type, number, today) or _check_sum(id_type, number)


def _check_region(id_type: IdType, number: str) -> IdCheck | None:
    is_hmt = number.startswith(_HMT_PREFIXES)
    if id_type is IdType.RESIDENT_ID and is_hmt:
        return IdCheck(id_type, number, IdProblem.TYPE_MISMATCH, suggested_type=IdType.HMT_RESIDENCE)
    if id_type is IdType.HMT_RESIDENCE and not is_hmt:
        if number[:2] in _MAINLAND_PROVINCES:
            return IdCheck(id_type, number, IdProblem.TYPE_MISMATCH, suggested_type=IdType.RESIDENT_ID)
        return IdCheck(id_type, number, IdProblem.UNKNOWN_REGION, position=1)
    if id_type is IdType.RESIDENT_ID and number[:2] not in _MAINLAND_PROVINCES:
        return IdCheck(id_type, number, IdProblem.UNKNOWN_REGION, position=1)
    return None


def _parse_birth(number: str) -> date | None:
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
    return born if born >= EARLIEST_BIRTH else None


def _check_birth(id_type: IdType, number: str, today: date) -> IdCheck | None:
    born = _parse_birth(number)
    if born is None:
        return IdCheck(id_type, number, IdProblem.INVALID_BIRTH_DATE, position=7)
    if born > today:
        return IdCheck(id_type, number, IdProblem.FUTURE_BIRTH_DATE, position=7, birth_date=born)
    if _age(born, today) < MIN_AGE:
        return IdCheck(id_type, number, IdProblem.TOO_YOUNG, position=7, birth_date=born)
    return None


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _check_sum(id_type: IdType, number: str) -> IdCheck:
    born = _parse_birth(number)
    if check_character(number[:17]) != number[17]:
        return IdCheck(id_type, number, IdProblem.BAD_CHECKSUM, position=18, birth_date=born)
    region = birth_region(number) if id_type is IdType.RESIDENT_ID else _HMT_REGIONS[number[:6]]
    return IdCheck(id_type, number, birth_date=born, region=region)


_HMT_REGIONS = {"810000": "香港特别行政区", "820000": "澳门特别行政区", "830000": "台湾地区"}


def _check_hk_mo(number: str) -> IdCheck:
    t = IdType.HK_MO_PERMIT
    if number[0] not in "HM":
        return IdCheck(t, number, IdProblem.BAD_PREFIX, position=1, details=(("char", number[0]),))
    bad = _bad_chars(t, number[1:], "[0-9]", "digits")
    if bad is not None:
        return IdCheck(t, number, bad.problem, position=(bad.position or 0) + 1, details=bad.details)
    if len(number) not in (9, 11):
        return _wrong_length(t, number, "9/11")
    return IdCheck(t, number)


def _check_tw(number: str) -> IdCheck:
    bad = _bad_chars(IdType.TW_PERMIT, number, "[0-9]", "digits")
    if bad is not None:
        return bad
    return IdCheck(IdType.TW_PERMIT, number) if len(number) == 8 else _wrong_length(IdType.TW_PERMIT, number, "8")


def _check_passport(number: str) -> IdCheck:
    bad = _bad_chars(IdType.PASSPORT, number, "[0-9A-Z]", "alnum")
    if bad is not None:
        return bad
    if not 5 <= len(number) <= 17:
        return _wrong_length(IdType.PASSPORT, number, "5-17")
    return IdCheck(IdType.PASSPORT, number)


_PATTERN_CHECKS = {
    IdType.HK_MO_PERMIT: _check_hk_mo,
    IdType.TW_PERMIT: _check_tw,
    IdType.PASSPORT: _check_passport,
}
