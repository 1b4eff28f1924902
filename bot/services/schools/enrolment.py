"""What a student studies and why they are here: education type, level, cohort and purpose.

The school-link form of the seed (学历/级/届: "成人教育 2022级 学位申请") is free text in a chat, so
:func:`parse_enrolment` picks out whatever parts are present and says which are missing. A cohort
is a year plus 级 (year of entry) or 届 (year of graduation); two-digit years ("22级") are read as
20xx and every year must fall in a window around today (injected, for tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TypeVar

from bot.services.identity.documents import china_today
from bot.services.text import Explained, fold_width
from dialogs.spec import Say

ENTRY_WINDOW = (20, 1)  # 级: from 20 years ago (self-study has no time limit) to next year's intake
GRADUATION_WINDOW = (20, 6)  # 届: from 20 years ago to six years ahead (a five-year programme)

T = TypeVar("T")


class EducationType(StrEnum):
    ADULT = "adult"
    SELF_STUDY = "self_study"
    ONLINE = "online"
    OPEN = "open"
    FULL_TIME = "full_time"

    @property
    def label(self) -> str:
        return {"adult": "成人教育", "self_study": "自学考试", "online": "网络教育", "open": "开放教育",
                "full_time": "普通全日制"}[self.value]


class Level(StrEnum):
    ASSOCIATE = "associate"
    BACHELOR = "bachelor"
    TOP_UP = "top_up"

    @property
    def label(self) -> str:
        return {"associate": "专科", "bachelor": "本科", "top_up": "专升本"}[self.value]


class Purpose(StrEnum):
    DEGREE = "degree"
    GRADUATION = "graduation"

    @property
    def label(self) -> str:
        return {"degree": "学位申请", "graduation": "毕业"}[self.value]


class CohortKind(StrEnum):
    ENTRY = "级"
    GRADUATION = "届"


# Longest words first within each table, so 专升本 wins over 本科 and 高起专 over 专科.
_EDUCATION_WORDS = (
    ("成人教育", EducationType.ADULT), ("成人高考", EducationType.ADULT), ("成教", EducationType.ADULT),
    ("函授", EducationType.ADULT), ("业余", EducationType.ADULT), ("自学考试", EducationType.SELF_STUDY),
    ("自考", EducationType.SELF_STUDY), ("网络教育", EducationType.ONLINE), ("远程教育", EducationType.ONLINE),
    ("网教", EducationType.ONLINE), ("开放教育", EducationType.OPEN), ("开放大学", EducationType.OPEN),
    ("国开", EducationType.OPEN), ("电大", EducationType.OPEN), ("普通全日制", EducationType.FULL_TIME),
    ("全日制", EducationType.FULL_TIME), ("统招", EducationType.FULL_TIME),
)
_LEVEL_WORDS = (
    ("专升本", Level.TOP_UP), ("高起本", Level.BACHELOR), ("高起专", Level.ASSOCIATE),
    ("本科", Level.BACHELOR), ("专科", Level.ASSOCIATE), ("大专", Level.ASSOCIATE), ("高职", Level.ASSOCIATE),
)
_PURPOSE_WORDS = (
    ("学位申请", Purpose.DEGREE), ("申请学位", Purpose.DEGREE), ("学士学位", Purpose.DEGREE),
    ("学位", Purpose.DEGREE), ("毕业申请", Purpose.GRADUATION), ("毕业", Purpose.GRADUATION),
)
_COHORT = re.compile(r"(?<!\d)(\d{4}|\d{2})(?!\d)\s*(?:年\s*)?(级|届|入学|毕业)?")


@dataclass(frozen=True, slots=True)
class Cohort:
    year: int
    kind: CohortKind

    @property
    def label(self) -> str:
        return f"{self.year}{self.kind.value}"


@dataclass(frozen=True, slots=True)
class Enrolment(Explained):
    education: EducationType | None = None
    level: Level | None = None
    cohort: Cohort | None = None
    purpose: Purpose | None = None
    problem: str | None = None  # year_out_of_range, kind_missing
    year: int | None = None  # the year read, also when it was rejected

    @property
    def missing(self) -> tuple[str, ...]:
        parts = {"education": self.education, "cohort": self.cohort, "purpose": self.purpose}
        return tuple(k for k, v in parts.items() if v is None)

    @property
    def reply(self) -> Say | None:
        if not self.problem and not self.missing:
            return None
        return Say("schools/enrolment_problem", {
            "problem": self.problem, "missing": list(self.missing), "year": self.year,
            "entry_window": ENTRY_WINDOW, "graduation_window": GRADUATION_WINDOW,
        })


def _find(text: str, table: tuple[tuple[str, T], ...]) -> T | None:
    return next((value for word, value in table if word in text), None)


def parse_enrolment(text: str, *, today: date | None = None) -> Enrolment:
    clean = fold_width(text)
    education, level = _find(clean, _EDUCATION_WORDS), _find(clean, _LEVEL_WORDS)
    purpose = _find(clean, _PURPOSE_WORDS)
    found = _COHORT.search(clean)
    if not found:
        return Enrolment(education, level, None, purpose)
    year = _full_year(found.group(1))
    kind = _kind(found.group(2))
    if kind is None:
        return Enrolment(education, level, None, purpose, "kind_missing", year)
    if not _plausible(year, kind, today or china_today()):
        return Enrolment(education, level, None, purpose, "year_out_of_range", year)
    return Enrolment(education, level, Cohort(year, kind), purpose, None, year)


def _full_year(digits: str) -> int:
    return int(digits) + 2000 if len(digits) == 2 else int(digits)


def _kind(word: str | None) -> CohortKind | None:
    if word in ("级", "入学"):
        return CohortKind.ENTRY
    if word in ("届", "毕业"):
        return CohortKind.GRADUATION
    return None


def _plausible(year: int, kind: CohortKind, today: date) -> bool:
    back, ahead = ENTRY_WINDOW if kind is CohortKind.ENTRY else GRADUATION_WINDOW
    return today.year - back <= year <= today.year + ahead
